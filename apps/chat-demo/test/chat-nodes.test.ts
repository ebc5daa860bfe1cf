// The in-process node harness itself: a node that fails to start must not leave its Redis
// connections open, since the teardown knows only the nodes that started.
import { createClient } from 'redis'
import { describe, expect, it } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { chatNodesSuite } from './chat-nodes.js'

describe.skipIf(skipRedisSuites())('chat nodes in the test process', () => {
  const suite = chatNodesSuite()

  it('closes the Redis connections of a node that cannot listen', async () => {
    const held = await holdPort()
    try {
      await expect(suite.startNode('a', { port: held.port })).rejects.toMatchObject({ code: 'EADDRINUSE' })
    } finally {
      held.release()
    }
    expect(suite.nodes).toEqual([])
    const look = createClient({ url: suite.redis.url })
    await look.connect()
    try {
      const own = `id=${String(await look.sendCommand(['CLIENT', 'ID']))} `
      // The connections Redis still has but this one, subscribers left out: the failed node's
      // command client must be gone. (Its adapter's subscriber is the adapter's own to close.)
      const others = async () =>
        String(await look.sendCommand(['CLIENT', 'LIST']))
          .trim()
          .split('\n')
          .filter((line) => line.includes(' sub=0 ') && !line.startsWith(own)).length
      await expect.poll(others, { timeout: 5000 }).toBe(0)
    } finally {
      look.destroy()
    }
  })
})
