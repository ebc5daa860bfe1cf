import {
  type ClosePacket,
  ErrorCode,
  isBusyCode,
  type OpenPacket,
  ParleyError,
  type TransportName,
  type WsCloseCode,
} from '@parley/protocol'
import * as CloseCode from '../close-code.js'
import type { DecodeResult, Delivered } from '../codec.js'
import { named } from '../options.js'
import type { Outgoing } from '../outgoing.js'
import * as PacketType from '../packet-type.js'
import type { TransportSetup } from './registry.js'

/**
 * What is left to do with a packet once its owner took it in (its number, the ACK it is owed):
 * the part that runs the application's code. A transport runs it at once, or, for a whole answer,
 * once it asked for the next one (polling: a busy listener must not hold back the next GET).
 */
export type Later = (() => void) | undefined

/** What a transport tells its owner once attached. */
export interface TransportHandlers {
  /**
   * A decoded packet from the server, in arrival order; or a packet this client must refuse,
   * whose sequence number could still be read (`seq`, 0 for an unnumbered one): the medium is
   * fine, the packet is not. The session decides.
   */
  decoded(decoded: Delivered): Later
  /** The transport is gone (called once, never after `close()`). */
  close(error: ParleyError<string>): void
}

/** What the server answered a HELLO with: OPEN, or the CLOSE of a session that already ended. */
export type Welcome = OpenPacket | ClosePacket

/**
 * One medium, nothing else: it opens, says HELLO, hands back the OPEN, then carries packets.
 * It knows nothing of sequence numbers, acks, or the other transports; what differs between
 * media is declared here, never asked of a name.
 */
export interface Transport {
  readonly name: TransportName
  /**
   * How long an ACK may wait for other packets to travel with, in ms, and how many packets it
   * may wait for: an ACK alone costs a WebSocket frame, but a whole POST over SSE. Infinity: the
   * transport carries ACKs itself (polling, in its GETs). The server asks for an ACK sooner (a
   * PING) when what it keeps for the client grows large.
   */
  readonly ackDelay: number
  readonly ackAfter: number
  /**
   * True when requests share pooled connections (HTTP): after the link froze, a new request may
   * be sent on a dead pooled connection, so a resume tries such a transport twice. Left out
   * where false (WebSocket): a field fewer in the bundle.
   */
  readonly pooled?: boolean
  /**
   * True while no HELLO can have reached the server, or the server cannot have taken it: a
   * WebSocket whose upgrade has not gone through. Where the HELLO goes with the first request
   * (SSE, polling) it may have reached the server as soon as open() began: true only once that
   * request was answered with a coded 4xx (a refusal before the server takes a HELLO), or failed
   * before connecting, which Node alone can tell, and only of its own fetch (see HttpTransport).
   */
  readonly unsent?: boolean
  /**
   * True when the HELLO's request failed on a connection that closed under it before any answer
   * (`UND_ERR_SOCKET`, which Node alone tells, of its own fetch: see HttpTransport): a pooled
   * connection that the loss of the transport before had closed too, handed out by the pool
   * before it heard so. A resume tries the same transport once more (see Connection).
   */
  readonly reset?: boolean
  /**
   * Opens the medium and sends `hello`, the HELLO packet encoded; resolves with the server's OPEN (or the CLOSE of the
   * session the HELLO asked to resume) within `timeout` ms (SSE: then its stream's first bytes
   * within `stream` ms of its GET, `timeout` when not given). Rejects with a ParleyError;
   * `details.refused` is true when the server refused the client itself (middleware, origin,
   * version): trying another transport would not help. `patient`: an attempt soon after a
   * handoff (a resume, or a connect() after disconnect()), when the medium worked a moment ago
   * and the nodes are busy: no early give-up on a slow upgrade (see the WebSocket's). `of` ends
   * the message of an error that names `timeout` (or `stream`): whose bound it is, when not
   * connectTimeout (see Connection's #connect); set, a WebSocket's unanswered upgrade names that
   * bound as the one its wait was a share of.
   */
  open(hello: string, timeout: number, patient?: boolean, stream?: number, of?: string): Promise<Welcome>
  /**
   * Starts delivering packets. Packets that arrived between OPEN and this call were held, so
   * the owner can apply the OPEN first; they are delivered now.
   */
  attach(handlers: TransportHandlers): void
  /** Queues packets for the server. Packets sent before `attach` are fine. */
  send(items: readonly Outgoing[]): void
  /**
   * The owner gave this attempt up (disconnect() during a handshake or a probe). Where no HELLO
   * can have reached the server yet (a WebSocket not yet upgraded), the medium ends now; else it
   * is left to its answer, which may be an OPEN that needs the goodbye (see Connection.close):
   * in Node, for LEAVE_GRACE_MS at most (see afterGrace).
   */
  leave(): void
  /**
   * Closes the medium at once, without a `close` callback. `done`: the session is over (after
   * a CLOSE), rather than this transport dropped.
   */
  close(done?: boolean): void
}

/**
 * How long (ms) a handshake left by disconnect(), or a WebSocket's closing handshake, may still
 * wait for the server's answer, in Node.
 */
const LEAVE_GRACE_MS = 2000

/**
 * Node only (callers leave it out of the browser build): runs `end` once a handshake left by
 * disconnect() has had LEAVE_GRACE_MS for its answer. A server that took the HELLO and never
 * answers would otherwise hold the process (the medium's connection, the handshake's timer) until
 * connectTimeout after the application let go of the client. A grace rather than at once: a live
 * server answers within it, and its session gets the goodbye; one that answers later keeps that
 * session for its recovery window, as for a goodbye lost. The timer is unref'd, so that it holds
 * nothing open itself. A page lives on: there the handshake is left to its answer. The closing
 * handshake of a WebSocket gets the same grace (see endOnceSent in websocket.ts).
 *
 * As deadline's verdict, `end` runs one turn of the event loop after the timer: after a stall of
 * the thread past the grace (a long synchronous task, a machine waking), the answer that came
 * meanwhile (the OPEN, the server's side of the closing handshake) is read first. Ended before,
 * the handshake was cut with its OPEN unread: no goodbye went, and the server kept the session
 * for its recovery window. The mechanism of deadline rather than deadline itself: its timer is
 * not unref'd, and this, left out of the browser build, costs that build nothing.
 */
export function afterGrace(end: () => void): void {
  ;(
    setTimeout(
      () => ((globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate ?? setTimeout)(end),
      LEAVE_GRACE_MS,
    ) as { unref?(): void }
  ).unref?.()
}

/** Creates a transport for one attempt; transports are never reused. */
export type TransportFactory = (name: TransportName) => Transport

/**
 * The part every transport shares: holding packets until `attach`, and making sure the owner
 * hears `close` once and nothing after `close()`.
 */
export abstract class BaseTransport implements Transport {
  abstract readonly name: TransportName
  abstract readonly ackDelay: number
  abstract readonly ackAfter: number
  // `declare`: set by the constructor alone (no field of the same name declared beforehand).
  /** The endpoint, with `?v=1` and the URL's own parameters. */
  declare readonly url: string
  /** The largest packet taken from the server: OPEN's `maxPayload` once it came. */
  declare payloadMax: number
  /** What the session gives every transport: fetch, the WebSocket constructor, the query, ACKs. */
  declare readonly setup: TransportSetup
  #handlers: TransportHandlers | undefined
  /** What came before `attach`, each a packet or a refusal with a number (never a broken stream). */
  #held: Delivered[] = []
  #closeError: ParleyError<string> | undefined
  /**
   * True once closed, by either side: every callback of the medium checks it. Undefined before,
   * rather than false, and `declare`d: no initial value and no declaration in the bundle.
   */
  declare protected closed?: boolean

  constructor(url: string, setup: TransportSetup, maxPayload: number) {
    this.url = url
    this.setup = setup
    this.payloadMax = maxPayload
  }

  abstract open(
    hello: string,
    timeout: number,
    patient?: boolean,
    stream?: number,
    of?: string,
  ): Promise<Welcome>
  abstract send(items: readonly Outgoing[]): void
  abstract leave(): void
  /** Releases the medium's resources; `code` says why, where the medium can say it. */
  protected abstract teardown(code: WsCloseCode): void

  attach(handlers: TransportHandlers): void {
    this.#handlers = handlers
    const held = this.#held
    this.#held = []
    for (const decoded of held) {
      if (this.#handlers !== handlers) return
      handlers.decoded(decoded)?.()
    }
    if (this.#closeError) handlers.close(this.#closeError)
  }

  close(done?: boolean): void {
    if (this.closed) return
    this.closed = true
    this.#handlers = undefined
    this.teardown(done ? CloseCode.NORMAL : CloseCode.TRANSPORT_DROPPED)
  }

  /**
   * Passes a decoded packet up (or holds it until attach). A refused one goes up as refused
   * when its number could be read; otherwise the stream is broken and the transport fails.
   * The application's part runs at once, or goes into `later` for the caller to run.
   */
  protected deliver(decoded: DecodeResult, later?: Later[]): void {
    if (this.closed) return
    if (!decoded.ok && decoded.seq === undefined) this.fail(decoded.error)
    else if (this.#handlers) {
      const run = this.#handlers.decoded(decoded)
      later ? later.push(run) : run?.()
    } else this.#held.push(decoded)
  }

  /**
   * What a decoded handshake answer means: OPEN (whose `maxPayload` holds from now on), or the
   * CLOSE of the session we asked to resume; otherwise it throws why not: the decoder's error, a
   * refusal by the server (an unnumbered ERROR, with the server's possibly application-defined
   * code), or nonsense, an OPEN whose `ack` is past what this client sent included.
   */
  protected welcome(decoded: DecodeResult): Welcome {
    if (!decoded.ok) throw decoded.error
    const packet = decoded.packet
    if (packet.type === PacketType.OPEN) {
      // Refused, not applied (as an ACK past what was sent is, see Ledger.badAck): this transport
      // fails, and the session resumes on the next one, or after the backoff, with everything the
      // server has not acknowledged kept. Opened, the session would send it again with numbers a
      // server that believes its ack drops as duplicates.
      const bad = this.setup.ledger.badAck(packet.ack, !packet.recovered)
      if (bad) throw bad
      this.payloadMax = packet.maxPayload
      return packet
    }
    if (packet.type === PacketType.CLOSE) return packet
    throw packet.type === PacketType.ERROR
      ? // A node shutting down, or full, refuses the handshake, not this client: another node,
        // or the same one after a backoff, will take it. So does a handshake that failed inside
        // the server (an adapter whose store was away): SERVER_SHUTTING_DOWN now, BAD_REQUEST
        // from servers before it (kept so for a client newer than its server). Nor does a HELLO
        // that reached the server after its handshakeTimeout (a slow link): the transport failed;
        // nor one whose handshake middleware did not settle in time (`ackId` 1): the transport
        // is fine, the application was slow (`middleware`, see Connection).
        new ParleyError<string>(packet.code, packet.message, {
          details: {
            refused:
              !isBusyCode(packet.code) &&
              packet.code !== ErrorCode.BAD_REQUEST &&
              packet.code !== ErrorCode.HANDSHAKE_TIMEOUT,
            middleware: packet.ackId > 0 || undefined,
          },
        })
      : new ParleyError(ErrorCode.INVALID_PACKET, `expected OPEN, got ${packet.type}`)
  }

  /** The medium failed or ended on its own. */
  protected fail(error: ParleyError<string>): void {
    const handlers = this.#handlers
    if (this.closed) return
    this.close()
    if (handlers) handlers.close(error)
    else this.#closeError = error
  }
}

/**
 * A transport-level failure. Its message ends with what the platform said, when it said
 * anything: the deepest code in the cause chain (`ECONNREFUSED`, `DEPTH_ZERO_SELF_SIGNED_CERT`)
 * or else the deepest message, so that the reason is not buried in `err.cause.cause`.
 */
export function transportError(message: string, cause?: unknown): ParleyError<string> {
  type Cause = { code?: unknown; message?: unknown; cause?: Cause } | undefined
  let why: unknown
  // The cause may be anything a WebSocket or fetch of the application's threw, a Proxy whose
  // traps throw or a revoked one included: read as far as it lets itself be read.
  try {
    // A coded failure of our own (no WebSocket here, an answer past maxPayload) as it is.
    if (cause instanceof ParleyError) return cause
    why = (cause as Cause)?.message
    // The deepest code wins over the top message ("fetch failed" says less than ECONNREFUSED).
    // Browsers give neither codes nor causes (a TypeError "Failed to fetch"): the browser build
    // (which defines PARLEY_BROWSER_BUNDLE true) leaves this out.
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
      // Else the deepest message: "fetch failed" says less than the "bad port" under it.
      let code: unknown
      for (let e = cause as Cause, n = 0; e && n < 4; e = e.cause, n++) {
        if (typeof e.code === 'string') code = e.code
        else if (typeof e.message === 'string' && e.message !== '') why = e.message
      }
      why = code ?? why
    }
  } catch {}
  return new ParleyError(
    ErrorCode.TRANSPORT_ERROR,
    why ? `${message}: ${named(why)}` : message,
    cause === undefined ? undefined : { cause },
  )
}

/** The URL without its query (which may hold credentials), for messages. An arrow: fewer bytes. */
export const shown = (url: string): string => url.replace(/\?.*/s, '')

/** Node only: an answer or an SSE event larger than any may be, in UTF-8 bytes. */
export function tooLarge(what: string, maxPayload: number): ParleyError {
  return new ParleyError(ErrorCode.PAYLOAD_TOO_LARGE, `${what} over ${maxPayload} bytes`)
}

/**
 * The error for "nothing came within the bound"; `of` says whose bound, when not the obvious one
 * (before `details`, which most calls leave out).
 */
export function timeoutError(
  what: string,
  ms: number,
  of = '',
  details?: Record<string, unknown>,
): ParleyError {
  return new ParleyError(ErrorCode.HANDSHAKE_TIMEOUT, `${what} within ${ms} ms${of}`, { details })
}

/**
 * The error for "the server went silent": a POST unanswered, or nothing at all, within `ms`. The
 * transport is lost; `details.timeout` is the bound.
 */
export function silence(what: string, ms: number): ParleyError {
  return new ParleyError(ErrorCode.TRANSPORT_ERROR, `${what} within ${ms} ms`, { details: { timeout: ms } })
}
