// Redis goes away under steady cross-node traffic and comes back empty: nothing crashes, local
// delivery goes on, what could not cross is counted, and cross-node delivery resumes.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { inbox, Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())('a Redis outage', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const { raws } = suite

  it('counts what could not cross, keeps local delivery, and delivers across nodes again once Redis is back', async () => {
    const rejections: unknown[] = []
    const onRejection = (reason: unknown) => rejections.push(reason)
    process.on('unhandledRejection', onRejection)
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const a0 = await nodes.client(a!)
    const b0 = await nodes.client(b!)
    const raw = await rawConnect('polling', b!.base)
    raws.push(raw)
    a0.socket.join('room')
    b0.socket.join('room')
    const [inA0, inB0] = [inbox(a0.client), inbox(b0.client)]

    // Steady traffic from a: one broadcast every 20 ms, each numbered, for at most 30 s.
    let sent = 0
    const sentAt: number[] = []
    const traffic = setInterval(() => {
      if (sent >= 1500) return clearInterval(traffic)
      sentAt.push(performance.now())
      a!.app.parley.to('room').emit('news', sent++)
    }, 20)
    try {
      await until(() => inB0.length >= 5, 5000, 'traffic across nodes')

      await suite.redis.stop()
      await until(() => !a!.redis.isReady && !b!.redis.isReady, 5000, 'the nodes see Redis gone')
      // A session opens on b meanwhile: its owner record waits for Redis.
      const during = await rawConnect('sse', b!.base)
      raws.push(during)
      const lostBefore = a!.adapter.stats.lostBroadcasts
      await until(
        () => a!.adapter.stats.lostBroadcasts >= lostBefore + 50,
        5000,
        'broadcasts counted as lost',
      )
      await suite.redis.restart()
      const back = performance.now()
      const resumed = () => inB0.some((n) => typeof n === 'number' && sentAt[n]! >= back)
      await until(resumed, 5000, 'cross-node delivery within 5 s of Redis returning')

      // And from b to a (each node's subscriber reconnects on its own).
      const probes = inbox(a0.client, 'probe')
      await until(
        () => {
          b!.app.parley.to('room').emit('probe', 1)
          return probes.length > 0
        },
        5000,
        'delivery from b to a',
      )

      // The live sets and the session records come back too: queries reach b again, and b's
      // sessions, old or opened during the outage, are found from a (Redis lost every key).
      await until(() => a!.adapter.liveNodes.length === 1 && b!.adapter.liveNodes.length === 1, 5000, 'live')
      expect((await a!.app.parley.in('room').fetchSockets()).map((s) => s.id).sort()).toEqual(
        [a0.socket.id, b0.socket.id].sort(),
      )
      for (const session of [raw, during]) {
        let owner: unknown
        const deadline = performance.now() + 5000
        while (performance.now() < deadline) {
          owner = await a!.adapter.sessionOwner(session.sid)
          if (typeof owner === 'object') break
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
        expect(owner).toMatchObject({ node: b!.adapter.node })
      }
    } finally {
      clearInterval(traffic)
      process.off('unhandledRejection', onRejection)
    }
    // Local delivery never stopped: a0 got every broadcast, in order; b0 got none twice.
    await until(() => inA0.length === sent, 3000, 'local deliveries')
    expect(inA0).toEqual([...Array(sent).keys()])
    expect(new Set(inB0).size).toBe(inB0.length)
    expect(inB0.length).toBeLessThan(sent)
    expect(a!.adapter.stats.lostBroadcasts).toBeGreaterThan(0)
    expect(a!.warnings.some((w) => w.includes('could not reach the other nodes'))).toBe(true)
    expect(rejections).toEqual([])
  }, 40_000)

  it('logs one line, with a coded error, for many requests it cannot locate while Redis is away', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const raw = await rawConnect('polling', a!.base)
    raws.push(raw)
    const warn = vi.spyOn(b!.app.log, 'warn')
    try {
      await suite.redis.stop()
      await until(() => !b!.redis.isReady, 5000, 'b sees Redis gone')
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${b!.base}/poll?v=1&sid=${raw.sid}`)
        await res.text()
      }
      const lines = warn.mock.calls.filter(([, message]) => String(message).includes('where a session lives'))
      expect(lines).toHaveLength(1)
      expect(lines[0]![0]).toMatchObject({ err: { code: 'PARLEY_REDIS_UNREACHABLE' } })
    } finally {
      warn.mockRestore()
      await suite.redis.restart()
    }
  })
})
