// A claim marker given up unanswered while the old node's seal is awaited, and then the old node
// says that it left: nothing more comes from it, and the marker, which Redis may run late, is
// the only cut left to wait for. Should the wait run out before it came back, a socket joined
// then would take live what the claimer's subscriber reads late and the old node's sealed tail
// holds too. The claimer gives the claim back instead; the next claim takes the session at its
// marker, and the session gets each broadcast once, in order.
import type { ClaimAnswer } from '@parley/server'
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import { argOf, FakeCluster, holdAll, message, snapshotOf, to, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a takeover whose old node left after its marker was given up', () => {
  it('gives the claim back when the wait runs out, and the next claim gives the session a broadcast from before the seal once', async () => {
    const redis = await startRedis()
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const proxy = await startTcpProxy(redis.port)
    const cluster = new FakeCluster(redis.url)
    // The claimer's waits run out when the test says so (once b heard the goodbye), not by time.
    const wakes: (() => void)[] = []
    const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
      wakes.push(wake)
      return () => {}
    })
    let releaseSubscriber: (() => void) | undefined
    let releaseCommands: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, {
        requestTimeout: 300,
        subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}`,
      })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')
      let heardLeft = false
      b.adapter.onNodesChange((change) => {
        if (change.left.includes(a.adapter.node)) heardLeft = true
      })

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-given-up-left'
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      const tail: string[] = []
      handed.handedOff = (text) => {
        tail.push(text)
        a.adapter.appendHandOff(sid, text)
      }
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
      const first = won(await b.adapter.claimSession(sid))

      // b's subscriber stops reading; c's x1 reaches a's socket (into the tail), not b yet.
      releaseSubscriber = proxy.holdDownstream()
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      await until(() => tail.length === 1, 5000, 'x1 at the handed-off socket')

      // Redis takes none of b's commands: b's marker is given up, while a's seal is awaited.
      releaseCommands = holdAll(b).release
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
      await until(
        () => b.commands.some((args) => (args[2] ?? '').includes('"k":"claim"')),
        5000,
        'the marker sent',
      )
      // A broadcast of b's to no socket, sent behind the marker: given up, so is the marker.
      b.adapter.broadcast(message('news', ['probe']), to(['nobody']))
      await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'b gives up on Redis')

      // a's drain ends without having read the marker: it seals the tail behind x1, and leaves.
      await a.adapter.sealHandOff(sid, [])
      await cluster.stop(a)
      // Redis runs b's commands again, the marker among them, too late for a. b's heartbeat
      // reads a's goodbye; its subscriber, still held, has read neither x1 nor the marker.
      releaseCommands()
      releaseCommands = undefined
      await until(() => heardLeft, 5000, 'b hears that a left')
      expect(joins).toBe(0)
      expect(wakes).toHaveLength(1)
      wakes[0]?.()
      await until(() => joins > 0 || resolved, 5000, 'the wait over')
      // b's subscriber reads x1, then the marker.
      releaseSubscriber()
      releaseSubscriber = undefined
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
      releaseCommands?.()
      releaseSubscriber?.()
      spy.mockRestore()
      await cluster.close()
      await proxy.close()
      await redis.stop()
    }
  })
})
