import { decodeText } from '../codec.js'
import { HttpTransport, httpError } from '../http.js'
import { shown, transportError } from './transport.js'

/** Long-polling: one GET always outstanding for the downstream, POST upstream. */
export class PollingTransport extends HttpTransport {
  readonly name = 'polling'

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
        const res = await this.fetchFn(url, { signal: this.ctl.signal })
        if (res.status !== 200) {
          this.fail(await httpError(res, url))
          return
        }
        body = await res.text()
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
