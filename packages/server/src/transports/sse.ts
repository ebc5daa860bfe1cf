import type { ServerResponse } from 'node:http'
import { PacketType } from '@parley/protocol'
import { type HeaderBag, HttpTransport } from './http.js'
import type { CloseKind, Outgoing } from './transport.js'

// A comment line of 2 KiB: buffering proxies flush once they hold this much.
const PRELUDE = `:${' '.repeat(2048)}\n\n`

/**
 * Streams with events to write at the end of this tick, written together in one
 * `process.nextTick`: a broadcast to a thousand SSE clients schedules one callback, not a
 * thousand.
 */
const pending: SseTransport[] = []

function flushAll(): void {
  // Take the list first: a write that queued again (it cannot, today) would start a new one.
  const list = pending.splice(0, pending.length)
  for (const transport of list) transport.flush()
}

/** What ends every event (and the stream's prelude). */
const EVENT_END = Buffer.from('\n\n')

/** Up to this many bytes, a tick's events leave as one buffer (see `#writeQueue`). */
const GATHER_BYTES = 16 * 1024

/** `pieces` (UTF-8 text and bytes) one after the other in one buffer of `bytes` bytes. */
function gather(pieces: readonly (string | Uint8Array)[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes)
  let at = 0
  for (const piece of pieces) {
    if (typeof piece === 'string') at += out.write(piece, at)
    else {
      out.set(piece, at)
      at += piece.length
    }
  }
  return at === bytes ? out : out.subarray(0, at)
}

/**
 * Server-Sent Events downstream: one long response, one `data:` event per packet. Until the
 * client's GET arrives (or between two GETs) packets wait in memory. The events of one tick
 * leave in one system call in `process.nextTick` (the socket corked around their writes).
 *
 * The response has no length and is not chunked: its end is the connection's end (HTTP/1.1
 * allows it for a response, RFC 9112 6.3). An event stream ends only when its connection may
 * go anyway, and so every write goes to the socket as it is: a broadcast copy is its small
 * `data: [5,<seq>` and the broadcast's shared tail, never copied per stream (chunked, each
 * write would also carry a size line and two line ends). `bufferedAmount` counts real bytes:
 * UTF-8 of what waits here, and what Node holds because the client reads slower than we write.
 */
export class SseTransport extends HttpTransport {
  // On the prototype, not a field of each transport (an idle connection should cost little).
  get name(): 'sse' {
    return 'sse'
  }
  #stream: ServerResponse | null = null
  /** Pieces of events not yet written: waiting for this tick's flush, or for a stream. */
  #queue: (string | Uint8Array)[] = []
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
    // Delimited by the connection's end rather than chunked (see the class comment).
    res.useChunkedEncodingByDefault = false
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
    const split = out.split?.()
    if (split) {
      const start = `data: ${split.head}`
      this.#queue.push(start, split.tail, EVENT_END)
      // `start` is ASCII: one byte per character.
      this.#queuedBytes += start.length + split.tail.length + EVENT_END.length
    } else {
      const event = `data: ${out.text}\n\n`
      if (out.packet.type === PacketType.CLOSE) this.#lastWords = event
      this.#queue.push(event)
      this.#queuedBytes += Buffer.byteLength(event)
    }
    if (this.#stream && !this.#flushScheduled) {
      this.#flushScheduled = true
      if (pending.push(this) === 1) process.nextTick(flushAll)
    }
  }

  /** Writes what this tick queued (called once per tick for all streams, see `pending`). */
  flush(): void {
    this.#flushScheduled = false
    if (this.#stream) this.#writeQueue(this.#stream)
  }

  /** Writes every waiting piece, corked: they leave in one system call. */
  #writeQueue(res: ServerResponse): void {
    const queue = this.#queue
    if (queue.length === 0) return
    const bytes = this.#queuedBytes
    this.#queue = []
    this.#queuedBytes = 0
    // Past the high-water mark write() returns false and Node keeps the bytes: that is what
    // bufferedAmount reports, and what the session's slow-consumer limit watches.
    // Uncorked, Node would cork the socket itself and schedule one more callback per write.
    const socket = res.socket
    const cork = socket !== null && socket.writableCorked === 0
    if (cork) socket.cork()
    // A tick's events, when small, are copied into one buffer: one write costs less than a few
    // (each goes through the response and the socket), and the copy is cheap. Large ones are
    // written piece by piece, the broadcasts' shared tails as they are.
    if (bytes <= GATHER_BYTES) res.write(gather(queue, bytes))
    else for (const piece of queue) res.write(piece)
    if (cork) socket.uncork()
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
