// The people lists when the cluster's live nodes change without anyone joining or leaving a room:
// a node cut off from Redis long enough drops out of the others' live set, and their lists lack
// its people (`fetchSockets` no longer asks it); once it is back, the nodes that took it for gone
// must tell their rooms again, or its people would stay off the lists until the room next changed.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { chatNodesSuite, join, liveNodes, peopleHeard } from './chat-nodes.js'

/**
 * The nodes' heartbeat and their Redis clients' longest wait before trying again, shortened from
 * the adapter's and the demo's 2000 ms each: node A is gone for B after three missed heartbeats
 * (1.5 s rather than 6), and back within a heartbeat of its link's return (rather than the 2 s
 * its client waited by then, and a heartbeat of 2 s).
 */
const QUICK = { heartbeatInterval: 500, reconnectDelay: 100 }

describe.skipIf(skipRedisSuites())("the people lists when the cluster's live nodes change", () => {
  const suite = chatNodesSuite()

  it('lists the people of a node cut off from Redis again once it is back', async () => {
    // Node A reaches Redis through a link that can go down; node B directly.
    const link = await suite.proxy(Number(new URL(suite.redis.url).port))
    const a = await suite.startNode('a', {
      redisUrl: `redis://127.0.0.1:${new URL(link.url).port}`,
      ...QUICK,
    })
    const b = await suite.startNode('b', QUICK)
    await expect.poll(() => liveNodes(a) === 1 && liveNodes(b) === 1, { timeout: 10_000 }).toBe(true)

    const [ona, pim] = [await suite.person('ona', a), await suite.person('pim', b)]
    const heard = peopleHeard(pim, 'lobby')
    await join(ona, 'lobby')
    await join(pim, 'lobby')
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['ona', 'pim'])

    // Node A misses three heartbeats: node B takes it for gone, and tells the lobby who it finds.
    link.offline = true
    await expect.poll(() => heard.at(-1), { timeout: 20_000 }).toEqual(['pim'])
    // Back: node B sees node A again, and tells the lobby again, Ona in it.
    link.offline = false
    await expect.poll(() => heard.at(-1), { timeout: 20_000 }).toEqual(['ona', 'pim'])
  }, 65_000)
})
