import { type Packet, PacketType } from '@parley/protocol'
import type { FastifyRequest } from 'fastify'
import type { Session } from '../session.js'
import { ROUTED_HEADER } from './routing.js'

/**
 * `sseUpstream: 'close-when-idle'`: which answers to an SSE client's POSTs close their
 * connection. The POST that answers a heartbeat (it carries a PONG), over HTTP/1.1, of a client
 * that POSTed nothing else since the heartbeat before: a client that only answers heartbeats then
 * holds its stream alone, and one that talks (or acknowledges) keeps its POST connection. The
 * `Connection: close` header tells the client before it could reuse the connection (no
 * keep-alive race). Never for a POST another node routed here: that connection carries other
 * clients too.
 */
export class IdleSseUpstream {
  /** Sessions that POSTed since their last heartbeat's POST. */
  readonly #posted = new WeakSet<Session>()

  /** Called for each POST of an SSE session; true when its answer should close the connection. */
  closesAfter(request: FastifyRequest, session: Session, packets: readonly Packet[]): boolean {
    if (request.raw.httpVersionMajor !== 1 || request.headers[ROUTED_HEADER] !== undefined) return false
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
