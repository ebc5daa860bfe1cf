// Redis delivers a PUBLISH only to the connections subscribed as it runs it. Right after Redis
// comes back (or a node's subscriber link drops alone), a node can be live to the others, its
// heartbeats going through on its own connection, while its subscriber is still connecting: a
// cluster query sent then never reaches it, and the answers sent to a node whose own subscriber
// is still connecting never reach the asker. Either way the query must still gather every live
// node's answer once the node hears again, not end with a short list at requestTimeout.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { allLive, deafen, deafenable, ranInRedis } from './deaf-subscriber.js'
import { published } from './ghost-node.js'
import { handoffScenes, to } from './handoff-support.js'

const scene = handoffScenes()

/** Far longer than the test takes with every answer in: a query that ends by it lost one. */
const REQUEST_TIMEOUT = 8000

describe.skipIf(skipRedisSuites())('a cluster query around a subscriber that reconnects', () => {
  it("gets a live node's sockets when that node's subscriber was reconnecting as the query went out", async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'b', REQUEST_TIMEOUT)
    const c = await cluster.node()
    await allLive([a, b, c])
    for (const [node, id] of [
      [a, 'a0'],
      [b, 'b0'],
      [c, 'c0'],
    ] as const) {
      node.sockets.add(id)
      node.adapter.addAll(id, [id, 'room'])
    }

    // b's subscriber is down; b's own connection beats on, so b stays live to a.
    await deafen(b, proxy)
    const fetched = a.adapter.fetchSockets(to(['room']))
    const request = `${cluster.prefix}:request`
    await until(() => published(a, request).length === 1, 5000, "a's query sent")
    await ranInRedis(a)
    expect(a.adapter.liveNodes).toContain(b.adapter.node)

    // b hears again: a's query, which it missed, reaches it, and the answer is whole.
    proxy.offline = false
    const sockets = await within(fetched, REQUEST_TIMEOUT + 2000, "a's fetchSockets")
    expect(sockets.map((socket) => socket.id).sort()).toEqual(['a0', 'b0', 'c0'])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(a.warnings.filter((w) => w.includes('cluster query'))).toEqual([])
    // Asked again of b alone: c, which had answered, is not asked to run it twice.
    const toA = `${cluster.prefix}:response:${a.adapter.node}`
    expect(published(c, toA).filter(([, , text]) => text!.includes('"sockets"'))).toHaveLength(1)
  }, 25_000)

  it("gets the other nodes' sockets when the asking node's own subscriber was reconnecting as they answered", async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'a', REQUEST_TIMEOUT)
    await allLive([a, b])
    a.sockets.add('a0')
    a.adapter.addAll('a0', ['a0', 'room'])
    b.sockets.add('b0')
    b.adapter.addAll('b0', ['b0', 'room'])

    // a's subscriber is down as b answers: the answer is lost to a.
    await deafen(a, proxy)
    const fetched = a.adapter.fetchSockets(to(['room']))
    const toA = `${cluster.prefix}:response:${a.adapter.node}`
    await until(() => published(b, toA).length === 1, 5000, "b's answer sent")
    await ranInRedis(b)

    proxy.offline = false
    const sockets = await within(fetched, REQUEST_TIMEOUT + 2000, "a's fetchSockets")
    expect(sockets.map((socket) => socket.id).sort()).toEqual(['a0', 'b0'])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
  }, 25_000)
})
