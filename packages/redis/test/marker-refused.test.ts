// A claim marker Redis refused never runs: without it on the channel there is no cut, the old
// node never hears of the claim and goes on numbering into the tail what reaches its socket,
// while the claimer, joined, gets the same broadcasts live. The claimer sends the marker again,
// and the session gets each broadcast once, in order: through the tail, or live after the join.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, eventually, FakeCluster, message, snapshotOf, to, won } from './handoff-support.js'

const isMarker = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('"k":"claim"')

describe.skipIf(skipRedisSuites())('a takeover whose claim marker Redis refused', () => {
  it('sends the marker again: the old node seals at the cut, and each broadcast reaches the session once', async () => {
    const redis = await startRedis()
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const proxy = await startTcpProxy(redis.port)
    const cluster = new FakeCluster(redis.url)
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, { subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}` })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-refused'
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      handed.handedOff = (text) => a.adapter.appendHandOff(sid, text)
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
      const claim = won(await b.adapter.claimSession(sid))

      // b's subscriber stops reading; c's x1 reaches a's socket (into the tail), not b yet.
      release = proxy.holdDownstream()
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      const tailKey = async () => {
        const keys = (await a.redis.sendCommand(['KEYS', `${cluster.prefix}:handoff:*:tail`])) as string[]
        return keys[0]
      }
      await eventually(
        async () => {
          const key = await tailKey()
          return key !== undefined && Number(await a.redis.sendCommand(['LLEN', key])) === 1
        },
        5000,
        'x1 in the tail',
      )

      // Redis refuses b's first marker.
      let refused = 0
      b.hold = (args) => {
        if (!isMarker(args) || refused > 0) return undefined
        refused++
        return Promise.reject(new Error('ERR the first marker is refused'))
      }
      const taken = b.sockets.add('s1', sid)
      const done = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
      // Refused (logged as it is handled): x1 comes to b after that.
      await until(() => b.warnings.includes('@parley/redis: PUBLISH failed'), 5000, 'the marker refused')
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')
      expect(refused).toBe(1)

      // Later ones reach the socket live.
      c.adapter.broadcast(message('news', ['x2']), to(['r']))
      await until(() => taken.got.includes('x2'), 5000, 'x2 at the socket')
      b.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')
      c.adapter.broadcast(message('news', ['x4']), to(['r']))
      await until(() => taken.got.includes('x4'), 5000, 'x4 at the socket')

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3', 'x4'])
      // The old node heard the claim, and sealed the tail at the cut.
      expect(a.sockets.claims).toEqual([sid])
      expect(result).toMatchObject({ complete: true, late: false })
    } finally {
      release?.()
      await cluster.close()
      await proxy.close()
      await redis.stop()
    }
  })

  it('sends the marker again once a dropped connection is back: the old node seals at the cut', async () => {
    const redis = await startRedis()
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const proxy = await startTcpProxy(redis.port)
    const cluster = new FakeCluster(redis.url)
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, { subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}` })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

      const sid = 'sid-dropped'
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      handed.handedOff = (text) => a.adapter.appendHandOff(sid, text)
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
      const claim = won(await b.adapter.claimSession(sid))

      release = proxy.holdDownstream()
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      await eventually(
        async () => {
          const keys = (await a.redis.sendCommand(['KEYS', `${cluster.prefix}:handoff:*:tail`])) as string[]
          return keys[0] !== undefined && Number(await a.redis.sendCommand(['LLEN', keys[0]])) === 1
        },
        5000,
        'x1 in the tail',
      )

      // b's first marker is lost with its connection: never run, no answer.
      let drop: ((err: Error) => void) | undefined
      b.hold = (args) =>
        isMarker(args) && drop === undefined
          ? new Promise((_, reject) => {
              drop = reject
            })
          : undefined
      const taken = b.sockets.add('s1', sid)
      const done = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
      await until(() => drop !== undefined, 5000, 'the marker on its way')
      b.down = true
      drop!(new Error('the connection dropped'))
      // The failure is handled within this turn (no I/O): the connection comes back after it.
      await new Promise((resolve) => setImmediate(resolve))
      b.down = false
      await until(() => a.sockets.claims.includes(sid), 5000, 'the marker sent again, at a')
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')
      expect(b.commands.filter(isMarker)).toHaveLength(2)
      expect(result).toMatchObject({ complete: true, late: false })

      c.adapter.broadcast(message('news', ['x2']), to(['r']))
      await until(() => taken.got.includes('x2'), 5000, 'x2 at the socket')
      b.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
    } finally {
      release?.()
      await cluster.close()
      await proxy.close()
      await redis.stop()
    }
  })

  it('stops after five markers all refused: the takeover goes on without a cut, within its bound', async () => {
    const redis = await startRedis()
    const cluster = new FakeCluster(redis.url)
    try {
      const [a, b] = await cluster.start(2)
      const sid = 'sid-refused-always'
      a!.sockets.add('s1', sid)
      a!.adapter.addAll('s1', ['s1', 'r'])
      await a!.adapter.sessionOpened(sid)
      expect(await a!.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
      const claim = won(await b!.adapter.claimSession(sid))
      b!.hold = (args) =>
        isMarker(args) ? Promise.reject(new Error('ERR every marker is refused')) : undefined
      let joins = 0
      const result = await within(
        claim.takeOver(() => joins++),
        5000,
        'the takeover',
      )
      expect(b!.commands.filter(isMarker)).toHaveLength(5)
      expect(joins).toBe(1)
      // Read without the old node's seal: it never heard of the claim.
      expect(result).toMatchObject({ tail: [], complete: false, late: false })
      expect(a!.sockets.claims).toEqual([])
    } finally {
      await cluster.close()
      await redis.stop()
    }
  })
})
