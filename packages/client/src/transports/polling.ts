import { decodeText } from '../codec.js'
import { boundedBody, HttpTransport, httpError, type Utf8Decoder } from '../http.js'
import * as PacketType from '../packet-type.js'
import { type Later, shown, transportError } from './transport.js'

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
  /**
   * Node only: the decoder of every answer, one at a time (see `boundedBody`), rather than one
   * made per answer. Declared: the browser build, which reads answers with `res.text()`, has none.
   */
  declare decoder?: Utf8Decoder

  protected downstream(url: string): void {
    void this.#poll(url)
  }

  /**
   * The loop of GETs. The GET after an answer goes out before the application's listeners run
   * for what that answer brought, with an `ack` that counts it: a page busy in its listeners
   * would otherwise leave the server without a GET, letting its packets wait, and at a server's
   * close miss the CLOSE (a closing server waits only so long for the next GET).
   */
  async #poll(url: string): Promise<void> {
    let next: Promise<string | undefined> | undefined = this.#get(url)
    while (next) {
      const body = await next
      // Closed meanwhile (the GET failed it, or the session dropped it): nothing more goes up,
      // from the first line on. Open, the GET brought a body: no body means the GET failed,
      // which closed the transport, so `body === undefined` adds no case, only the type.
      if (this.closed || body === undefined) return
      // One packet a line; an empty answer: the server released the GET (a newer one replaced
      // it, or a timeout). A line this client refuses goes up alone: the others still count.
      // Each packet is taken in (numbered, acknowledged) before any listener runs.
      const later: Later[] = []
      let ends: boolean | undefined
      for (const line of body.split('\n')) {
        if (line.trim()) {
          const decoded = decodeText(line, this.payloadMax)
          ends ||= decoded.ok && decoded.packet.type === PacketType.CLOSE
          this.deliver(decoded, later)
        }
      }
      // Closed while taking the packets in (a gap, a broken line, MOVED): those before still
      // reach the application, and no GET follows. Nor does one follow a CLOSE, which closes the
      // transport when it runs.
      const gone = this.closed
      next = gone || ends ? undefined : this.#get(url)
      // Closed by a listener (disconnect(), CLOSE): nothing more goes up (a transport never
      // opens again once closed, so the rest is skipped).
      for (const run of later) if (this.closed === gone) run?.()
    }
  }

  /**
   * Sends a GET now, with the ACK owed; resolves with the answer's body, or, once the GET failed
   * and failed the transport with it, with nothing. It never rejects: a GET sent before a
   * listener closed the transport is aborted, and its failure changes nothing then.
   */
  async #get(url: string): Promise<string | undefined> {
    // A signal per poll: every fetch adds an abort listener to its signal and does not take
    // it off, so one signal for the whole session would gather one per poll.
    this.ctl = new AbortController()
    try {
      const res = await this.setup.fetchFn(`${url}&ack=${this.ackParam()}`, { signal: this.ctl.signal })
      if (res.status === 200) {
        if ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) return await res.text()
        this.decoder ??= new TextDecoder()
        return await boundedBody(res, this.payloadMax, this.decoder)
      }
      this.fail(await httpError(res, url))
    } catch (err) {
      this.fail(transportError(`GET ${shown(url)} failed`, err))
    }
  }
}
