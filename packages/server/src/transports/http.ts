import type { ServerResponse } from 'node:http'
import type { ClosePacket, OpenPacket, Packet, ParleyError } from '@parley/protocol'
import { BaseTransport, type HttpSide, type Outgoing } from './transport.js'

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

  handshake(answer: Outgoing<OpenPacket | ClosePacket>): void {
    this.#answerLine = answer.text
  }

  /**
   * The body of the handshake POST's answer: the OPEN line once a session has attached us, or
   * the CLOSE line of the ended session a resume named. Undefined until then. Given once.
   */
  takeAnswerLine(): string | undefined {
    const line = this.#answerLine
    this.#answerLine = undefined
    return line
  }

  /** Answers a GET that came after the close with the packets that were left. */
  abstract serveLast(res: ServerResponse, headers: HeaderBag): void

  /** A GET for the downstream: SSE streams on it, polling holds it until there is something. */
  abstract downstream(res: ServerResponse, headers: HeaderBag): void

  /** Packets from an upstream POST body, decoded. */
  receive(packets: Packet[], sizes: readonly number[]): void {
    this.emitPackets(packets, sizes)
  }

  /** An upstream POST body that did not decode. */
  reject(error: ParleyError): void {
    this.emitInvalid(error)
  }
}
