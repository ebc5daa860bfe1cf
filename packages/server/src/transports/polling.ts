import type { ServerResponse } from 'node:http'
import { gzip } from 'node:zlib'
import { type Packet, PacketType, type PreparedEvent } from '@parley/protocol'
import { clientLeft } from '../http/client-left.js'
import { type ResponseHolder, watchHeld } from './held-responses.js'
import { type HeaderBag, HttpTransport, nextGetWithin, nowMs } from './http.js'
import { flattenSentHeader } from './sent-header.js'
import { type CloseKind, isPreparedEvent, type Outgoing, outgoing } from './transport.js'
import type { UnreadAnswers } from './unread.js'

/**
 * Polls to answer once the current tick is over. A broadcast to a thousand polling clients
 * answers a thousand held GETs: one `process.nextTick` starts them all, and they go out
 * `ANSWERS_PER_TURN` at a time, each batch in its own turn of the event loop (`setImmediate`),
 * so that timers and incoming requests are not held up behind all of them at once.
 */
const pending: PollingTransport[] = []
let pendingFrom = 0
let answering = false
const ANSWERS_PER_TURN = 64

function schedule(transport: PollingTransport): void {
  pending.push(transport)
  if (!answering) {
    answering = true
    process.nextTick(answerSome)
  }
}

function answerSome(): void {
  const stop = Math.min(pending.length, pendingFrom + ANSWERS_PER_TURN)
  try {
    while (pendingFrom < stop) pending[pendingFrom++]!.flushScheduled()
  } finally {
    // Whatever happened to one answer, the others still go.
    if (pendingFrom < pending.length) setImmediate(answerSome)
    else {
      pending.length = 0
      pendingFrom = 0
      answering = false
    }
  }
}

/** The waiting list of every transport with nothing waiting; frozen, so nothing is ever added to it. */
const NOTHING_WAITING: Entry[] = Object.freeze([]) as unknown as Entry[]

/** What a downstream GET tells the session, as if the client had sent it. */
const A_POLL_IS_A_PONG: Packet[] = [{ type: PacketType.PONG }]
const NO_SIZES: readonly number[] = []

/**
 * Long-polling downstream: the client keeps one GET waiting; it is answered with every queued
 * packet (one per line) as soon as there is one. A newer GET answers the older one empty.
 */
export class PollingTransport extends HttpTransport implements ResponseHolder {
  // On the prototype, not a field of each transport (an idle connection should cost little).
  get name(): 'polling' {
    return 'polling'
  }
  readonly #maxBody: number
  readonly #gzipAbove: number | false
  readonly #unread: UnreadAnswers | undefined
  #held: ServerResponse | null = null
  #heldHeaders: HeaderBag = {}
  /** True when the client dropped its last GET rather than got an answer (`nextGetWithin`). */
  #dropped = false
  /** When the handshake or the last GET was answered (`nowMs()`), 0 while one is held. */
  #answeredAt = nowMs()
  /**
   * The client's slowest recent time from an answer to its next GET, in whole ms (kept in the
   * transport, as `#answeredAt`, not in a number object of its own); -1 unmeasured.
   */
  #turnaround = -1
  /**
   * Packets waiting for a GET, in order (see `Entry`), and their bytes (UTF-8, plus a newline
   * each). `NOTHING_WAITING` while there are none: an idle client has no list of its own.
   */
  #waiting: Entry[] = NOTHING_WAITING
  #queuedBytes = 0
  /**
   * The highest sequence number an answer has carried (0 before any): a GET whose `ack` is
   * lower says the client never read that answer (see `downstream`).
   */
  #answeredThrough = 0
  /** The CLOSE line, once sent: with `#lastAck`, all that is kept when the client stopped polling. */
  #lastWords: string | undefined
  /**
   * The `ack` of the last ACK sent (0 before any): a client that stopped polling still gets it
   * before the CLOSE, so that it does not send again, into its next session, what the ended one
   * handled. A number, not the line: nothing of each ACK waits with the transport.
   */
  #lastAck = 0
  /** The ACK that waits for the next answer (see `ackWithNext`), 0 when none. */
  #ackWithNext = 0
  #flushScheduled = false

  /**
   * @param maxBody answers stop adding packets past this many bytes (one packet always goes).
   * @param gzipAbove answers of this many bytes or more are gzipped for clients that accept it.
   * @param unread cuts answers that their client stops reading (see `UnreadAnswers`).
   */
  constructor(maxBody: number, gzipAbove: number | false = false, unread?: UnreadAnswers) {
    super()
    this.#maxBody = maxBody
    this.#gzipAbove = gzipAbove
    this.#unread = unread
  }

  #answer(res: ServerResponse, headers: HeaderBag, body: string | Buffer): void {
    answer(res, headers, body, this.#gzipAbove, this.#unread)
  }

  get bufferedAmount(): number {
    return this.#queuedBytes
  }

  /** Holds a GET until there is something to say. */
  hold(res: ServerResponse, headers: HeaderBag): void {
    // A GET whose client already left (while an application's asynchronous hook ran, Fastify
    // still calls the handler) takes nothing: the GET held before it, if any, is still read.
    // (One waiting behind another response on its connection is not gone: it gets the
    // connection next.) Over HTTP/2 only the stream says so (see `clientLeft`).
    if (clientLeft(res) || res.writableEnded) return
    const previous = this.#held
    const previousHeaders = this.#heldHeaders
    this.#held = res
    this.#heldHeaders = headers
    this.#dropped = false
    if (this.#answeredAt > 0) {
      // Slow turns count at once, fast ones bring the measure down gradually.
      const turn = nowMs() - this.#answeredAt
      this.#turnaround = Math.max(turn, Math.floor(this.#turnaround * 0.8))
      this.#answeredAt = 0
    }
    if (previous) this.#answer(previous, previousHeaders, '')
    watchHeld(res, this)
    this.#flush()
  }

  /** A GET closed: forgets it if it is the held one (`#flush` checks again before it answers). */
  heldResponseClosed(res: ServerResponse): void {
    if (res === this.#held && (clientLeft(res) || res.writableEnded)) this.#forgetHeld(res)
  }

  /** The held GET is over: answered by us, or dropped by the client. */
  #forgetHeld(held: ServerResponse): void {
    this.#held = null
    if (!held.writableEnded) this.#dropped = true
  }

  nextGetWithin(): number | undefined {
    if (this.#held !== null || this.#dropped || this.#answeredAt === 0) return undefined
    return nextGetWithin(this.#turnaround, nowMs() - this.#answeredAt)
  }

  downstream(res: ServerResponse, headers: HeaderBag, ack?: number): void {
    // A GET is a sign of life: a client polls again as soon as it has read an answer, so the
    // GET after the answer that brought a PING is its PONG (docs/protocol.md, Heartbeat). The
    // first GET is no answer to a PING, since none reached the client before it: told after the
    // PONG, the session counts the PING this GET takes from then on (see
    // `Session.transportDownstream`).
    this.emitPackets(A_POLL_IS_A_PONG, NO_SIZES)
    this.downstreamCame()
    if (ack !== undefined && ack < this.#answeredThrough) this.#answerAgain(ack)
    this.hold(res, headers)
  }

  /**
   * The client acknowledges, in a GET it sent after reading every answer it got, less than an
   * answer carried: that answer went to a GET it had given up on (aborted, and delivered late
   * by a proxy or another node, after the client resumed). Nothing else would send those
   * packets again: the client sees no gap until a newer one comes. They go first, then what
   * was already waiting.
   */
  #answerAgain(ack: number): void {
    const waiting = this.#waiting.length
    const through = this.#answeredThrough
    this.#answeredThrough = ack
    // The session sends them through `send`, behind what was waiting: they move to the front.
    this.missed(ack, through)
    this.#waiting = this.#waiting.slice(waiting).concat(this.#waiting.slice(0, waiting))
  }

  send(out: Outgoing, seq = 0): void {
    if (!this.open) return
    // Nothing made for this delivery waits with it: the client may take hundreds of ms to poll
    // again under load, long enough for the garbage collector to copy whatever waits out of the
    // young generation, once per delivery. A broadcast's copy waits as the shared encoding and
    // its seq; a long packet kept as UTF-8 waits as the session keeps it. Their text is made
    // when the answer goes, and dies young. Neither is ever the CLOSE. A numbered packet's seq
    // follows it (see `Entry`).
    const shared = out.shared
    const split = shared === undefined ? out.split?.() : undefined
    if (this.#waiting === NOTHING_WAITING) this.#waiting = []
    const waiting = this.#waiting
    let bytes: number
    if (shared !== undefined) {
      const seq = out.seq!
      bytes = shared.byteLength(seq) + 1
      waiting.push(shared, seq)
    } else if (split !== undefined) {
      bytes = split.head.length + split.tail.length + 1
      waiting.push(out)
      if (seq > 0) waiting.push(seq)
    } else {
      const line = out.text
      bytes = Buffer.byteLength(line) + 1
      if (out.numbered !== true) {
        const packet = out.packet
        if (packet.type === PacketType.CLOSE) this.#lastWords = line
        else if (packet.type === PacketType.ACK) {
          this.#lastAck = packet.ack
          this.#ackWithNext = 0
        }
      }
      waiting.push(line)
      if (seq > 0) waiting.push(seq)
    }
    this.#queuedBytes += bytes
    // Wait for the current tick to finish so that a burst of sends goes out in one answer, but
    // no longer: the client cannot poll again before it has this answer.
    if (!this.#flushScheduled && this.#held) {
      this.#flushScheduled = true
      schedule(this)
    }
  }

  /**
   * Keeps ACK `ack` for the next answer: alone, it would end the held GET, and the client would
   * poll again for nothing but that.
   */
  ackWithNext(ack: number): void {
    if (!this.open) return
    this.#ackWithNext = ack
    this.#lastAck = ack
  }

  /** Puts the ACK kept for the next answer first among what waits (see `ackWithNext`). */
  #takeAckWithNext(waiting: Entry[]): void {
    const ack = this.#ackWithNext
    if (ack === 0) return
    this.#ackWithNext = 0
    const line = outgoing({ type: PacketType.ACK, ack }).text
    waiting.unshift(line)
    this.#queuedBytes += line.length + 1
  }

  override get lingering(): boolean {
    return !this.open && this.#waiting.length > 0
  }

  /** Answers the held GET, if it is still there (see `pending`). */
  flushScheduled(): void {
    this.#flushScheduled = false
    this.#flush()
  }

  serveLast(res: ServerResponse, headers: HeaderBag): void {
    if (this.#waiting.length > 0) this.#takeAckWithNext(this.#waiting)
    this.#answer(res, headers, joinLines(this.#waiting, this.#waiting.length))
    this.#waiting = NOTHING_WAITING
    this.#queuedBytes = 0
  }

  protected end(kind: CloseKind): void {
    if (kind === 'overflow') {
      // The client does not poll: drop what waits for it, except its last words (the last ACK,
      // then the CLOSE).
      const words: string[] = []
      // The ACK kept for the next answer is the last ACK (`#lastAck`): it goes here, or not at all.
      this.#ackWithNext = 0
      if (this.#lastWords !== undefined) {
        if (this.#lastAck > 0) words.push(outgoing({ type: PacketType.ACK, ack: this.#lastAck }).text)
        words.push(this.#lastWords)
      }
      this.#waiting = words.length > 0 ? words : NOTHING_WAITING
      this.#queuedBytes = words.reduce((n, line) => n + Buffer.byteLength(line) + 1, 0)
    }
    // Last words (MOVED, CLOSE) go to the waiting GET; without one they linger for the next.
    this.#flush()
    if (this.#held) this.#answer(this.#held, this.#heldHeaders, '')
    this.#held = null
  }

  #flush(): void {
    const held = this.#held
    const waiting = this.#waiting
    if (!held || waiting.length === 0) return
    if (clientLeft(held) || held.writableEnded) {
      // The client gave up on this GET; keep the packets for its next one.
      this.#forgetHeld(held)
      return
    }
    this.#takeAckWithNext(waiting)
    // Usually everything goes; past maxBody, as many packets as fit (one always goes).
    let end = waiting.length
    let bytes = this.#queuedBytes
    if (bytes > this.#maxBody) {
      end = 0
      bytes = 0
      while (end < waiting.length) {
        const size = entryBytes(waiting[end]!, waiting[end + 1])
        if (end > 0 && bytes + size > this.#maxBody) break
        bytes += size
        end += entryLength(waiting, end)
      }
    }
    // The last number before `end` is the seq of the last numbered packet that goes.
    for (let at = end - 1; at > 0; at--) {
      const entry = waiting[at]
      if (typeof entry === 'number' && entry > 0) {
        this.#answeredThrough = entry
        break
      }
    }
    const body = bytes < BYTES_FROM ? joinLines(waiting, end) : linesAsBytes(waiting, end, bytes)
    if (end === waiting.length) this.#waiting = NOTHING_WAITING
    else waiting.splice(0, end)
    this.#queuedBytes -= bytes
    this.#held = null
    this.#answeredAt = nowMs()
    this.#answer(held, this.#heldHeaders, body)
  }
}

/**
 * One packet waiting for a GET: its line; a packet whose line is made when the answer goes (it
 * has a split form); or a broadcast's shared encoding. A number after one of them is its seq:
 * always after a shared encoding (the copy's), after the others when they are numbered.
 */
type Entry = string | Outgoing | PreparedEvent | number

/** How many entries the packet at `at` takes: two when a seq follows it. */
const entryLength = (entries: readonly Entry[], at: number): number =>
  typeof entries[at + 1] === 'number' ? 2 : 1

/** The packet's bytes in an answer (UTF-8, and its newline); `next` is the entry after it. */
function entryBytes(entry: Entry, next?: Entry): number {
  if (typeof entry === 'string') return Buffer.byteLength(entry) + 1
  if (isPreparedEvent(entry)) return entry.byteLength(next as number) + 1
  const split = (entry as Outgoing).split!()!
  return split.head.length + split.tail.length + 1
}

/** The packet's line. */
function lineAt(entries: readonly Entry[], at: number): string {
  const entry = entries[at]!
  if (typeof entry === 'string') return entry
  if (isPreparedEvent(entry)) return entry.text(entries[at + 1] as number, 0)
  return (entry as Outgoing).text
}

/** The packets of `entries` before index `end`, one a line. */
function joinLines(entries: readonly Entry[], end: number): string {
  if (end === 0) return ''
  if (end === entryLength(entries, 0)) return lineAt(entries, 0)
  const texts: string[] = []
  for (let at = 0; at < end; at += entryLength(entries, at)) texts.push(lineAt(entries, at))
  return texts.join('\n')
}

/**
 * Answers of at least this many bytes are built as bytes (`linesAsBytes`) instead of one joined
 * string. V8 puts a string of more than 128 KiB in its large-object space, on pages of its own
 * that the process maps anew and faults in for each one: joining two 64 KB packets cost more
 * than half a millisecond. The socket wanted bytes anyway.
 */
const BYTES_FROM = 32 * 1024

/**
 * The packets of `entries` before index `end`, one a line, as UTF-8 bytes; `sized` is their
 * sizes' sum (each packet's bytes and a newline). A broadcast's copy goes in as its head and its
 * shared tail, so its text is never made.
 */
function linesAsBytes(entries: readonly Entry[], end: number, sized: number): Buffer {
  // One newline fewer than the sizes count: none after the last line.
  const body = Buffer.allocUnsafe(sized - 1)
  let at = 0
  for (let i = 0; i < end; i += entryLength(entries, i)) {
    if (i > 0) body[at++] = 0x0a
    const entry = entries[i]!
    const split =
      typeof entry === 'string'
        ? undefined
        : isPreparedEvent(entry)
          ? entry.split(entries[i + 1] as number)
          : (entry as Outgoing).split?.()
    if (split) {
      at += body.write(split.head, at, 'latin1')
      body.set(split.tail, at)
      at += split.tail.length
    } else at += body.write(lineAt(entries, i), at, 'utf8')
  }
  // The sizes were counted from the same packets, so `at` is the whole buffer; were it short,
  // the bytes past it are whatever memory held before, and must not go out.
  return at === body.length ? body : body.subarray(0, at)
}

/**
 * Answers a poll. A long answer is gzipped (off the event loop) when the client accepts it; the
 * packets are already out of the queue, so a client that goes away meanwhile gets them again
 * from the replay buffer when it resumes, as with any answer lost on the way.
 */
function answer(
  res: ServerResponse,
  headers: HeaderBag,
  body: string | Buffer,
  gzipAbove: number | false,
  unread: UnreadAnswers | undefined,
): void {
  if (res.writableEnded || res.destroyed) return
  const bytes = Buffer.byteLength(body)
  if (gzipAbove === false || bytes < gzipAbove || !acceptsGzip(res.req?.headers['accept-encoding'])) {
    // The common answer: one header object, built once.
    writeAnswer(res, { ...headers, ...ANSWER_HEADERS, 'Content-Length': String(bytes) }, body, unread)
    return
  }
  gzip(body, (error, zipped) => {
    if (res.writableEnded || res.destroyed) return
    if (error) {
      writeAnswer(res, { ...headers, ...ANSWER_HEADERS, 'Content-Length': String(bytes) }, body, unread)
      return
    }
    writeAnswer(
      res,
      { ...headers, ...ANSWER_HEADERS, 'Content-Encoding': 'gzip', 'Content-Length': String(zipped.length) },
      zipped,
      unread,
    )
  })
}

/** Writes an answer; its header block flattened: the held response may be old (`flattenSentHeader`). */
function writeAnswer(
  res: ServerResponse,
  headers: Record<string, string>,
  body: string | Buffer,
  unread: UnreadAnswers | undefined,
): void {
  res.writeHead(200, headers)
  flattenSentHeader(res)
  res.end(body)
  unread?.watch(res)
}

const ANSWER_HEADERS = {
  'Content-Type': 'text/plain; charset=utf-8',
  'Cache-Control': 'no-store',
  Vary: 'Accept-Encoding',
} as const

/** True when an Accept-Encoding header allows gzip (listed, or `*`, without `q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false
  for (const part of header.split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';')
    if (coding.trim() !== 'gzip' && coding.trim() !== '*') continue
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    if (q === undefined || Number(q.slice(2)) > 0) return true
  }
  return false
}
