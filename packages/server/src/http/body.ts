import type { Readable } from 'node:stream'

/**
 * A request body read under a byte limit: its lines (one packet each, as splitting its text at
 * each newline gives them), or its whole text (a request forwarded to another node). Each is
 * made when asked for: a forwarded POST needs only the text, a frozen session's neither.
 */
export type BodyResult =
  | { ok: true; lines(): readonly string[]; text(): string }
  | { ok: false; reason: 'too large' | 'aborted' }

/** The body of a request that has none. */
export const EMPTY_BODY: BodyResult = { ok: true, lines: () => [''], text: () => '' }

/**
 * Reads a body up to `limit` bytes. Past the limit it stops reading at once (the caller answers
 * 413 and closes the connection) instead of buffering what the client keeps sending.
 */
export function readBody(stream: Readable, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (result: BodyResult) => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onAbort)
      stream.off('close', onAbort)
      if (!result.ok) stream.pause()
      resolve(result)
    }
    const onData = (chunk: Buffer | string) => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      size += buffer.length
      if (size > limit) finish({ ok: false, reason: 'too large' })
      else chunks.push(buffer)
    }
    const onEnd = () =>
      finish({
        ok: true,
        lines: () => linesOf(chunks, size),
        text: () => Buffer.concat(chunks, size).toString('utf8'),
      })
    const onAbort = () => finish({ ok: false, reason: 'aborted' })
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onAbort)
    stream.on('close', onAbort)
  })
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

function byteLength(chunks: readonly Buffer[]): number {
  let size = 0
  for (const chunk of chunks) size += chunk.length
  return size
}
