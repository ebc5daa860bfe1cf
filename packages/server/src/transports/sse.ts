import type { ServerResponse } from 'node:http'
import { PacketType } from '@parley/protocol'
import { type HeaderBag, HttpTransport } from './http.js'
import type { CloseKind, Outgoing } from './transport.js'

// A comment line of 2 KiB: buffering proxies flush once they hold this much.
const PRELUDE = `:${' '.repeat(2048)}\n\n`

/**
 * Server-Sent Events downstream: one long response, one `data:` event per packet. Until the
 * client's GET arrives (or between two GETs) packets wait in memory. Events are written as
 * bytes, so that the stream's `writableLength` (what Node holds because the client reads
 * slower than we write) counts real bytes.
 */
export class SseTransport extends HttpTransport {
  readonly name = 'sse'
  #stream: ServerResponse | null = null
  #queue: Buffer[] = []
  #queuedBytes = 0
  /** The CLOSE event, once sent: the only thing kept when the client stopped reading. */
  #lastWords: Buffer | undefined

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
    if (queued.length > 0) res.write(Buffer.concat(queued))
  }

  send(out: Outgoing): void {
    if (!this.open) return
    const event = Buffer.from(`data: ${out.text}\n\n`)
    if (out.packet.type === PacketType.CLOSE) this.#lastWords = event
    if (this.#stream) {
      // Past the high-water mark write() returns false and Node keeps the bytes: that is what
      // bufferedAmount reports, and what the session's slow-consumer limit watches.
      this.#stream.write(event)
    } else {
      this.#queue.push(event)
      this.#queuedBytes += event.length
    }
  }

  protected end(kind: CloseKind): void {
    if (kind === 'overflow') {
      // The client does not read: drop what waits for it, in the stream and here. Only the
      // CLOSE is kept, for a next GET.
      this.#stream?.destroy()
      this.#stream = null
      this.#queue = this.#lastWords ? [this.#lastWords] : []
      this.#queuedBytes = this.#lastWords?.length ?? 0
      return
    }
    // Without a stream, the last words (MOVED, CLOSE) linger for the next GET.
    this.#stream?.end()
    this.#stream = null
  }
}
