import type { HelloPacket, OpenPacket } from '@parley/protocol'
import { decodeBatch } from '../codec.js'
import { type Fetch, httpError, postHello, Upstream } from '../http.js'
import type { Outgoing } from '../session.js'
import { BaseTransport, transportError } from './transport.js'

/** Long-polling: one GET always outstanding for the downstream, POST upstream. */
export class PollingTransport extends BaseTransport {
  readonly name = 'polling'
  /** Aborts the request in flight (the handshake, then the current poll). */
  #ctl = new AbortController()
  #upstream: Upstream | undefined

  constructor(
    private readonly base: string,
    private readonly fetchFn: Fetch,
    private readonly maxPayload: number,
  ) {
    super()
  }

  async open(hello: HelloPacket, timeout: number): Promise<OpenPacket> {
    try {
      const open = await postHello(this.fetchFn, `${this.base}/poll?v=1`, hello, timeout, this.#ctl)
      const url = `${this.base}/poll?v=1&sid=${encodeURIComponent(open.sid)}`
      this.#upstream = new Upstream(this.fetchFn, url, open.maxPayload, (e) => this.fail(e))
      void this.#poll(url)
      return open
    } catch (err) {
      this.close()
      throw err
    }
  }

  async #poll(url: string): Promise<void> {
    while (!this.closed) {
      let body: string
      try {
        // A signal per poll: every fetch adds an abort listener to its signal and does not take
        // it off, so one signal for the whole session would gather one per poll.
        this.#ctl = new AbortController()
        const res = await this.fetchFn(url, { signal: this.#ctl.signal })
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

  send(items: readonly Outgoing[]): void {
    this.#upstream?.send(items)
  }

  protected teardown(): void {
    this.#upstream?.finish()
    this.#ctl.abort()
  }
}
