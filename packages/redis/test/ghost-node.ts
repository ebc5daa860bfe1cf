// A node in the live set that nothing answers for, written straight into Redis: what a request
// waits for when a node drops out of the live set (its record lapsed, or it said goodbye) while
// the request waits for it.
import type { FakeNode } from './handoff-support.js'
import type { RawRedis } from './raw-redis.js'

/** The ghost's node id. */
export const GHOST = 'ghost'

/** Writes ghost `id`'s record and its entry in the live-node index under `prefix`. */
export async function haunt(raw: RawRedis, prefix: string, id = GHOST): Promise<void> {
  await raw.sendCommand(['SET', `${prefix}:node:${id}`, 'http://127.0.0.1:9', 'PX', '60000'])
  await raw.sendCommand(['ZADD', `${prefix}:nodes`, String(Date.now()), id])
}

/** The PUBLISHes `node` sent on `channel` so far. */
export function published(node: FakeNode, channel: string): string[][] {
  return node.commands.filter((args) => args[0] === 'PUBLISH' && args[1] === channel)
}

/** Ghost `id`'s record goes without a goodbye mark: a lapse, as the next heartbeat reads it. */
export async function lapse(raw: RawRedis, prefix: string, id = GHOST): Promise<void> {
  await raw.sendCommand(['DEL', `${prefix}:node:${id}`])
}

/** As a closing node's `stop()` does: the goodbye mark first, then the record removed. */
export async function leaveMarked(raw: RawRedis, prefix: string, id = GHOST): Promise<void> {
  await raw.sendCommand(['SET', `${prefix}:node:${id}:left`, '1', 'PX', '60000'])
  await raw.sendCommand(['DEL', `${prefix}:node:${id}`])
}

/** Ghost `id` says it left on the membership channel (its record, if any, stays as it is). */
export async function sayLeft(raw: RawRedis, prefix: string, id = GHOST): Promise<void> {
  await raw.sendCommand(['PUBLISH', `${prefix}:membership`, JSON.stringify({ n: id, k: 'left' })])
}
