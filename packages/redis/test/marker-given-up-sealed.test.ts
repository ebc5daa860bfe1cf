// A claim marker given up unanswered (Redis stalled) for a tail sealed before the claim: nothing
// more comes from the old node, so nothing is waited for, but there is no cut either. Joined
// then, the socket would take live a broadcast that the claimer's subscriber reads late and the
// sealed tail holds too. The claimer gives the claim back instead; the next claim, once Redis
// answers, takes the session at its marker, and the session gets each broadcast once, in order.
import type { ClaimAnswer } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, FakeCluster, message, snapshotOf, to, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a takeover of a sealed tail whose marker got no answer in time', () => {
  it('gives the claim back, and the next claim gives the session a broadcast from before the seal once', async () => {
    const redis = await startRedis()
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const proxy = await startTcpProxy(redis.port)
    const cluster = new FakeCluster(redis.url)
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, {
        requestTimeout: 300,
        subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}`,
      })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-sealed-given-up'
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      const tail: string[] = []
      handed.handedOff = (text) => {
        tail.push(text)
        a.adapter.appendHandOff(sid, text)
      }
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)

      // b's subscriber stops reading; c's x1 reaches a's socket (into the tail), not b yet.
      release = proxy.holdDownstream()
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      await until(() => tail.length === 1, 5000, 'x1 at the handed-off socket')
      // a's drain ends unclaimed: it seals the tail behind x1.
      await a.adapter.sealHandOff(sid, [])
      const first = won(await b.adapter.claimSession(sid))

      // Redis stalls with b's marker unanswered: b gives it up, with nothing to wait for from a.
      redis.freeze()
      let joins = 0
      const join = () => {
        joins++
        b.adapter.addAll('s1', ['s1', 'r'])
      }
      const taken = b.sockets.add('s1', sid)
      let resolved = false
      const done = first.takeOver(join).finally(() => {
        resolved = true
      })
      await until(() => joins > 0 || resolved, 5000, 'the marker given up')
      // Redis answers again, and b's subscriber reads x1.
      redis.thaw()
      release()
      release = undefined
      const firstTry = await within(done, 5000, 'the takeover')

      // Given back: the client's next try claims it once the claim was taken back, and joins at
      // its marker.
      let result = firstTry
      if (firstTry.retry) {
        let answer: ClaimAnswer = 'retry'
        for (let tries = 0; answer === 'retry' && tries < 100; tries++) {
          answer = await within(b.adapter.claimSession(sid), 5000, 'a claim')
          if (answer === 'retry') await new Promise((resolve) => setTimeout(resolve, 50))
        }
        result = await within(won(answer).takeOver(join), 5000, 'the takeover at its cut')
      }
      c.adapter.broadcast(message('news', ['x2']), to(['r']))
      await until(() => taken.got.includes('x2'), 5000, 'x2 at the socket')
      b.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: true })
      expect(firstTry).toMatchObject({ retry: true, tail: [] })
      expect(joins).toBe(1)
    } finally {
      redis.thaw()
      release?.()
      await cluster.close()
      await proxy.close()
      await redis.stop()
    }
  })
})
