import {
  ErrorCode,
  type HelloPacket,
  type OpenPacket,
  type Packet,
  ParleyError,
  type TransportName,
} from '@parley/protocol'
import * as PacketType from '../packet-type.js'
import type { Outgoing } from '../session.js'

/** What a transport tells its owner once attached. */
export interface TransportHandlers {
  /** A decoded packet from the server, in arrival order. */
  packet(packet: Packet): void
  /** The transport is gone (called once, never after `close()`). */
  close(error: ParleyError<string>): void
}

/**
 * One medium, nothing else: it opens, says HELLO, hands back the OPEN, then carries packets.
 * It knows nothing of sequence numbers, acks, or the other transports.
 */
export interface Transport {
  readonly name: TransportName
  /**
   * Opens the medium and sends HELLO; resolves with the server's OPEN within `timeout` ms.
   * Rejects with a ParleyError; `details.refused` is true when the server refused the client
   * itself (middleware, origin, version): trying another transport would not help.
   */
  open(hello: HelloPacket, timeout: number): Promise<OpenPacket>
  /**
   * Starts delivering packets. Packets that arrived between OPEN and this call were held, so
   * the owner can apply the OPEN first; they are delivered now.
   */
  attach(handlers: TransportHandlers): void
  /** Queues packets for the server. Packets sent before `attach` are fine. */
  send(items: readonly Outgoing[]): void
  /** Closes the medium at once, without a `close` callback. */
  close(): void
}

/** Creates a transport for one attempt; transports are never reused. */
export type TransportFactory = (name: TransportName, maxPayload: number) => Transport

/**
 * The part every transport shares: holding packets until `attach`, and making sure the owner
 * hears `close` once and nothing after `close()`.
 */
export abstract class BaseTransport implements Transport {
  abstract readonly name: TransportName
  #handlers: TransportHandlers | undefined
  #held: Packet[] = []
  #closeError: ParleyError<string> | undefined
  /** True once closed, by either side: every callback of the medium checks it. */
  protected closed = false

  abstract open(hello: HelloPacket, timeout: number): Promise<OpenPacket>
  abstract send(items: readonly Outgoing[]): void
  /** Releases the medium's resources. */
  protected abstract teardown(): void

  attach(handlers: TransportHandlers): void {
    this.#handlers = handlers
    const held = this.#held
    this.#held = []
    for (const p of held) {
      if (this.#handlers !== handlers) return
      handlers.packet(p)
    }
    if (this.#closeError) handlers.close(this.#closeError)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.#handlers = undefined
    this.teardown()
  }

  /** Passes a packet from the medium up (or holds it until attach). */
  protected deliver(packet: Packet): void {
    if (this.closed) return
    if (this.#handlers) this.#handlers.packet(packet)
    else this.#held.push(packet)
  }

  /** The medium failed or ended on its own. */
  protected fail(error: ParleyError<string>): void {
    if (this.closed) return
    this.closed = true
    this.teardown()
    const handlers = this.#handlers
    this.#handlers = undefined
    if (handlers) handlers.close(error)
    else this.#closeError = error
  }
}

/** A transport-level failure, with the cause when there is one. */
export function transportError(message: string, cause?: unknown): ParleyError {
  return new ParleyError(ErrorCode.TRANSPORT_ERROR, message, cause === undefined ? undefined : { cause })
}

/** The error for "nothing came within the bound". */
export function timeoutError(what: string, ms: number): ParleyError {
  return new ParleyError(ErrorCode.HANDSHAKE_TIMEOUT, `${what} within ${ms} ms`)
}

/**
 * What a handshake answer means: OPEN, or a refusal by the server (an unnumbered ERROR), or
 * nonsense. A refusal carries the server's (possibly application-defined) code.
 */
export function handshakeResult(packet: Packet): OpenPacket | ParleyError<string> {
  if (packet.type === PacketType.OPEN) return packet
  if (packet.type === PacketType.ERROR) {
    return new ParleyError<string>(packet.code, packet.message, { details: { refused: true } })
  }
  return new ParleyError(ErrorCode.INVALID_PACKET, `expected OPEN, got packet type ${packet.type}`)
}

/** True when an error means the server refused this client, whatever the transport. */
export function isRefusal(error: unknown): boolean {
  return error instanceof ParleyError && error.details?.refused === true
}
