import { decodeBatch } from '../codec.js'
import { HttpTransport, httpError } from '../http.js'
import { transportError } from './transport.js'

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
          this.fail(await httpError(res))
          return
        }
        body = await res.text()
      } catch (err) {
        this.fail(transportError('poll request failed', err))
        return
      }
      if (this.closed) return
      // An empty answer: the server released the GET (a newer one replaced it, or a timeout).
      if (body.trim() === '') continue
      const decoded = decodeBatch(body, { maxPayload: this.maxPayload })
      if (!decoded.ok) {
        this.fail(decoded.error)
        return
      }
      for (const p of decoded.packets) this.deliver(p)
    }
  }
}
