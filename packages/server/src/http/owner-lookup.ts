import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { Adapter, SessionOwnerAnswer } from '../adapter/adapter.js'
import { BurstLog } from '../burst-log.js'
import { InputFirstTimer } from '../input-first-timer.js'
import { sameParams } from '../route-params.js'
import { GOODBYE, goodbyeSentTo, MAX_GOODBYE_HOPS, ROUTED_HEADER, SENT_ON } from './routing.js'

/**
 * What a resume's lookup found (see `Forwarder.resumeOwner`): the session's node, `handedOffBy`,
 * is handing it off, and the resume is answered here, where the session is claimed. For any
 * other request (see `Forwarder.ownerOf`): its node handed it off, and this node has no way to
 * reach that node (it said it left: its drain is over).
 */
export interface HandedOff {
  readonly handedOffBy: string
}

/** True when a resume's lookup found the session handed off (see `HandedOff`). */
export function isHandedOff(found: Owner | HandedOff | undefined): found is HandedOff {
  return found !== undefined && 'handedOffBy' in found
}

/** The node that owns a session, as far as forwarding to it goes. */
export interface Owner {
  node: string
  /** Its base URL: requests go there over the network. Without one, `Adapter.routeRequest`. */
  url?: string
  /**
   * A live node that this closing node sends a request on to (`anotherNode`), marked `SENT_ON`:
   * a resume of a session it handed off, or the goodbye of one a node that is gone handed off.
   */
  sentOn?: true
  /**
   * On a goodbye sent on (see `OwnerLookup.goodbyeNode`): the nodes it was sent on to, this one
   * the last, carried in `SENT_TO_HEADER`.
   */
  sentTo?: readonly string[]
  /**
   * The node is handing the session off (its drain): should it not be reached, its drain is
   * over, and the session waits to be claimed (see `HandedOff`).
   */
  handingOff?: true
}

export interface OwnerLookupOptions {
  adapter: Adapter
  log: FastifyBaseLogger
  /** The longest wait for the adapter to name a session's owner. */
  connectTimeout: number
  /** Called when the adapter's `anotherNode` rejected (logged by the server, once per burst). */
  noOtherNode(err: unknown): void
}

/**
 * Asks the adapter which node a request is to be handed to: the owner of its session
 * (`ownerOf`), or, for a resume this draining node sent its session off with, a live node to
 * claim it (`anotherNode`). Only nodes this node can reach count: with a URL, or (HTTP only)
 * through the adapter's `routeRequest`.
 */
export class OwnerLookup {
  readonly #options: OwnerLookupOptions
  /** Owner lookups the adapter failed (its store away): one line per burst, not one per request. */
  readonly #lookupsFailed: BurstLog

  constructor(options: OwnerLookupOptions) {
    this.#options = options
    this.#lookupsFailed = new BurstLog(
      options.log,
      'warn',
      (count) =>
        `the adapter could not tell where a session lives, ${count} time(s) since the last such line; answered here (a resume is told to try again when the adapter cannot claim it either, or names a live node as its owner)`,
    )
  }

  /**
   * See `Forwarder.ownerOf`. `params`: the route parameters of the request; a session the adapter
   * says opened under others (another tenant) is none of its: undefined, as for no session.
   */
  async ownerOf(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    resume: boolean,
    params?: Readonly<Record<string, string>>,
  ): Promise<Owner | HandedOff | undefined> {
    const adapter = this.#options.adapter
    const mark = request.headers[ROUTED_HEADER]
    if (!adapter.sessionOwner || (mark !== undefined && mark !== GOODBYE)) return undefined
    try {
      const owner = await this.#lookUp(adapter.sessionOwner.bind(adapter), sid)
      if (typeof owner !== 'object') return undefined
      if (params && owner.params && !sameParams(owner.params, params)) return undefined
      if (resume && owner.handingOff) return { handedOffBy: owner.node }
      const found: Owner = owner.handingOff ? { node: owner.node, handingOff: true } : { node: owner.node }
      if (typeof owner.url === 'string') return { ...found, url: owner.url }
      // The adapter's routes carry no such mark: the goodbye would be taken for a plain POST.
      if (mark === GOODBYE) return undefined
      if (medium === 'http' && adapter.routeRequest) return found
      return owner.handingOff ? { handedOffBy: owner.node } : undefined
    } catch (err) {
      this.#lookupsFailed.record({ err })
      return undefined
    }
  }

  /**
   * The adapter's answer to where `sid` lives, or a rejection once `connectTimeout` passed
   * without one: a lookup that never settles (a store that hangs, an adapter without a timeout
   * of its own) must not hold the request forever, nor keep it from Fastify's handlerTimeout
   * in vain (see handler-timeout.ts). It counts as a failed lookup.
   */
  async #lookUp(
    sessionOwner: (sid: string) => SessionOwnerAnswer | Promise<SessionOwnerAnswer>,
    sid: string,
  ): Promise<SessionOwnerAnswer> {
    // Asked before the timer is set: an adapter that throws at once leaves none behind.
    const asked = sessionOwner(sid)
    const ms = this.#options.connectTimeout
    let timer: InputFirstTimer | undefined
    try {
      return await Promise.race([
        asked,
        new Promise<never>((_, reject) => {
          // Its verdict waits two turns (see `InputFirstTimer`): after a stall of this thread past
          // `ms`, an answer that came meanwhile on the adapter's connection is read first, and
          // the request goes to the session's node rather than being answered here.
          timer = new InputFirstTimer(ms, () =>
            reject(new Error(`the adapter named no owner within ${ms} ms`)),
          )
        }),
      ])
    } finally {
      timer?.clear()
    }
  }

  /** See `Forwarder.anotherNode`. */
  anotherNode(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
  ): Promise<Owner | undefined> {
    if (request.headers[ROUTED_HEADER] !== undefined) return Promise.resolve(undefined)
    return this.#another(sid, medium, [])
  }

  /** See `Forwarder.goodbyeNode`. */
  async goodbyeNode(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    unreached: readonly string[],
  ): Promise<Owner | undefined> {
    const mark = request.headers[ROUTED_HEADER]
    const sentTo = mark === undefined ? [] : mark === SENT_ON ? goodbyeSentTo(request.headers) : undefined
    if (sentTo === undefined) return undefined
    const except = [...sentTo, ...unreached]
    if (except.length >= MAX_GOODBYE_HOPS) return undefined
    const other = await this.#another(sid, 'http', except)
    // An adapter that does not leave out the nodes named (one of an earlier version) could name
    // one of them again: the goodbye goes no further then.
    if (other === undefined || except.includes(other.node)) return undefined
    return { ...other, sentTo: [...except, other.node] }
  }

  /** A live node but those of `except` (see `Adapter.anotherNode`), that this node can reach. */
  async #another(
    sid: string,
    medium: 'http' | 'websocket',
    except: readonly string[],
  ): Promise<Owner | undefined> {
    const adapter = this.#options.adapter
    if (!adapter.anotherNode) return undefined
    try {
      const other = await adapter.anotherNode(sid, except.length > 0 ? new Set(except) : undefined)
      if (other === undefined) return undefined
      if (typeof other.url === 'string') return { node: other.node, url: other.url, sentOn: true }
      return medium === 'http' && adapter.routeRequest ? { node: other.node, sentOn: true } : undefined
    } catch (err) {
      this.#options.noOtherNode(err)
      return undefined
    }
  }

  /** Logs what is left of a burst of failed lookups. */
  close(): void {
    this.#lookupsFailed.close()
  }
}
