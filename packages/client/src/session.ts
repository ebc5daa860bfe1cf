import {
  AckTable,
  type CloseReason,
  ErrorCode,
  type EventPacket,
  type JsonValue,
  MAX_TIMER_MS,
  type OpenPacket,
  type Packet,
  ParleyError,
  type TransportName,
} from '@parley/protocol'
import { encode, encodeText, made, type Sent } from './codec.js'
import * as State from './connection-state.js'
import { deadline } from './deadline.js'
import type { ReservedEvents, SwitchReason } from './events.js'
import { Connection, type ConnectionHost } from './fallback.js'
import { type AckPace, DELIVER, GAP, Ledger } from './ledger.js'
import { TransportMemory } from './memory.js'
import { named, type ResolvedOptions } from './options.js'
import { BYE } from './outgoing.js'
import * as PacketType from './packet-type.js'
import { TRANSPORTS, type TransportSetup } from './transports/registry.js'
import { type Later, silence, transportError } from './transports/transport.js'

/** What the session tells the socket above it. */
export interface SessionHost {
  /** An EVENT from the server: numbered ones in order and once. */
  event(packet: EventPacket): void
  /** Fires one of the socket's own events. */
  fire<K extends keyof ReservedEvents>(event: K, ...args: Parameters<ReservedEvents[K]>): void
}

/**
 * One session with the server, whatever carries it: the sequence numbers and replay (its
 * Ledger), ordering and the ACKs owed, the heartbeat, MOVED, CLOSE, and what to do with a packet
 * this client must refuse. It tells the application when the session comes and goes; the
 * connection below it decides which transport carries it.
 *
 * A packet the client cannot use never loops: when its number can be read it counts as
 * received (acknowledged with the rest, never delivered, never asked for again) and the
 * application hears an `error` with the decoder's code; when it cannot, the stream is broken and
 * the transport is dropped (the connection resumes elsewhere, within its backoff).
 */
export class Session implements ConnectionHost {
  // The fields below that are `declare`d have no declaration in the bundle (a few bytes each):
  // the constructor sets them, and `id` is undefined until an OPEN gives one either way.
  /** The socket's public id while a session is open (the server's `socket.id`). */
  declare id: string | undefined
  /** True when the last OPEN resumed the previous session with nothing lost. */
  recovered = false
  /**
   * Replies awaited from the server: REPLY and ERROR settle them, the end of the session rejects
   * them all; they survive transport switches and resumes.
   */
  declare readonly acks: AckTable
  /** The socket's options, resolved (the socket reads its `ackTimeout` here). */
  declare readonly opts: ResolvedOptions
  readonly #ledger: Ledger
  /** The transport life under the session: its state and transport are the socket's. */
  declare readonly connection: Connection
  readonly #host: SessionHost
  /** The session's and the connection's events go to the socket's listeners as they are. */
  declare readonly notify: SessionHost['fire']
  /** True between `connect` and `disconnect` as the application saw them. */
  #up?: boolean
  /** Stops the heartbeat's bound (see `opened`); set by each OPEN. */
  #stopLive?: () => void
  /** When the current transport last brought anything (`performance.now()`), set by each OPEN. */
  #heardAt!: number

  /** `base`: the mount point's URL; `query`: the URL's own parameters (`&key=value...`). */
  constructor(opts: ResolvedOptions, base: string, query: string, host: SessionHost) {
    this.#host = host
    this.notify = host.fire
    this.opts = opts
    this.acks = new AckTable(opts.maxPendingAcks)
    this.#ledger = new Ledger(opts, (ack) => this.connection.send([encode({ type: PacketType.ACK, ack })]))
    const fetch = opts.fetch ?? globalThis.fetch?.bind(globalThis)
    const setup: TransportSetup = {
      // The options as they are (the WebSocket constructor among them): a copy of the one the
      // transports read is fewer bytes than a property of its own.
      ...opts,
      // Every HTTP request goes through here: one place to ask for cookies on all of them.
      fetchFn: opts.withCredentials
        ? (url: RequestInfo | URL, init?: RequestInit) => fetch(url, { ...init, credentials: 'include' })
        : fetch,
      query,
      ledger: this.#ledger,
    }
    // Node only (the browser build, which never reads it, leaves it out): see `ownFetch`.
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE)
      setup.ownFetch = !opts.fetch
    this.connection = new Connection(
      opts,
      // The largest packet taken from the server: the last OPEN's, until the next OPEN says.
      (name) => TRANSPORTS[name](base, setup, this.#ledger.payloadMax),
      new TransportMemory(opts.storage, base),
      this,
    )
  }

  /**
   * Ends the session: CLOSE to the server when a transport is there, no more reconnection,
   * and what the server has not acknowledged is dropped. `leave`, a name the build shortens, where
   * `disconnect` (the socket's, public) could not be.
   */
  leave(): void {
    this.connection.send([BYE])
    this.connection.close()
    this.#end()
    this.#down('client disconnect')
  }

  /**
   * Numbers a packet, keeps it until the server acknowledges it, and sends it now when a
   * transport is attached (else after the next OPEN). Throws what `Ledger.keep` throws.
   */
  sendNumbered(build: (seq: number) => Sent): void {
    this.connection.send([this.#ledger.keep(build)])
  }

  /** Sends an unnumbered event now; false (nothing sent) without a transport. */
  sendVolatile(packet: EventPacket): boolean {
    return this.connection.state === State.OPEN && this.connection.send([this.#ledger.encodeChecked(packet)])
  }

  // What the connection tells the session (`ConnectionHost`): the session is its host.

  async hello(): Promise<string> {
    const a = this.opts.auth
    const sid = this.#ledger.sid
    // Set once the auth is known: a failure before that is the application's auth function's.
    let known: boolean | undefined
    try {
      let auth = typeof a === 'function' ? a() : a
      // Awaited when it is a promise (or any thenable), and only then: a value that cannot even
      // say whether it is one (a revoked Proxy, a Proxy whose traps throw), awaited, would fail as
      // the function's own failure, with the engine's or the trap's text; as it is, the encoder
      // refuses it as any value that cannot travel. (An async function's promise holds that
      // failure already: it is refused as what the function threw.)
      try {
        known = !(auth as { then?: unknown } | null)?.then
      } catch {
        known = true
      }
      if (!known) auth = await auth
      known = true
      // What is undefined stays off the wire: no auth, and no sid and ack for a new session.
      // `closeAck`: this client reads an ACK before the CLOSE that answers a resume of a session
      // that ended (see Connection's #adopt), and so sends nothing that ACK covers again.
      return encodeText({
        type: PacketType.HELLO,
        auth: auth as JsonValue,
        sid,
        ack: sid ? this.#ledger.inSeq : undefined,
        closeAck: true,
      })
    } catch (cause) {
      // An auth function that throws or rejects, or auth that cannot travel (a BigInt, a cycle,
      // a forbidden key): an error of the application's, the same on every transport and every
      // retry. A refusal of the client (no retry), as the server's own would be: the connection
      // tells it by the HELLO it never got. A ParleyError of the application's own, thrown or
      // rejected by its function, or thrown while the encoder read the auth (a toJSON, a getter,
      // a Proxy's trap: given back untouched, where the encoder's own refusal is `made`), is its
      // refusal made on purpose: it reaches the application untouched, its code, message and
      // details as it made them, as an emit's does. (`instanceof` throws on a revoked Proxy.)
      let own: boolean | undefined
      try {
        own = known ? cause !== made : cause instanceof ParleyError
      } catch {}
      if (own) throw cause
      // Known, the auth failed in the encoder, which made a coded error; else the cause is
      // whatever the function threw, named safely (a Proxy's traps may throw, and so may its
      // `toString`).
      throw new ParleyError(
        known ? (cause as ParleyError).code : ErrorCode.REFUSED,
        `auth: ${named(cause, 1)}`,
        {
          cause,
          details: { refused: true },
        },
      )
    }
  }

  opened(
    open: OpenPacket,
    now: TransportName,
    before: TransportName | null | undefined,
    why: SwitchReason,
    attempt: number,
  ): void {
    const fresh = this.#ledger.opened(open, (packet, error) =>
      // Later, with the session in place: an application's callback may throw.
      queueMicrotask(() => {
        if (packet.type === PacketType.EVENT) this.acks.settle(packet.ackId, error)
        this.notify('error', error)
      }),
    )
    this.id = open.id
    this.recovered = !fresh
    // Requests the old session got but never answered: no reply can come any more (those sent
    // again, in `kept`, wait on). Later too, as above.
    if (fresh)
      for (const id of this.acks.ids())
        if (!this.#ledger.kept.some((item) => (item.packet as EventPacket).ackId === id))
          queueMicrotask(() => this.acks.settle(id, ended))
    // Everything the server lacks, in order, before anything new.
    this.connection.send(this.#ledger.kept)
    // Watches the transport for life (here, its one caller): anything from the server proves it
    // alive. A packet only notes the time (a timer cleared and set again per packet showed in
    // profiles); the timer, when it fires, waits again for whatever is left of the window since
    // the last one. At most MAX_TIMER_MS: a timer set for longer fires at once, and would again
    // and again. A bound (see deadline): after a stall of the thread longer than the window, a
    // PING that came during it is read before the verdict, and the session lives on.
    const windowMs = Math.min(open.pingInterval + open.pingTimeout, MAX_TIMER_MS)
    this.#stopLive?.()
    this.#heardAt = performance.now()
    const check = (wait: number) => {
      this.#stopLive = deadline(() => {
        const left = this.#heardAt + windowMs - performance.now()
        if (left > 0) check(left)
        else this.connection.lost(silence('nothing from the server', windowMs), 'ping timeout')
      }, wait)
    }
    check(windowMs)
    // A silent resume found the session gone: the application must hear it was cut.
    if (fresh) this.#down('session expired')
    // A listener of that `disconnect`, or of `connect`, may have called disconnect() (which
    // forgets the id): nothing more is said of a session that is gone.
    if (!this.id) return
    if (!this.#up) {
      this.#up = true
      this.notify('connect')
      if (attempt > 0 && this.id) this.notify('reconnect', attempt)
    }
    // Up already: this attach came from an upgrade, a step down or a resume, never `connect`
    // (a connect attempt is made only once the session is down, see Connection).
    else if (before) this.notify('transport', now, before, why as Exclude<SwitchReason, 'connect'>)
  }

  refused(seq: number, error: ParleyError<string>, from: AckPace): Later {
    this.#heardAt = performance.now()
    // Numbered: it takes its place in the order (a duplicate or a gap is no news).
    if (this.#accept(seq, from)) return () => this.notify('error', error)
  }

  down(reason: CloseReason): void {
    this.#stopLive?.()
    this.#down(reason)
  }

  /**
   * Takes a packet in: its number and the ACK it is owed, the heartbeat, ACK and MOVED (which
   * run no code of the application's) at once. Returns the rest, in order: listeners, replies,
   * errors, and CLOSE (whose `disconnect` comes after the events before it).
   */
  packet(p: Packet, from: AckPace): Later {
    this.#heardAt = performance.now()
    switch (p.type) {
      case PacketType.PING: {
        // Over polling (which never sends an ACK of its own), the GET that follows the answer
        // bringing the PING answers it, with the ACK owed (docs/protocol.md, Heartbeat).
        if (from.ackAfter === Infinity) return
        // A PING asks for the ACK owed too, in the same write.
        const ack = this.#ledger.takeOwed()
        // Encoded per PING (one every pingInterval): a PONG kept encoded for the client's life, or
        // a helper for the ACK, cost the browser bundle a declaration; gzip stores the repeats.
        this.connection.send(
          ack
            ? [encode({ type: PacketType.ACK, ack }), encode({ type: PacketType.PONG })]
            : [encode({ type: PacketType.PONG })],
        )
        return
      }
      case PacketType.MOVED:
        // At once: the transport is done, and asks for nothing more.
        this.connection.moved()
        return
      case PacketType.ACK: {
        // Past what this client numbered (see Ledger.badAck): refused as an ACK whose number does
        // not decode is, and what waits for an ACK is kept.
        const bad = this.#ledger.badAck(p.ack)
        if (bad) return this.refused(0, bad, from)
        this.#ledger.acked(p.ack)
        return
      }
      case PacketType.EVENT:
        if (this.#accept(p.seq, from)) return () => this.#host.event(p)
        return
      case PacketType.REPLY:
        this.#ledger.answered(p.ackId)
        if (this.#accept(p.seq, from)) return () => this.acks.settle(p.ackId, null, p.args)
        return
      case PacketType.ERROR: {
        const error = new ParleyError<string>(p.code, p.message)
        this.#ledger.answered(p.ackId)
        if (this.#accept(p.seq, from))
          return () => (p.ackId > 0 ? this.acks.settle(p.ackId, error) : this.notify('error', error))
        return
      }
      case PacketType.CLOSE:
        // The server ended the session. Reconnect (to a new session) unless a person ended it. A
        // handoff did not end it: the session resumes elsewhere with everything it holds.
        return () => {
          this.#stopLive?.()
          // No timer waits longer than MAX_TIMER_MS (a longer one fires at once): so long, then.
          const retryAfter = Math.min(p.retryAfter ?? 0, MAX_TIMER_MS)
          if (p.reason === 'server handoff' && this.opts.reconnection) {
            this.connection.handedOff(retryAfter)
            return
          }
          const again =
            this.opts.reconnection && p.reason !== 'server disconnect' && p.reason !== 'client disconnect'
          this.#ledger.forget()
          this.id = undefined
          if (!again) this.#end()
          this.connection.ended(again, retryAfter, (willRetry) => {
            if (this.#up) this.#down(p.reason, p.message)
            else {
              // Already down (a resume found the session ended): the application still hears why.
              const error = new ParleyError(
                ErrorCode.DISCONNECTED,
                `session ended: ${p.reason}: ${p.message}`,
                {
                  details: { reason: p.reason },
                },
              )
              this.notify('connect_error', error, willRetry)
            }
          })
        }
      default:
      // OPEN, HELLO, PONG outside a handshake mean nothing to a client.
    }
  }

  /**
   * The ordering rule: true to deliver; duplicates are dropped, a gap means resume. An unnumbered
   * packet (seq 0: the decoder takes sequence numbers only as whole numbers from 0) is delivered.
   */
  #accept(seq: number, from: AckPace): boolean {
    if (seq < 1) return true
    const receipt = this.#ledger.receive(seq, from)
    if (receipt === GAP) this.connection.lost(transportError(`packets missing before ${seq}`))
    return receipt === DELIVER
  }

  /** Tells the application the session is down (once). */
  #down(reason: CloseReason, message?: string): void {
    if (!this.#up) return
    this.#up = false
    if (message === undefined) this.notify('disconnect', reason)
    else this.notify('disconnect', reason, { message })
  }

  /** Drops the session for good: the application disconnected, or reconnecting stopped. */
  #end(): void {
    this.#stopLive?.()
    this.#ledger.reset()
    this.id = undefined
    this.acks.rejectAll(ended)
  }
}

/**
 * Why a reply will not come: its session ended first. `about` names the event it answers, as in
 * the other errors of its wait (see `AckTable.register`).
 */
const ended = (about: string) =>
  new ParleyError(ErrorCode.DISCONNECTED, `${about}session ended before the reply`)
