import type { ServerResponse } from 'node:http'
import type { AckPacket, ClosePacket, OpenPacket, Packet, ParleyError } from '@parley/protocol'
import { BaseTransport, type HttpSide, type Outgoing } from './transport.js'

/**
 * The time in whole milliseconds (`performance.now()`, rounded down). A transport keeps such
 * times in its own fields, where V8 holds a small integer as it is and any other number in a
 * number object of its own (16 bytes more per idle client for each).
 */
export const nowMs = (): number => Math.floor(performance.now())

/** How long a client that was never measured may take to send the GET it is about to send. */
export const NEXT_GET_UNMEASURED_MS = 1000

/**
 * The least a client between two polls is given, however fast it was so far: a page that polled
 * again at once may still be slow to send its next GET (a client that runs its listeners first,
 * as thin ones may; Parley's own sends the GET before them, but a busy page delays even that),
 * and missing the GET costs it the CLOSE and its `retryAfter`.
 */
const NEXT_GET_MIN_MS = 500

/**
 * The time a client with `turnaround` (its slowest recent time from an answer to its next
 * GET, negative when unmeasured) has left for its next GET, `sinceAnswer` ms after the answer.
 */
export function nextGetWithin(turnaround: number, sinceAnswer: number): number {
  const allowed = turnaround < 0 ? NEXT_GET_UNMEASURED_MS : Math.max(NEXT_GET_MIN_MS, 4 * turnaround)
  return allowed - sinceAnswer
}

/** Extra response headers a route wants on every answer (CORS). */
export type HeaderBag = Record<string, string>

/**
 * What SSE and long-polling share: the handshake answer goes in the body of the handshake POST,
 * and upstream packets arrive in POST bodies that the HTTP routes decode and hand over here.
 */
export abstract class HttpTransport extends BaseTransport implements HttpSide {
  #answerLine: string | undefined

  /** This transport takes the endpoints' requests itself. */
  override get http(): HttpSide {
    return this
  }

  /** The OPEN goes in the answer to the handshake POST; the client then GETs the downstream. */
  override get downstreamFollows(): boolean {
    return true
  }

  handshake(answer: Outgoing<OpenPacket | ClosePacket>, ack?: Outgoing<AckPacket>): void {
    this.#answerLine = ack ? `${ack.text}\n${answer.text}` : answer.text
  }

  /**
   * The body of the handshake POST's answer: the OPEN line once a session has attached us, or
   * the CLOSE line of the ended session a resume named (after its ACK line, for a client that
   * reads one). Undefined until then. Given once.
   */
  takeAnswerLine(): string | undefined {
    const line = this.#answerLine
    this.#answerLine = undefined
    return line
  }

  /** Answers a GET that came after the close with the packets that were left. */
  abstract serveLast(res: ServerResponse, headers: HeaderBag): void

  /** See `HttpSide.nextGetWithin`. */
  abstract nextGetWithin(): number | undefined

  /** A GET for the downstream (see `HttpSide.downstream`). */
  abstract downstream(res: ServerResponse, headers: HeaderBag, ack?: number): void

  /** Packets from an upstream POST body, decoded. */
  receive(packets: Packet[], sizes: readonly number[]): void {
    this.emitPackets(packets, sizes)
  }

  /** An upstream POST body that did not decode. */
  reject(error: ParleyError): void {
    this.emitInvalid(error)
  }
}
