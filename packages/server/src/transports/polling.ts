import type { ServerResponse } from 'node:http'
import { gzip } from 'node:zlib'
import { PacketType } from '@parley/protocol'
import { type HeaderBag, HttpTransport } from './http.js'
import type { CloseKind, Outgoing } from './transport.js'

/** Set by `PollingTransport` (its static block): answers the held GET, in `process.nextTick`. */
let flushLater: (transport: PollingTransport) => void

/**
 * Long-polling downstream: the client keeps one GET waiting; it is answered with every queued
 * packet (one per line) as soon as there is one. A newer GET answers the older one empty.
 */
export class PollingTransport extends HttpTransport {
  readonly name = 'polling'
  readonly #maxBody: number
  readonly #gzipAbove: number | false
  #held: { res: ServerResponse; headers: HeaderBag } | null = null
  /** Packet lines waiting for a GET, with their size in bytes (UTF-8, plus the newline). */
  #queue: { line: string; bytes: number }[] = []
  #queuedBytes = 0
  /** The CLOSE line, once sent: the only thing kept when the client stopped polling. */
  #lastWords: { line: string; bytes: number } | undefined
  #flushScheduled = false

  /**
   * @param maxBody answers stop adding packets past this many bytes (one packet always goes).
   * @param gzipAbove answers of this many bytes or more are gzipped for clients that accept it.
   */
  constructor(maxBody: number, gzipAbove: number | false = false) {
    super()
    this.#maxBody = maxBody
    this.#gzipAbove = gzipAbove
  }

  #answer(res: ServerResponse, headers: HeaderBag, body: string): void {
    answer(res, headers, body, this.#gzipAbove)
  }

  get bufferedAmount(): number {
    return this.#queuedBytes
  }

  /** Holds a GET until there is something to say. */
  hold(res: ServerResponse, headers: HeaderBag): void {
    const previous = this.#held
    this.#held = { res, headers }
    if (previous) this.#answer(previous.res, previous.headers, '')
    res.on('close', () => {
      if (this.#held?.res === res) this.#held = null
    })
    this.#flush()
  }

  downstream(res: ServerResponse, headers: HeaderBag): void {
    this.hold(res, headers)
  }

  send(out: Outgoing): void {
    if (!this.open) return
    const entry = { line: out.text, bytes: Buffer.byteLength(out.text) + 1 }
    if (out.packet.type === PacketType.CLOSE) this.#lastWords = entry
    this.#queue.push(entry)
    this.#queuedBytes += entry.bytes
    // Wait for the current tick to finish so that a burst of sends goes out in one answer, but
    // no longer: the client cannot poll again before it has this answer.
    if (!this.#flushScheduled && this.#held) {
      this.#flushScheduled = true
      process.nextTick(flushLater, this)
    }
  }

  override get lingering(): boolean {
    return !this.open && this.#queue.length > 0
  }

  static {
    // One function for every transport (not a closure each, kept for the session's life).
    flushLater = (transport) => {
      transport.#flushScheduled = false
      transport.#flush()
    }
  }

  serveLast(res: ServerResponse, headers: HeaderBag): void {
    this.#answer(res, headers, this.#queue.map((e) => e.line).join('\n'))
    this.#queue = []
    this.#queuedBytes = 0
  }

  protected end(kind: CloseKind): void {
    if (kind === 'overflow') {
      // The client does not poll: drop what waits for it, except the CLOSE.
      this.#queue = this.#lastWords ? [this.#lastWords] : []
      this.#queuedBytes = this.#lastWords?.bytes ?? 0
    }
    // Last words (MOVED, CLOSE) go to the waiting GET; without one they linger for the next.
    this.#flush()
    if (this.#held) this.#answer(this.#held.res, this.#held.headers, '')
    this.#held = null
  }

  #flush(): void {
    const held = this.#held
    if (!held || this.#queue.length === 0) return
    if (held.res.destroyed || held.res.writableEnded) {
      // The client gave up on this GET; keep the packets for its next one.
      this.#held = null
      return
    }
    let count = 0
    let bytes = 0
    while (count < this.#queue.length) {
      const size = this.#queue[count]!.bytes
      if (count > 0 && bytes + size > this.#maxBody) break
      bytes += size
      count++
    }
    const lines = this.#queue.splice(0, count)
    this.#queuedBytes -= bytes
    this.#held = null
    this.#answer(held.res, held.headers, lines.map((e) => e.line).join('\n'))
  }
}

/**
 * Answers a poll. A long answer is gzipped (off the event loop) when the client accepts it; the
 * packets are already out of the queue, so a client that goes away meanwhile gets them again
 * from the replay buffer when it resumes, as with any answer lost on the way.
 */
function answer(res: ServerResponse, headers: HeaderBag, body: string, gzipAbove: number | false): void {
  if (res.writableEnded || res.destroyed) return
  const head = {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    Vary: 'Accept-Encoding',
  }
  const bytes = Buffer.byteLength(body)
  if (gzipAbove === false || bytes < gzipAbove || !acceptsGzip(res.req?.headers['accept-encoding'])) {
    res.writeHead(200, { ...head, 'Content-Length': String(bytes) })
    res.end(body)
    return
  }
  gzip(body, (error, zipped) => {
    if (res.writableEnded || res.destroyed) return
    if (error) {
      res.writeHead(200, { ...head, 'Content-Length': String(bytes) })
      res.end(body)
      return
    }
    res.writeHead(200, { ...head, 'Content-Encoding': 'gzip', 'Content-Length': String(zipped.length) })
    res.end(zipped)
  })
}

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
