// An own broadcast whose PUBLISH was given up, run by Redis later: the sockets positioned when it
// was given up took it then, and not again when it comes back, but for those being handed over,
// which wait for it (see awaited.ts); one positioned after (a session taken over since, in no
// room here when it was emitted) never had it, and takes it when it comes back. A takeover while Redis is stalled sends no marker: it gives its claim
// back, and the session, claimed again once Redis answers, is taken over at its cut.
import type { ClaimAnswer } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { Cut } from '../src/cut.js'
import {
  FakeCluster,
  type FakeNode,
  type FakeSocket,
  message,
  snapshotOf,
  to,
  won,
} from './handoff-support.js'

const TTL = 60_000

/** A session `sid` with socket `id` on `node`, in `rooms`, handed off: what it gets goes to `tail`. */
async function handedOff(node: FakeNode, sid: string, id: string, tail: string[]): Promise<FakeSocket> {
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, 'r'])
  await node.adapter.sessionOpened(sid)
  socket.handedOff = (text) => tail.push(text)
  expect(await node.adapter.handOff(snapshotOf(sid, id, ['r']), TTL)).toBe(true)
  return socket
}

describe('an own broadcast given up, at the cut', () => {
  it('reaches the sockets positioned then at once, and one positioned since when it comes back', () => {
    const cut = new Cut()
    cut.position('then')
    const q = cut.sent()
    cut.givenUp(q)
    // Taken over since (no marker to go by): it was in no room when the broadcast was emitted.
    cut.positionUntilBack('since')
    expect(cut.has('since')).toBe(true)
    const takes = cut.atReturn(q)
    expect(takes('then')).toBe(false)
    expect(takes('since')).toBe(true)
    // Handed off again now, its tail does not say it holds that one (see ReadPlaces.skipped).
    expect(cut.owesGivenUp('then')).toBe(false)
    expect(cut.owesGivenUp('since')).toBe(true)
    cut.back(q)
    // Back: nothing more is on its way to it.
    expect(cut.has('since')).toBe(false)
  })
})

describe.skipIf(skipRedisSuites())('an own broadcast given up and run late', () => {
  it('reaches the socket handed off then once it runs, and a takeover meanwhile gives its claim back', async () => {
    const redis = await startRedis()
    const cluster = new FakeCluster(redis.url, { requestTimeout: 300, heartbeatInterval: 2000 })
    try {
      const [a, b] = await cluster.start(2)
      // On b, a session being handed off: positioned when b's broadcast is given up.
      const handedTail: string[] = []
      await handedOff(b!, 'sid-x', 'x', handedTail)
      // On a, a session whose drain ended unclaimed (sealed): b claims it.
      await handedOff(a!, 'sid-y', 'y', [])
      await a!.adapter.sealHandOff('sid-y', [])
      const claim = won(await b!.adapter.claimSession('sid-y'))

      redis.freeze()
      b!.adapter.broadcast(message('news', ['late']), to(['r']))
      await until(() => b!.adapter.stats.lostBroadcasts === 1, 5000, 'the broadcast given up')
      // The socket being handed over waits for it: Redis may still run it, after a claim marker.
      expect(handedTail).toHaveLength(0)
      // Redis, stalled, takes no marker: no cut to join at. The claim is given back.
      let joins = 0
      const givenBack = await within(
        claim.takeOver(() => {
          joins++
        }),
        5000,
        'the takeover',
      )
      expect(givenBack).toMatchObject({ retry: true })
      expect(joins).toBe(0)

      redis.thaw()
      // The client's next try claims the session once the claim was taken back, with its cut.
      let answer: ClaimAnswer = 'retry'
      for (let tries = 0; answer === 'retry' && tries < 100; tries++) {
        answer = await within(b!.adapter.claimSession('sid-y'), 5000, 'a claim')
        if (answer === 'retry') await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const taken = b!.sockets.add('y', 'sid-y')
      await within(
        won(answer).takeOver(() => b!.adapter.addAll('y', ['y', 'r'])),
        5000,
        'the takeover at its cut',
      )
      b!.adapter.broadcast(message('news', ['next']), to(['r']))
      await until(() => handedTail.length === 2 && taken.got.length > 0, 5000, 'the next broadcast')
      expect(taken.got).toEqual(['next'])
      expect(handedTail.map((text) => JSON.parse(text)[3][0])).toEqual(['late', 'next'])
    } finally {
      redis.thaw()
      await cluster.close()
      await redis.stop()
    }
  }, 30_000)
})
