// A claim marker given up unanswered while the old node's seal is awaited, and then the old node
// says that it left: nothing more comes from it, and the marker, which Redis may run late, is
// the only cut left to wait for. Should the wait run out before it came back, a socket joined
// then would take live what the claimer's subscriber reads late and the old node's sealed tail
// holds too. The claimer gives the claim back instead; the next claim takes the session at its
// marker, and the session gets each broadcast once, in order.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import {
  argOf,
  claimAgain,
  handoffNodes,
  handoffScenes,
  holdAll,
  message,
  reachesLive,
  takeOverOn,
  to,
  x1HeldFromClaimer,
} from './handoff-support.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover whose old node left after its marker was given up', () => {
  it('gives the claim back when the wait runs out, and the next claim gives the session a broadcast from before the seal once', async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { proxy, cluster } = await scene()
    // The claimer's waits run out when the test says so (once b heard the goodbye), not by time.
    const wakes: (() => void)[] = []
    const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
      wakes.push(wake)
      return () => {}
    })
    let releaseSubscriber: (() => void) | undefined
    let releaseCommands: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, {
        requestTimeout: 300,
        subscriberVia: proxy,
      })
      let heardLeft = false
      b.adapter.onNodesChange((change) => {
        if (change.left.includes(a.adapter.node)) heardLeft = true
      })

      // a hands session `sid` off to b's claim; b's subscriber stops reading: c's x1 reaches
      // a's socket (into the tail), not b yet.
      const sid = 'sid-given-up-left'
      const held = await x1HeldFromClaimer([a, b, c], proxy, sid)
      releaseSubscriber = held.release
      const { claim: first, tail } = held
      await until(() => tail.length === 1, 5000, 'x1 at the handed-off socket')

      // Redis takes none of b's commands: b's marker is given up, while a's seal is awaited.
      releaseCommands = holdAll(b).release
      let joins = 0
      const join = () => {
        joins++
        b.adapter.addAll('s1', ['s1', 'r'])
      }
      const { taken, done: taking } = takeOverOn(b, first, sid, join)
      let resolved = false
      const done = taking.finally(() => {
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
        result = await within((await claimAgain(b, sid)).takeOver(join), 5000, 'the takeover at its cut')
      }
      await reachesLive(c, 'x2', taken)
      await reachesLive(b, 'x3', taken)

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: true })
      expect(firstTry).toMatchObject({ retry: true, tail: [] })
      expect(joins).toBe(1)
    } finally {
      releaseCommands?.()
      releaseSubscriber?.()
      spy.mockRestore()
    }
  }, 40_000)
})
