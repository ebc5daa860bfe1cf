import type { Readable } from 'node:stream'

/** A request body read under a byte limit. */
export type BodyResult = { ok: true; text: string } | { ok: false; reason: 'too large' | 'aborted' }

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
    const onEnd = () => finish({ ok: true, text: Buffer.concat(chunks, size).toString('utf8') })
    const onAbort = () => finish({ ok: false, reason: 'aborted' })
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onAbort)
    stream.on('close', onAbort)
  })
}
