import type { ServerResponse } from 'node:http'
import { type HeaderBag, HttpTransport } from './http.js'
import type { CloseKind, Outgoing } from './transport.js'

// A comment line of 2 KiB: buffering proxies flush once they hold this much.
const PRELUDE = `:${' '.repeat(2048)}\n\n`

/**
 * Server-Sent Events downstream: one long response, one `data:` event per packet. Until the
 * client's GET arrives (or between two GETs) packets wait in memory.
 */
export class SseTransport extends HttpTransport {
  readonly name = 'sse'
  #stream: ServerResponse | null = null
  #queue: string[] = []
  #queuedBytes = 0

  get bufferedAmount(): number {
    return this.#queuedBytes + (this.#stream?.writableLength ?? 0)
  }

  /** Takes over the event stream from a GET (a newer GET ends the older stream). */
  attachStream(res: ServerResponse, headers: HeaderBag): void {
    const previous = this.#stream
    this.#stream = res
    previous?.end()
    res.on('close', () => {
      // The client went away or reconnects; packets wait for the next GET (or a resume).
      if (this.#stream === res) this.#stream = null
    })
    this.#start(res, headers)
  }

  override get lingering(): boolean {
    return !this.open && this.#queue.length > 0
  }

  serveLast(res: ServerResponse, headers: HeaderBag): void {
    this.#start(res, headers)
    res.end()
  }

  /** Status, headers, prelude, then whatever waited. */
  #start(res: ServerResponse, headers: HeaderBag): void {
    res.writeHead(200, {
      ...headers,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-store, no-transform',
      'X-Accel-Buffering': 'no',
    })
    res.write(PRELUDE)
    const queued = this.#queue
    this.#queue = []
    this.#queuedBytes = 0
    if (queued.length > 0) res.write(queued.join(''))
  }

  send(out: Outgoing): void {
    if (!this.open) return
    const event = `data: ${out.text}\n\n`
    if (this.#stream) {
      // Past the high-water mark write() returns false and Node keeps the bytes: that is what
      // bufferedAmount reports, and what the session's slow-consumer limit watches.
      this.#stream.write(event)
    } else {
      this.#queue.push(event)
      this.#queuedBytes += event.length
    }
  }

  protected end(_kind: CloseKind): void {
    // Without a stream, the last words (MOVED, CLOSE) linger for the next GET.
    this.#stream?.end()
    this.#stream = null
  }
}
