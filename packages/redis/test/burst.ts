import { MAX_UNANSWERED_COMMANDS } from '@parley/redis'
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
