import { type Packet, PacketType } from '@parley/protocol'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Session } from '../session.js'
import { CLOSE_CLIENT_HEADER, ROUTED_HEADER } from './routing.js'

/**
 * `sseUpstream: 'close-when-idle'`: which answers to an SSE client's POSTs close their
 * connection. The POST that answers a heartbeat (it carries a PONG), over HTTP/1.1, of a client
 * that POSTed nothing else since the heartbeat before: a client that only answers heartbeats then
 * holds its stream alone, and one that talks (or acknowledges) keeps its POST connection. The
 * `Connection: close` header tells the client before it could reuse the connection (no
 * keep-alive race). A POST another node routed here is answered with CLOSE_CLIENT_HEADER
 * instead: the connection between the nodes carries other clients too, and the forwarding node
 * closes its own connection to the client.
 */
export class IdleSseUpstream {
  /** Sessions that POSTed since their last heartbeat's POST. */
  readonly #posted = new WeakSet<Session>()

  /** Called for each POST of an SSE session: marks its answer when it should close the connection. */
  answer(request: FastifyRequest, reply: FastifyReply, session: Session, packets: readonly Packet[]): void {
    if (!this.#closesAfter(session, packets)) return
    if (request.headers[ROUTED_HEADER] !== undefined) reply.header(CLOSE_CLIENT_HEADER, '1')
    else if (request.raw.httpVersionMajor === 1) reply.header('Connection', 'close')
  }

  #closesAfter(session: Session, packets: readonly Packet[]): boolean {
    let heartbeat = false
    let other = false
    for (const packet of packets) {
      if (packet.type === PacketType.PONG) heartbeat = true
      else if (packet.type !== PacketType.ACK) other = true
    }
    if (!heartbeat) {
      this.#posted.add(session)
      return false
    }
    const talked = other || this.#posted.has(session)
    this.#posted.delete(session)
    return !talked
  }
}
