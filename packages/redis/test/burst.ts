import { MAX_UNANSWERED_COMMANDS, type RedisAdapter } from '@parley/redis'
import { message, to } from './handoff-support.js'
import type { TestNode } from './nodes.js'
import type { RawRedis } from './raw-redis.js'

/**
 * A burst on `node`, made with a real Redis: Redis holds every write (PUBLISH too) for at most
 * `pauseMs`, or until the test sends `CLIENT UNPAUSE`, and the node broadcasts
 * `MAX_UNANSWERED_COMMANDS` times meanwhile, so that its connection has that many commands in
 * flight at once, as a thousand sessions opening or ending at once would leave it. Reads of
 * other connections go on.
 */
export async function burstOn(raw: RawRedis, node: Pick<TestNode, 'app'>, pauseMs: number): Promise<void> {
  await raw.sendCommand(['CLIENT', 'PAUSE', String(pauseMs), 'WRITE'])
  for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++) node.app.parley.to('nobody').emit('burst', i)
}

/** As `burstOn`, for an adapter without a server (a node of handoff-support.ts' `FakeCluster`). */
export async function burstOnAdapter(
  raw: RawRedis,
  adapter: Pick<RedisAdapter, 'broadcast'>,
  pauseMs: number,
): Promise<void> {
  await raw.sendCommand(['CLIENT', 'PAUSE', String(pauseMs), 'WRITE'])
  for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++) adapter.broadcast(message('burst', [i]), to(['nobody']))
}
