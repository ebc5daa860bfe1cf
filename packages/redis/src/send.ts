import type { RedisClient } from './options.js'

/** Sends a command; a client that throws instead of rejecting (closed, misused) rejects here too. */
export function send(client: RedisClient, args: string[]): Promise<unknown> {
  try {
    return client.sendCommand(args)
  } catch (err) {
    return Promise.reject(err)
  }
}

/**
 * A bulk string reply as text. A client made with a type mapping may hand bulk strings over
 * as Buffers: the adapter reads them the same.
 */
export function asText(reply: unknown): string | undefined {
  if (typeof reply === 'string') return reply
  if (reply instanceof Uint8Array)
    return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString()
  return undefined
}
