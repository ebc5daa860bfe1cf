import type { ServerResponse } from 'node:http'
import type { OpenPacket, Packet, ParleyError } from '@parley/protocol'
import { BaseTransport, type Outgoing } from './transport.js'

/** Extra response headers a route wants on every answer (CORS). */
export type HeaderBag = Record<string, string>

/**
 * What SSE and long-polling share: the handshake answer goes in the body of the handshake POST,
 * and upstream packets arrive in POST bodies that the HTTP routes decode and hand over here.
 */
export abstract class HttpTransport extends BaseTransport {
  #openLine: string | undefined

  handshake(open: Outgoing<OpenPacket>): void {
    this.#openLine = open.text
  }

  /** The OPEN line for the handshake POST's answer, once the session has attached us. */
  get openLine(): string | undefined {
    return this.#openLine
  }

  /** Answers a GET that came after the close with the packets that were left. */
  abstract serveLast(res: ServerResponse, headers: HeaderBag): void

  /** Packets from an upstream POST body, decoded. */
  receive(packets: Packet[]): void {
    this.emitPackets(packets)
  }

  /** An upstream POST body that did not decode. */
  reject(error: ParleyError): void {
    this.emitInvalid(error)
  }
}
