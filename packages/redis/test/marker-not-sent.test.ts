// A claim marker never sent (Redis took no command from the claimer for its whole wait) makes no
// cut: the old node, never told of the claim, goes on putting what reaches the session into the
// tail, and a socket joined then would take some of it live as well. The claimer gives the claim
// back instead, and the client tries again: that try claims the session once Redis answers, with
// its marker, and the session gets each broadcast once, in order.
import type { ClaimAnswer } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, eventually, FakeCluster, message, snapshotOf, to, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a takeover whose claim marker could not be sent', () => {
  it('gives the claim back, and the next claim takes the session with its cut: each broadcast once', async () => {
    const redis = await startRedis()
    const cluster = new FakeCluster(redis.url)
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, { requestTimeout: 300 })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-marker-not-sent'
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      handed.handedOff = (text) => a.adapter.appendHandOff(sid, text)
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
      const first = won(await b.adapter.claimSession(sid))

      // Redis stalls with a command of b's unanswered: b takes no command for requestTimeout,
      // and its marker is never sent.
      redis.freeze()
      b.adapter.broadcast(message('news', ['probe']), to(['nobody']))
      await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'b gives up on Redis')
      let joined = false
      const givenBack = await within(
        first.takeOver(() => {
          joined = true
        }),
        5000,
        'the takeover without a marker',
      )
      expect(givenBack).toMatchObject({ retry: true, tail: [] })
      expect(joined).toBe(false)
      expect(b.commands.some((args) => (args[2] ?? '').includes('"k":"claim"'))).toBe(false)
      redis.thaw()

      // a never heard of the claim: c's x1 still reaches the session's tail there.
      expect(a.sockets.claims).toEqual([])
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      const tailKey = `${cluster.prefix}:handoff:`
      await eventually(
        async () => {
          const keys = (await a.redis.sendCommand(['KEYS', `${tailKey}*:tail`])) as string[]
          return keys.length === 1 && Number(await a.redis.sendCommand(['LLEN', keys[0] ?? ''])) === 1
        },
        5000,
        'x1 in the tail',
      )

      // The client's next try: the claim was taken back first, so it wins again, and this
      // takeover has its cut.
      let answer: ClaimAnswer = 'retry'
      for (let tries = 0; answer === 'retry' && tries < 100; tries++) {
        answer = await within(b.adapter.claimSession(sid), 5000, 'a claim')
        if (answer === 'retry') await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const second = won(answer)
      const taken = b.sockets.add('s1', sid)
      const result = await within(
        second.takeOver(() => b.adapter.addAll('s1', ['s1', 'r'])),
        5000,
        'the second takeover',
      )
      expect(a.sockets.claims).toEqual([sid])
      c.adapter.broadcast(message('news', ['x2']), to(['r']))
      await until(() => taken.got.includes('x2'), 5000, 'x2 at the socket')
      b.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: false })
    } finally {
      redis.thaw()
      await cluster.close()
      await redis.stop()
    }
  })
})
