import { isUtf8 } from 'node:buffer'
import type { Readable, Writable } from 'node:stream'
import { type DecodeBatchResult, decodeLines } from '@parley/protocol'
import { notUtf8 } from '../not-utf8.js'
import { Timed, TimerQueue } from '../timer-queue.js'

/** Why a body was not read to its end. */
export type BodyFailure =
  /** Longer than the limit: the caller answers 413 and closes the connection. */
  | 'too large'
  /** The connection went: there is nobody to answer. */
  | 'aborted'
  /** Nothing arrived for the time a reader waits (see `BodyReader`). */
  | 'stalled'
  /** The server is closing (see `BodyReader.close`). */
  | 'closing'

/**
 * A request body read under a byte limit: its lines (one packet each, as splitting its text at
 * each newline gives them), or its whole text (a request forwarded to another node). Each is
 * made when asked for: a forwarded POST needs only the text, a frozen session's neither.
 * `utf8` is false when its bytes are not UTF-8: decoding would replace the bad ones with U+FFFD
 * and hand on packets the client never sent, so the caller refuses it as a packet it cannot
 * read (see `decodeBody`, `NOT_UTF8_TEXT`), before anything is decoded or forwarded.
 */
export type BodyResult =
  | { ok: true; utf8: boolean; lines(): readonly string[]; text(): string }
  | { ok: false; reason: BodyFailure }

/** The body of a request that has none. */
export const EMPTY_BODY: BodyResult = { ok: true, utf8: true, lines: () => [''], text: () => '' }

/** The lines of a body read to its end; undefined when it is not UTF-8 (see `decodeBody`). */
export function linesOfBody(body: {
  utf8: boolean
  lines(): readonly string[]
}): readonly string[] | undefined {
  return body.utf8 ? body.lines() : undefined
}

/** The packets of a body's `lines` (see `linesOfBody`): one that is not UTF-8 is refused. */
export function decodeBody(lines: readonly string[] | undefined, maxPayload: number): DecodeBatchResult {
  return lines ? decodeLines(lines, { maxPayload }) : { ok: false, error: notUtf8() }
}

/**
 * What a node forwards to the session's owner in place of a body that is not UTF-8 (as text,
 * the bytes cannot travel): a line that the owner cannot decode either (PARLEY_INVALID_JSON),
 * so that it answers and ends the session as it would have for the body itself.
 */
export const NOT_UTF8_TEXT = '\uFFFD'

const CLOSING: BodyResult = { ok: false, reason: 'closing' }

/**
 * Reads a body up to `limit` bytes. Past the limit it stops reading at once (the caller answers
 * 413 and closes the connection) instead of buffering what the client keeps sending. `watch`
 * is told of each chunk and may stop the read (see `BodyReader`). Once `answered` (the
 * request's response) has finished, the read ends as `'aborted'`: the request was answered
 * without its body (Fastify's, at its handlerTimeout), and what comes of it after is thrown
 * away (see lingering-close.ts), never taken for packets that the client sends again.
 */
export function readBody(
  stream: Readable,
  limit: number,
  watch?: BodyWatch,
  answered?: Writable,
): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (result: BodyResult) => {
      if (done) return
      done = true
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onAbort)
      stream.off('close', onAbort)
      answered?.off('finish', onAbort)
      if (read) watch?.done(read)
      if (!result.ok) stream.pause()
      resolve(result)
    }
    /** How many chunks at the end of `chunks` are shorter than SMALL_CHUNK. */
    let small = 0
    const onData = (chunk: Buffer | string) => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      size += buffer.length
      if (size > limit) finish({ ok: false, reason: 'too large' })
      else {
        chunks.push(buffer)
        if (buffer.length >= SMALL_CHUNK) small = 0
        else if (++small === SMALL_RUN) {
          const run = joined(chunks.splice(-SMALL_RUN))
          chunks.push(run)
          small = run.length < SMALL_CHUNK ? 1 : 0
        }
        if (read) watch?.moved(read)
      }
    }
    const onEnd = () =>
      finish({
        ok: true,
        utf8: allUtf8(chunks),
        lines: () => linesOf(chunks, size),
        text: () => Buffer.concat(chunks, size).toString('utf8'),
      })
    const onAbort = () => finish({ ok: false, reason: 'aborted' })
    // Closed already (its client went while an async hook of the application's held it): no
    // event of it comes again, and the read would hold the session's POSTs until it stalled.
    if (stream.destroyed) return resolve({ ok: false, reason: 'aborted' })
    const read = watch?.begin((reason) => finish({ ok: false, reason }))
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onAbort)
    stream.on('close', onAbort)
    answered?.on('finish', onAbort)
  })
}

/**
 * A body that comes in many small chunks (a client that sends it a few bytes to a TCP segment)
 * would be kept as as many Buffers, each about 200 bytes of heap whatever it holds: a megabyte
 * sent a byte at a time held some 200 MB until its end. Each run of SMALL_RUN chunks shorter than
 * SMALL_CHUNK is joined into one as it comes, so that a body holds about its own size whatever
 * its chunks.
 */
const SMALL_CHUNK = 1024
const SMALL_RUN = 32

/**
 * `pieces` in one Buffer of their own: not a slice of Node's shared pool, which a joined run
 * kept until the body's end would pin (8 KiB each).
 */
function joined(pieces: readonly Buffer[]): Buffer {
  const out = Buffer.allocUnsafeSlow(byteLength(pieces))
  let at = 0
  for (const piece of pieces) {
    out.set(piece, at)
    at += piece.length
  }
  return out
}

/** What `readBody` tells of a read in progress, and how it can be stopped. */
export interface BodyWatch {
  /** A read begins; `stop` gives it up. */
  begin(stop: (reason: 'stalled' | 'closing') => void): BodyRead
  /** A chunk of it arrived. */
  moved(read: BodyRead): void
  /** It ended, one way or another. */
  done(read: BodyRead): void
}

/** A body being read, as its `BodyWatch` knows it: a place in the queue of deadlines. */
export class BodyRead extends Timed {
  constructor(readonly stop: (reason: 'stalled' | 'closing') => void) {
    super()
  }
}

/**
 * Reads the endpoints' POST bodies, each under `limit` bytes, and gives up a body during which
 * nothing arrives for `stallMs` ms. Over a connection left half-open (a phone that changed
 * networks) or through a stalled proxy, a body may never end, and nothing else would end its
 * read: Fastify puts no time limit on a request by default. A body that keeps coming, however
 * slowly, is read to its end. One queue of deadlines serves every read (see `TimerQueue`), each
 * put back at its end at every chunk.
 *
 * `close()` gives up every read in progress, and any begun later: a closing server would
 * otherwise wait for each of them.
 */
export class BodyReader implements BodyWatch {
  readonly limit: number
  readonly stallMs: number
  readonly #deadlines: TimerQueue<BodyRead>
  /** The reads in progress, for `close()`. */
  readonly #reading = new Set<BodyRead>()
  #closed = false

  constructor(limit: number, stallMs: number) {
    this.limit = limit
    this.stallMs = stallMs
    this.#deadlines = new TimerQueue(stallMs, (read) => read.stop('stalled'))
  }

  /**
   * Reads `stream` to its end, or until it passes the limit, stalls, goes, is `answered` (see
   * `readBody`) or the server closes. `late`: read all the same once the server closed, for a
   * request whose client's last word may be in it, which the close waits for already (the POST
   * of a handed-off session, its owner looked up as the server closed: see routes.ts).
   */
  read(stream: Readable, answered?: Writable, late = false): Promise<BodyResult> {
    if (this.#closed && !late) return Promise.resolve(CLOSING)
    return readBody(stream, this.limit, this, answered)
  }

  /** Gives up every read in progress (they end `'closing'`), and every later one. */
  close(): void {
    this.#closed = true
    for (const read of [...this.#reading]) read.stop('closing')
  }

  begin(stop: (reason: 'stalled' | 'closing') => void): BodyRead {
    const read = new BodyRead(stop)
    this.#reading.add(read)
    this.#deadlines.add(read)
    return read
  }

  moved(read: BodyRead): void {
    this.#deadlines.add(read)
  }

  done(read: BodyRead): void {
    this.#reading.delete(read)
    read.leaveQueue()
  }
}

/** Bodies shorter than this are decoded whole, then split: one call for all their lines. */
const WHOLE_BELOW = 64 * 1024

/**
 * The lines of a body that came as `chunks`: what splitting its text at each newline gives.
 * A long body is not made into one string first: V8 makes a string of more than 128 KiB in its
 * large-object space, on pages mapped and faulted in anew for each, and a POST of two 64 KB
 * packets paid that twice (the joined bytes, then the text). Such a body is decoded a chunk at a
 * time (as it came off the socket, 64 KiB at most), a line that spans chunks on its own. A
 * newline byte is never part of a longer UTF-8 sequence, so each piece decodes as it would have
 * within the whole.
 */
export function linesOf(chunks: readonly Buffer[], size = byteLength(chunks)): string[] {
  if (size < WHOLE_BELOW) return Buffer.concat(chunks, size).toString('utf8').split('\n')
  const lines: string[] = []
  // The start of the line that the next newline ends, from earlier chunks.
  let begun: Buffer[] = []
  for (const chunk of chunks) {
    const first = chunk.indexOf(0x0a)
    if (first === -1) {
      begun.push(chunk)
      continue
    }
    lines.push(lineOf(begun, chunk.subarray(0, first)))
    const last = chunk.lastIndexOf(0x0a)
    if (last > first) for (const line of chunk.toString('utf8', first + 1, last).split('\n')) lines.push(line)
    begun = [chunk.subarray(last + 1)]
  }
  lines.push(lineOf(begun, NOTHING))
  return lines
}

const NOTHING = Buffer.alloc(0)

function lineOf(begun: readonly Buffer[], rest: Buffer): string {
  return (begun.length === 0 ? rest : Buffer.concat([...begun, rest])).toString('utf8')
}

/**
 * True when `chunks`, one after the other, are UTF-8: each checked where it lies (natively, no
 * copy of the body), a character cut in two between chunks checked as one on its own.
 */
export function allUtf8(chunks: readonly Buffer[]): boolean {
  // The start of a character that the previous chunk ended before its end.
  let cut: Buffer | undefined
  for (const chunk of chunks) {
    let from = 0
    if (cut) {
      // The bytes that finish it: continuation bytes (10xxxxxx), three at most.
      while (from < chunk.length && from < 3 && isContinuation(chunk[from]!)) from++
      const joined = Buffer.concat([cut, chunk.subarray(0, from)])
      if (!isUtf8(joined)) {
        // Still short of its end only when the whole chunk went into it (a chunk of a byte or
        // two), and never past four bytes, the longest character.
        if (from < chunk.length || joined.length >= 4) return false
        cut = joined
        continue
      }
      cut = undefined
    }
    const to = completeEnd(chunk, from)
    if (!isUtf8(chunk.subarray(from, to))) return false
    if (to < chunk.length) cut = chunk.subarray(to)
  }
  return cut === undefined
}

/** Where the last character of `chunk` (after `from`) begins if the chunk cuts it short, else its end. */
function completeEnd(chunk: Buffer, from: number): number {
  let lead = chunk.length - 1
  while (lead > from && chunk.length - lead < 4 && isContinuation(chunk[lead]!)) lead--
  if (lead < from) return chunk.length
  const byte = chunk[lead]!
  const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
  return lead + length > chunk.length ? lead : chunk.length
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80
}

function byteLength(chunks: readonly Buffer[]): number {
  let size = 0
  for (const chunk of chunks) size += chunk.length
  return size
}
