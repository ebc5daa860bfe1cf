import type { RedisClient } from './options.js'

/** Sends a command; a client that throws instead of rejecting (closed, misused) rejects here too. */
export function send(client: RedisClient, args: string[]): Promise<unknown> {
  try {
    return client.sendCommand(args)
  } catch (err) {
    return Promise.reject(err)
  }
}
