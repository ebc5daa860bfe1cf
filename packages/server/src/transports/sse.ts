import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { SplitText } from '@parley/protocol'
import { clientLeft } from '../http/client-left.js'
import { type ResponseHolder, watchHeld } from './held-responses.js'
import { type HeaderBag, HttpTransport, nextGetWithin, nowMs } from './http.js'
import { flattenSentHeader } from './sent-header.js'
import { corkForTick } from './tick-cork.js'
import { type CloseKind, isClose, type Outgoing } from './transport.js'
import type { UnreadAnswers } from './unread.js'

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

/** The queue of every stream with nothing queued; frozen, so nothing is ever added to it. */
const NOTHING_QUEUED: (string | Uint8Array)[] = Object.freeze([]) as unknown as (string | Uint8Array)[]

/** What starts every event. */
const EVENT_START = 'data: '

/** What ends every event (and the stream's prelude). */
const EVENT_END = Buffer.from('\n\n')

/** Up to this many bytes, a tick's events leave as one buffer (see `#writeQueue`). */
const GATHER_BYTES = 16 * 1024

/** A broadcast's shared tail up to this long is copied into each copy's event (see `send`). */
const COPY_TAIL_BYTES = 1024

/**
 * The connection of a plain HTTP/1.x response, which the stream's events may be written to
 * directly once the headers went: the body is the bytes on the connection (see the class
 * comment). Not an HTTP/2 stream, which frames its data, nor a response with no connection of
 * its own (a request routed from another node through `inject`).
 */
function connectionOf(res: ServerResponse): Socket | null {
  const socket = res.socket
  return res.req?.httpVersionMajor === 1 && socket instanceof Socket ? socket : null
}

/**
 * True when a GET's response can carry no stream: its client left (for instance while an
 * application's asynchronous hook ran: Fastify still calls the handler; over HTTP/2 only the
 * stream says so, see `clientLeft`) or it ended, or it has no connection. A plain HTTP/1.1
 * response has none while it waits behind another response on its connection (pipelining), and
 * a stream would begin only once that one ended; behind the session's own stream, whose end
 * closes the connection, never. An HTTP/2 response whose stream closed has none either
 * (`undefined`). A request routed from another node (`inject`) has a connection of its own kind.
 */
function responseGone(res: ServerResponse): boolean {
  return clientLeft(res) || res.writableEnded || res.socket == null
}

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
 * client's GET arrives (or between two GETs) packets wait in memory.
 *
 * The response has no length and is not chunked: its end is the connection's end (HTTP/1.1
 * allows it for a response, RFC 9112 6.3). An event stream ends only when its connection may
 * go anyway, and so once the headers went, each event is written to the connection itself, as
 * a WebSocket frame is: no pass through the response per write, the connection corked for the
 * tick (`corkForTick`) so that a tick's events leave in one system call. A broadcast copy is its
 * small `data: [5,<seq>` and the broadcast's shared tail (copied in when short), never encoded
 * per stream. Where there is no such connection (HTTP/2, a routed request) the events of a
 * tick go through the response in one `process.nextTick`. `bufferedAmount` counts real bytes:
 * UTF-8 of what waits here, and what Node holds because the client reads slower than we write.
 */
export class SseTransport extends HttpTransport implements ResponseHolder {
  // On the prototype, not a field of each transport (an idle connection should cost little).
  get name(): 'sse' {
    return 'sse'
  }

  /** Split forms go out as bytes, on the connection or in the queue alike (see `send`). */
  override get writesBytes(): boolean {
    return true
  }
  #stream: ServerResponse | null = null
  /** The stream's connection, written directly, once its headers went (see the class comment). */
  #direct: Socket | null = null
  /**
   * Pieces of events not yet written: waiting for this tick's flush, or for a stream.
   * `NOTHING_QUEUED` while there are none: an idle client has no list of its own.
   */
  #queue: (string | Uint8Array)[] = NOTHING_QUEUED
  /** Their size in bytes (UTF-8). */
  #queuedBytes = 0
  #flushScheduled = false
  /** The CLOSE event, once sent: the only thing kept when the client stopped reading. */
  #lastWords: string | undefined
  /**
   * The highest sequence number written to a stream, and queued (0 before any): a GET whose
   * `ack` is lower took the stream over from one its client never read (see `attachStream`).
   */
  #writtenThrough = 0
  #queuedThrough = 0
  /** When the handshake was answered (`nowMs()`); 0 once a GET opened a stream. */
  #answeredAt = nowMs()
  /** Cuts a stream that ended while its client had stopped reading (see `UnreadAnswers`). */
  readonly #unread: UnreadAnswers | undefined

  constructor(unread?: UnreadAnswers) {
    super()
    this.#unread = unread
  }

  /** Only before the first stream: a client whose stream broke resumes on a new transport. */
  nextGetWithin(): number | undefined {
    return this.#answeredAt === 0 ? undefined : nextGetWithin(-1, nowMs() - this.#answeredAt)
  }

  // A response's writableLength counts its connection's too: the events written there directly.
  get bufferedAmount(): number {
    return this.#queuedBytes + (this.#stream?.writableLength ?? 0)
  }

  /**
   * Takes over the event stream from a GET (a newer GET ends the older stream). `ack` is the
   * GET's, if it has one: what was written to earlier streams after it never reached this
   * client (a GET it had given up on, arriving late, took the stream before this one), and is
   * written again first, as polling does (see `PollingTransport.downstream`).
   */
  attachStream(res: ServerResponse, headers: HeaderBag, ack?: number): void {
    if (responseGone(res)) {
      // As if this GET had never come: the client left, and the stream it had (if any) stays.
      // Its 'close' has fired, or never will: a listener added now would never hear of it, and
      // the session would write into it until the heartbeat gave up on the transport.
      if (!res.writableEnded) res.destroy()
      return
    }
    const previous = this.#stream
    this.#stream = res
    this.#direct = null
    this.#answeredAt = 0
    // An older stream with unread bytes would hold them, uncounted, for as long as its client
    // likes: drop it. Nothing is lost that matters: numbered packets are replayed on resume.
    if (previous && previous.writableLength > 0) previous.destroy()
    else previous?.end()
    if (ack !== undefined && ack < this.#writtenThrough) this.#writeAgain(ack)
    watchHeld(res, this)
    this.#start(res, headers)
  }

  /** A stream closed: the client went away or reconnects; packets wait for the next GET. */
  heldResponseClosed(res: ServerResponse): void {
    if (this.#stream !== res) return
    this.#stream = null
    this.#direct = null
  }

  downstream(res: ServerResponse, headers: HeaderBag, ack?: number): void {
    this.downstreamCame()
    this.attachStream(res, headers, ack)
  }

  /** Queues the numbered packets after `ack` that earlier streams carried, before what waits. */
  #writeAgain(ack: number): void {
    const waiting = this.#queue.length
    const queuedThrough = this.#queuedThrough
    const through = this.#writtenThrough
    this.#writtenThrough = ack
    // The session sends them through `send` (queued: no stream is written directly yet), behind
    // what was waiting: they move to the front; the highest seq queued is still the waiting one.
    this.missed(ack, through)
    this.#queue = this.#queue.slice(waiting).concat(this.#queue.slice(0, waiting))
    this.#queuedThrough = Math.max(this.#queuedThrough, queuedThrough)
  }

  override get lingering(): boolean {
    return !this.open && this.#queue.length > 0
  }

  serveLast(res: ServerResponse, headers: HeaderBag): void {
    this.#start(res, headers)
    res.end()
    this.#unread?.watch(res)
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
    // Headers and prelude go through the response; the body after them is the connection's.
    res.write(PRELUDE)
    flattenSentHeader(res)
    if (res === this.#stream) this.#direct = connectionOf(res)
    this.#writeQueue(res)
  }

  send(out: Outgoing, seq = 0): void {
    if (!this.open) return
    const split = out.split?.()
    const direct = this.#direct
    if (direct && this.#queue.length === 0) {
      this.#writeDirect(direct, out, split)
      if (seq > 0) this.#writtenThrough = seq
      return
    }
    if (seq > 0) this.#queuedThrough = seq
    if (this.#queue === NOTHING_QUEUED) this.#queue = []
    if (split) {
      const start = `${EVENT_START}${split.head}`
      this.#queue.push(start, split.tail, EVENT_END)
      // `start` is ASCII: one byte per character.
      this.#queuedBytes += start.length + split.tail.length + EVENT_END.length
    } else {
      const event = this.#event(out)
      this.#queue.push(event)
      this.#queuedBytes += Buffer.byteLength(event)
    }
    if (this.#stream && !this.#flushScheduled) {
      this.#flushScheduled = true
      if (pending.push(this) === 1) process.nextTick(flushAll)
    }
  }

  /** One event onto the stream's connection, corked for the tick (see the class comment). */
  #writeDirect(direct: Socket, out: Outgoing, split: SplitText | undefined): void {
    corkForTick(direct)
    if (!split) direct.write(this.#event(out))
    else if (split.tail.length <= COPY_TAIL_BYTES) {
      // One small buffer: a write of a few hundred bytes costs less than three.
      const bytes = EVENT_START.length + split.head.length + split.tail.length + EVENT_END.length
      direct.write(gather([EVENT_START, split.head, split.tail, EVENT_END], bytes))
    } else {
      direct.write(`${EVENT_START}${split.head}`)
      direct.write(split.tail)
      direct.write(EVENT_END)
    }
  }

  /** The event of one packet; a CLOSE is also kept, for a client that comes back for it. */
  #event(out: Outgoing): string {
    const event = `${EVENT_START}${out.text}\n\n`
    if (isClose(out)) this.#lastWords = event
    return event
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
    this.#queue = NOTHING_QUEUED
    this.#queuedBytes = 0
    if (this.#queuedThrough > this.#writtenThrough) this.#writtenThrough = this.#queuedThrough
    // Past the high-water mark write() returns false and Node keeps the bytes: that is what
    // bufferedAmount reports, and what the session's slow-consumer limit watches.
    const direct = this.#direct
    if (direct) corkForTick(direct)
    // None once an HTTP/2 response's stream closed (`undefined` there): a last GET reset before
    // its answer (`serveLast`) is written to nothing, and the writes fail quietly.
    const socket = res.socket ?? null
    // Uncorked, Node would cork the socket itself and schedule one more callback per write.
    const cork = !direct && socket !== null && socket.writableCorked === 0
    if (cork) socket.cork()
    const out = direct ?? res
    // A tick's events, when small, are copied into one buffer: one write costs less than a few,
    // and the copy is cheap. Large ones are written piece by piece, the shared tails as they are.
    if (bytes <= GATHER_BYTES) out.write(gather(queue, bytes))
    else for (const piece of queue) out.write(piece)
    if (cork) socket.uncork()
  }

  protected end(kind: CloseKind): void {
    if (kind === 'overflow') {
      // The client does not read: drop what waits for it, in the stream and here. Only the
      // CLOSE is kept, for a next GET.
      this.#stream?.destroy()
      this.#stream = null
      this.#direct = null
      this.#queue = this.#lastWords ? [this.#lastWords] : NOTHING_QUEUED
      this.#queuedBytes = this.#lastWords ? Buffer.byteLength(this.#lastWords) : 0
      return
    }
    // The last words (MOVED, CLOSE) go out now; without a stream they linger for the next GET.
    if (this.#stream) {
      this.#writeQueue(this.#stream)
      this.#stream.end()
      this.#unread?.watch(this.#stream)
    }
    this.#stream = null
    this.#direct = null
  }
}
