// The scene of the resubscribe suites: two nodes, one of which handed a session off, and the
// other's subscriber connection, which a test cuts alone (see resubscribe.test.ts).
import { expect } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { type FakeCluster, type FakeNode, message, snapshotOf, to } from './handoff-support.js'

/** The ids of the clients of Redis in subscriber mode, through `node`'s connection. */
export async function subscriberIds(node: FakeNode): Promise<string[]> {
  const list = String(await node.redis.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub']))
  return [...list.matchAll(/^id=(\d+) /gm)].map((match) => match[1]!)
}

/**
 * Nodes `a` and `b`, live to each other, with session `sid` handed off by `a` (its socket in room
 * `r`); `bSubscriber` is the id of b's subscriber connection in Redis, and `watch` a socket of b
 * in room `p`, through which a test hears when b's subscriber takes the channel again.
 */
export async function handedOffBeside(
  cluster: FakeCluster,
  sid: string,
  bOptions: { requestTimeout?: number; heartbeatInterval?: number } = {},
) {
  const a = await cluster.node()
  const before = await subscriberIds(a)
  const b = await cluster.node(undefined, bOptions)
  const [bSubscriber] = (await subscriberIds(a)).filter((id) => !before.includes(id))
  expect(bSubscriber).toBeDefined()
  await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
  const watch = b.sockets.add('watch')
  b.adapter.addAll('watch', ['watch', 'p'])
  const handed = a.sockets.add('s1', sid)
  a.adapter.addAll('s1', ['s1', 'r'])
  await a.adapter.sessionOpened(sid)
  handed.handedOff = (text) => a.adapter.appendHandOff(sid, text)
  expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
  return { a, b, bSubscriber: bSubscriber!, watch }
}

/** Until b's subscriber hears the channel again: a's broadcasts reach it (b sends none). */
export async function subscriberBack(a: FakeNode, watch: { got: unknown[] }): Promise<void> {
  await until(
    () => {
      a.adapter.broadcast(message('probe', [1]), to(['p']))
      return watch.got.length > 0
    },
    5000,
    "b's subscriber back",
  )
}
