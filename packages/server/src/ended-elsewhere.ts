import { type ClosePacket, decodeText, isCount, PacketType } from '@parley/protocol'
import type { Adapter, EndedSession } from './adapter/adapter.js'
import { callGuarded } from './adapter-failures.js'
import { within } from './drain.js'
import type { Ending } from './ended-sessions.js'
import { keptParams, type RouteParams } from './route-params.js'
import { outgoing } from './transports/transport.js'

/**
 * How a session ended, kept where every node finds it (see `Adapter.sessionEnded`), and read
 * back for a resume that reaches another node. The node's own table (`EndedSessions`) answers
 * first; this is for the resumes it cannot answer, so that a client whose resume lands
 * elsewhere gets the same CLOSE and last ACK as on the session's own node, never a fresh
 * session into which it sends again what the ended one handled.
 */
export class EndedElsewhere {
  readonly #adapter: Adapter
  readonly #ttl: number
  readonly #wait: number
  readonly #failed: { record: (err: unknown) => void; lookup: (err: unknown) => void }

  /**
   * `ttl`: ms the adapter keeps a record (as long as the node's own table); `wait`: the longest a
   * lookup is waited for (the server's handshakeTimeout); `failed`: logs a failed record or lookup.
   */
  constructor(
    adapter: Adapter,
    ttl: number,
    wait: number,
    failed: { record: (err: unknown) => void; lookup: (err: unknown) => void },
  ) {
    this.#adapter = adapter
    this.#ttl = ttl
    this.#wait = wait
    this.#failed = failed
  }

  /**
   * Session `sid` ended here with `close`, having taken its client's packets up to `ack`, under
   * the route parameters `params` (undefined when not known). Never throws.
   */
  record(sid: string, close: ClosePacket, ack: number, params?: RouteParams): void {
    const adapter = this.#adapter
    if (!adapter.sessionEnded || this.#ttl <= 0) return
    const ending: EndedSession = params === undefined ? { close, ack } : { close, ack, params: { ...params } }
    callGuarded(() => adapter.sessionEnded?.(sid, ending, this.#ttl), this.#failed.record)
  }

  /**
   * How `sid` ended on another node, if the adapter knows; undefined when it does not, answers
   * nothing well formed, fails or takes longer than `wait` (logged: the resume then gets a new
   * session, as it did before nodes shared their ends). Never rejects.
   */
  async lookUp(sid: string): Promise<Ending | undefined> {
    const adapter = this.#adapter
    if (!adapter.endedSession) return undefined
    try {
      const asked = Promise.resolve(adapter.endedSession(sid))
      const answer = await within(asked, this.#wait, TIMED_OUT)
      if (answer === TIMED_OUT) throw new Error(`the adapter did not answer within ${this.#wait} ms`)
      // null as undefined: an adapter's store may answer a missing key so.
      return answer === undefined || answer === null ? undefined : ending(answer)
    } catch (err) {
      this.#failed.lookup(err)
      return undefined
    }
  }
}

const TIMED_OUT = Symbol('timed out')

/**
 * The adapter's answer, checked by the protocol's own decoder as the wire's CLOSE is (an
 * adapter of the application's may answer anything), and made anew by it: nothing but the
 * CLOSE's own fields reaches the client.
 */
function ending(answer: EndedSession): Ending {
  const close = closeOf(answer.close)
  const params = paramsOf(answer.params)
  if (!close || !isCount(answer.ack) || params === null)
    throw new TypeError('the adapter answered endedSession with something other than an EndedSession')
  return params === undefined
    ? { close: outgoing(close), ack: answer.ack }
    : { close: outgoing(close), ack: answer.ack, params }
}

/**
 * `value` (an `EndedSession`'s `params`) as the route parameters a session keeps: undefined when
 * absent (a record of an earlier version's: it answers a resume under any), null when it is
 * anything but an object of strings.
 */
function paramsOf(value: unknown): RouteParams | undefined | null {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  const params: Record<string, string> = {}
  for (const [name, each] of Object.entries(value)) {
    if (typeof each !== 'string') return null
    params[name] = each
  }
  return keptParams(params)
}

/** `value` as a CLOSE the decoder takes, else undefined; its message is not held to maxPayload. */
function closeOf(value: unknown): ClosePacket | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const { type, reason, message, retryAfter } = value as Partial<ClosePacket>
  if (type !== PacketType.CLOSE) return undefined
  const fields = retryAfter === undefined ? [type, reason, message] : [type, reason, message, retryAfter]
  let text: string
  try {
    text = JSON.stringify(fields)
  } catch {
    return undefined // a BigInt, say: no CLOSE
  }
  const decoded = decodeText(text, ANY_LENGTH)
  return decoded.ok && decoded.packet.type === PacketType.CLOSE ? decoded.packet : undefined
}

const ANY_LENGTH = { maxPayload: Number.MAX_SAFE_INTEGER }
