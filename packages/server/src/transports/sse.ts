import type { ServerResponse } from 'node:http'
import { PacketType } from '@parley/protocol'
import { type HeaderBag, HttpTransport } from './http.js'
import type { CloseKind, Outgoing } from './transport.js'

// A comment line of 2 KiB: buffering proxies flush once they hold this much.
const PRELUDE = `:${' '.repeat(2048)}\n\n`

/** Set by `SseTransport` (its static block): writes what waited, in `process.nextTick`. */
let flush: (transport: SseTransport) => void

/**
 * Server-Sent Events downstream: one long response, one `data:` event per packet. Until the
 * client's GET arrives (or between two GETs) packets wait in memory. The events of one tick
 * leave in one write (one HTTP chunk, one system call) in `process.nextTick`; they are written
 * as bytes, so that the stream's `writableLength` (what Node holds because the client reads
 * slower than we write) counts real bytes.
 */
export class SseTransport extends HttpTransport {
  readonly name = 'sse'
  #stream: ServerResponse | null = null
  /** Events not yet written: waiting for this tick's flush, or for a stream. */
  #queue: string[] = []
  /** Their size in bytes (UTF-8). */
  #queuedBytes = 0
  #flushScheduled = false
  /** The CLOSE event, once sent: the only thing kept when the client stopped reading. */
  #lastWords: string | undefined

  get bufferedAmount(): number {
    return this.#queuedBytes + (this.#stream?.writableLength ?? 0)
  }

  /** Takes over the event stream from a GET (a newer GET ends the older stream). */
  attachStream(res: ServerResponse, headers: HeaderBag): void {
    const previous = this.#stream
    this.#stream = res
    // An older stream with unread bytes would hold them, uncounted, for as long as its client
    // likes: drop it. Nothing is lost that matters: numbered packets are replayed on resume.
    if (previous && previous.writableLength > 0) previous.destroy()
    else previous?.end()
    res.on('close', () => {
      // The client went away or reconnects; packets wait for the next GET (or a resume).
      if (this.#stream === res) this.#stream = null
    })
    this.#start(res, headers)
  }

  downstream(res: ServerResponse, headers: HeaderBag): void {
    this.attachStream(res, headers)
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
    this.#writeQueue(res)
  }

  send(out: Outgoing): void {
    if (!this.open) return
    const event = `data: ${out.text}\n\n`
    if (out.packet.type === PacketType.CLOSE) this.#lastWords = event
    this.#queue.push(event)
    this.#queuedBytes += Buffer.byteLength(event)
    if (this.#stream && !this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(flush, this)
    }
  }

  static {
    // One function for every transport (not a closure each, kept for the session's life).
    flush = (transport) => {
      transport.#flushScheduled = false
      if (transport.#stream) transport.#writeQueue(transport.#stream)
    }
  }

  /** Writes every waiting event in one chunk. */
  #writeQueue(res: ServerResponse): void {
    if (this.#queue.length === 0) return
    const chunk = Buffer.from(this.#queue.length === 1 ? this.#queue[0]! : this.#queue.join(''))
    this.#queue = []
    this.#queuedBytes = 0
    // Past the high-water mark write() returns false and Node keeps the bytes: that is what
    // bufferedAmount reports, and what the session's slow-consumer limit watches.
    res.write(chunk)
  }

  protected end(kind: CloseKind): void {
    if (kind === 'overflow') {
      // The client does not read: drop what waits for it, in the stream and here. Only the
      // CLOSE is kept, for a next GET.
      this.#stream?.destroy()
      this.#stream = null
      this.#queue = this.#lastWords ? [this.#lastWords] : []
      this.#queuedBytes = this.#lastWords ? Buffer.byteLength(this.#lastWords) : 0
      return
    }
    // The last words (MOVED, CLOSE) go out now; without a stream they linger for the next GET.
    if (this.#stream) {
      this.#writeQueue(this.#stream)
      this.#stream.end()
    }
    this.#stream = null
  }
}
