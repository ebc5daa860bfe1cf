import { decodeText } from '../codec.js'
import { boundedBody, HttpTransport, httpError } from '../http.js'
import type { Outgoing } from '../outgoing.js'
import * as PacketType from '../packet-type.js'
import { shown, transportError } from './transport.js'

/**
 * Long-polling: one GET always outstanding for the downstream, POST upstream. Each GET, sent as
 * soon as the answer before it is read, carries the ACK (`ack=N`): ACKs need no POST, however
 * many packets an answer brought (the timer's POST only goes when no GET took the ACK in time).
 * It carries one even when none is owed: an `ack` lower than an earlier answer reached tells the
 * server that answer went to a GET this client had given up on, and it sends the packets again.
 */
export class PollingTransport extends HttpTransport {
  readonly name = 'polling'
  readonly ackDelay = 1000
  readonly ackAfter = Infinity

  // The GET that follows the answer bringing a PING answers it (docs/protocol.md, Heartbeat).
  override send(items: readonly Outgoing[]): void {
    super.send(items.filter((item) => item.packet.type !== PacketType.PONG))
  }

  protected downstream(url: string): void {
    void this.#poll(url)
  }

  async #poll(url: string): Promise<void> {
    while (!this.closed) {
      let body: string
      try {
        // A signal per poll: every fetch adds an abort listener to its signal and does not take
        // it off, so one signal for the whole session would gather one per poll.
        this.ctl = new AbortController()
        const res = await this.setup.fetch(`${url}&ack=${this.setup.takeAck()}`, {
          signal: this.ctl.signal,
        })
        if (res.status !== 200) {
          this.fail(await httpError(res, url))
          return
        }
        body = await ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE
          ? res.text()
          : boundedBody(res, this.maxPayload))
      } catch (err) {
        this.fail(transportError(`GET ${shown(url)} failed`, err))
        return
      }
      // One packet a line; an empty answer: the server released the GET (a newer one replaced
      // it, or a timeout). A line this client refuses goes up alone: the others still count.
      // Closed meanwhile: nothing more goes up, from the first line on.
      for (const line of body.split('\n')) {
        if (this.closed) return
        if (line.trim() !== '') this.deliver(decodeText(line, this.maxPayload))
      }
    }
  }
}
