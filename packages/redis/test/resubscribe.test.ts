// Redis delivers pub/sub messages at most once: a node's own broadcast PUBLISHed while only its
// subscriber connection is down is taken by Redis and never comes back to it. A socket that
// waits for its node's own broadcasts to come back (a session taken over, see cut.ts) must not
// wait for that one.
import { prepareEvent } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { sustainedBurstOn } from './burst.js'
import {
  type FakeCluster,
  type FakeNode,
  fakeClusterSuite,
  message,
  snapshotOf,
  to,
  won,
} from './handoff-support.js'

/** The ids of the clients of Redis in subscriber mode, through `node`'s connection. */
async function subscriberIds(node: FakeNode): Promise<string[]> {
  const list = String(await node.redis.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub']))
  return [...list.matchAll(/^id=(\d+) /gm)].map((match) => match[1]!)
}

/**
 * Nodes `a` and `b`, live to each other, with session `sid` handed off by `a` (its socket in room
 * `r`); `bSubscriber` is the id of b's subscriber connection in Redis, and `watch` a socket of b
 * in room `p`, through which a test hears when b's subscriber takes the channel again.
 */
async function handedOffBeside(
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
async function subscriberBack(a: FakeNode, watch: { got: unknown[] }): Promise<void> {
  await until(
    () => {
      a.adapter.broadcast(message('probe', [1]), to(['p']))
      return watch.got.length > 0
    },
    5000,
    "b's subscriber back",
  )
}

/** b's `requestTimeout` in a burst: the burst lasts several times as long. */
const REQUEST_TIMEOUT = 1000

/** How long the burst lasts. */
const BURST_MS = 6 * REQUEST_TIMEOUT

describe.skipIf(skipRedisSuites())('a subscriber that reconnects alone', () => {
  const suite = fakeClusterSuite()

  it('settles its own broadcasts sent meanwhile: a socket it takes over is released without another', async () => {
    const sid = 'sid-gap'
    const { a, b, bSubscriber, watch } = await handedOffBeside(suite.cluster(), sid)

    // b's subscriber is cut, and b broadcasts behind the cut on its own connection: Redis runs
    // both in a row, before the subscriber can even connect again. Redis takes b0; b never
    // hears it back.
    const killed = b.redis.sendCommand(['CLIENT', 'KILL', 'ID', bSubscriber])
    b.adapter.broadcast(message('news', ['b0']), to(['r']))
    expect(await killed).toBe(1)
    await subscriberBack(a, watch)

    const claim = won(await b.adapter.claimSession(sid))
    const taken = b.sockets.add('s1', sid)
    await claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    // b0 is not on its way any more: the socket is released, and takes b's broadcasts when
    // emitted, so b1 comes before what b sends it directly after.
    await until(() => b.adapter.handingOver === 0, 3000, 'the taken-over socket released')
    b.adapter.broadcast(message('news', ['b1']), to(['r']))
    taken.deliver(prepareEvent('direct', ['d']))
    expect(taken.got).toEqual(['b1', 'd'])
  })

  it('settles them also when its subscriber is back before the connection it broadcasts on', async () => {
    const sid = 'sid-both'
    const { a, b, bSubscriber, watch } = await handedOffBeside(suite.cluster(), sid)

    // As above; then b's own connection is down too, from right after b0 until b hears the
    // channel again (Redis restarting: either connection may come back first).
    const killed = b.redis.sendCommand(['CLIENT', 'KILL', 'ID', bSubscriber])
    b.adapter.broadcast(message('news', ['b0']), to(['r']))
    b.down = true
    expect(await killed).toBe(1)
    await subscriberBack(a, watch)
    b.down = false

    const claim = won(await b.adapter.claimSession(sid))
    b.sockets.add('s1', sid)
    await claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    await until(() => b.adapter.handingOver === 0, 3000, 'the taken-over socket released')
  })

  it('settles them also while a burst on it outlasts requestTimeout: its note takes its turn', async () => {
    const sid = 'sid-burst'
    // b's heartbeats far apart: the burst is the sessions opening alone.
    const { a, b, bSubscriber, watch } = await handedOffBeside(suite.cluster(), sid, {
      requestTimeout: REQUEST_TIMEOUT,
      heartbeatInterval: 10_000,
    })
    const raw = b.redis.duplicate()
    raw.on('error', () => {})
    await raw.connect()
    try {
      // As above, and from right after b0 sessions keep opening on b, longer than its
      // requestTimeout, each record answered in time (see `sustainedBurstOn`): its queue of
      // commands is never empty while its subscriber takes the channel again.
      const killed = b.redis.sendCommand(['CLIENT', 'KILL', 'ID', bSubscriber])
      b.adapter.broadcast(message('news', ['b0']), to(['r']))
      const burstEnds = Date.now() + BURST_MS
      const burst = sustainedBurstOn(raw, b.adapter, BURST_MS)
      try {
        expect(await killed).toBe(1)
        await subscriberBack(a, watch)
        // The burst runs its course: a note that waited for the queue to empty gave up meanwhile.
        await until(() => Date.now() >= burstEnds, BURST_MS + 1000, 'the end of the burst')
      } finally {
        await burst.stop()
      }
      const claim = won(await b.adapter.claimSession(sid))
      b.sockets.add('s1', sid)
      await claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
      await until(() => b.adapter.handingOver === 0, 3000, 'the taken-over socket released')
    } finally {
      raw.destroy()
    }
  })
})
