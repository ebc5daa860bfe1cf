// A claimer that stops waiting for its claim marker to come back (the wait for the seal ran out
// while its subscriber was slow to read) joins the socket before the cut point has reached it.
// Its own broadcasts sent before the marker are the old node's to deliver (into the tail), and
// they come back to the claimer after that join: the session must not get them a second time.
// Nor another node's that the old node put in the tail: the old node writes with the tail the
// count of each node's last broadcast it read, and the claimer goes by it.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  HeldInOrder,
  handedOffSession,
  handoffScenes,
  message,
  reachesLive,
  sealWaitsByHand,
  takeOverOn,
  to,
  untilTailHolds,
  untilTailSealed,
  won,
} from './handoff-support.js'
import { markerOnChannel, proxiedScene } from './proxied-scene.js'
import { uncutScene } from './uncut-scene.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover that joins before its marker is back', () => {
  it("gives the session the claimer's own broadcasts once: those before the marker in the tail, later ones live", async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { redis, proxy, cluster } = await scene()
    const waits = sealWaitsByHand()
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, { subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}` })
      await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-early'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      // b's subscriber stops reading: b's own broadcasts reach a (into the tail), not b.
      release = proxy.holdDownstream()
      b.adapter.broadcast(message('news', ['b1']), to(['r']))
      b.adapter.broadcast(message('news', ['b2']), to(['r']))
      await untilTailHolds(cluster, a, 2, "b's broadcasts in a's tail")

      // The marker reaches a, which seals the tail behind them; b hears neither it nor the seal.
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => a.sockets.claims.includes(sid) && waits.began === 1, 5000, 'the marker at a')
      await untilTailSealed(cluster, a)

      // The wait for the seal runs out: b joins the socket and reads the tail.
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['b1', 'b2'])
      expect(tail.complete).toBe(true)

      // b3 is emitted after the join: b's, once its marker is back.
      b.adapter.broadcast(message('news', ['b3']), to(['r']))
      release()
      release = undefined
      await until(() => taken.got.includes('b3'), 5000, 'b3 at the socket')
      await until(() => b.adapter.handingOver === 0, 5000, 'the socket released')
      b.adapter.broadcast(message('news', ['b4']), to(['r']))

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...tail.tail.map(argOf), ...taken.got]).toEqual(['b1', 'b2', 'b3', 'b4'])
    } finally {
      release?.()
      waits.stop()
    }
  }, 30_000)

  it("gives the session a third node's broadcasts that the old node put in a sealed tail once", () =>
    uncutScene(scene, { sid: 'sid-third' }, async ({ cluster, a, c, waits, release, takeOver }) => {
      // b's subscriber reads nothing: c's broadcasts reach a (into the tail), and wait for b.
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      c.adapter.broadcast(message('news', ['c2']), to(['r']))
      await untilTailHolds(cluster, a, 2, "c's broadcasts in a's tail")

      // The marker reaches a, which seals the tail behind them; b hears neither it nor the seal.
      const { taken, done } = await takeOver()

      // The wait runs out: b joins the socket before it read c1, c2 and its marker.
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['c1', 'c2'])
      expect(tail.complete).toBe(true)

      // c3, after the marker, is b's to deliver; c1 and c2, read by b after its join, are not.
      c.adapter.broadcast(message('news', ['c3']), to(['r']))
      release()
      await until(() => taken.got.includes('c3'), 5000, 'c3 at the socket')
      c.adapter.broadcast(message('news', ['c4']), to(['r']))
      await until(() => taken.got.includes('c4'), 5000, 'c4 at the socket')
      expect([...tail.tail.map(argOf), ...taken.got]).toEqual(['c1', 'c2', 'c3', 'c4'])
    }))

  it.each([
    {
      what: 'holds no places (an old node of an earlier version): as before, nothing lost',
      places: undefined,
    },
    { what: 'holds places that cannot be read (logged), none thrown', places: '{"x":[1,[3,2]]}' },
    { what: 'holds places that are not JSON (logged), none thrown', places: '{"x":' },
  ])('filters nothing when the tail $what', ({ places }) =>
    uncutScene(scene, { sid: 'sid-no-places' }, async ({ cluster, a, b, c, waits, release, takeOver }) => {
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      await untilTailHolds(cluster, a, 1, "c's broadcast in a's tail")
      const { taken, done } = await takeOver()

      // A node of an earlier version writes no places with its tail; a corrupt value is not read.
      const keys = (await a.redis.sendCommand(['KEYS', `${cluster.prefix}:handoff:*`])) as string[]
      const hash = keys.find((key) => !key.endsWith(':tail')) ?? ''
      const change = places === undefined ? ['HDEL', hash, 'places'] : ['HSET', hash, 'places', places]
      expect(Number(await a.redis.sendCommand(change))).toBe(places === undefined ? 1 : 0)

      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['c1'])
      c.adapter.broadcast(message('news', ['c2']), to(['r']))
      release()
      await until(() => taken.got.includes('c2'), 5000, 'c2 at the socket')
      // c1 reaches the socket as well: without places, b cannot tell it is in the tail.
      expect(taken.got).toEqual(['c1', 'c2'])
      const unreadable = b.warnings.filter((w) => w.includes("the places of a claimed session's tail"))
      expect(unreadable).toHaveLength(places === undefined ? 0 : 1)
      expect(b.warnings.filter((w) => w.includes('was malformed'))).toEqual([])
    }),
  )

  it("gives the session the old node's own broadcast once when its PUBLISH, given up, runs late, and an earlier one still on its way too", () =>
    // a gives up a PUBLISH Redis does not answer within 300 ms.
    proxiedScene(scene, { requestTimeout: 300 }, async ({ aProxy, proxy, a, b, c, waits, releases }) => {
      const sid = 'sid-given-up'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      // Neither a nor b reads the channel from now on. a0 goes through: on its way back to a.
      releases.push(proxy.holdDownstream(), aProxy.holdDownstream())
      a.adapter.broadcast(message('news', ['a0']), to(['r']))
      await until(() => a.commands.some((args) => (args[2] ?? '').includes('a0')), 5000, 'a0 sent')
      // a1's PUBLISH is held back unanswered: a gives it up, and the session being handed over
      // waits for it (Redis may still run it, after the marker too).
      // Every command a sends after it waits behind it, as on one connection: the probe sent when
      // a1 is given up runs after a1, never ahead of it. (That probe can go out: the give-up's
      // timer may run when the clock the bound on unanswered commands reads says a millisecond
      // less than requestTimeout passed.)
      const held = new HeldInOrder(
        a.redis,
        (args) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('a1'),
        () => true,
      )
      a.hold = held.hold
      a.adapter.broadcast(message('news', ['a1']), to(['r']))
      await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'a1 given up')
      // Redis runs it late: on the channel, for b to read after its join.
      await held.runAll()

      // The marker is published; neither a nor b reads it. The wait runs out: b joins and reads.
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => waits.began === 1, 5000, 'the marker published')
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual([])

      // b now reads a0 and a1 (a read them only after the tail was read: not in it), its marker,
      // then c1.
      for (const release of releases.splice(0)) release()
      await reachesLive(c, 'c1', taken)
      expect([...tail.tail.map(argOf), ...taken.got]).toEqual(['a0', 'a1', 'c1'])
    }))

  it("gives the session a third node's broadcasts once when the tail is read before the old node sealed it", () =>
    // Both a's and b's subscribers reach Redis through proxies that can hold what Redis sends.
    proxiedScene(scene, {}, async ({ cluster, aProxy, proxy, a, b, c, waits, releases }) => {
      const sid = 'sid-unsealed'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      // b reads nothing more: c1 and c2 reach a's tail. Then a reads nothing more either.
      releases.push(proxy.holdDownstream())
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      c.adapter.broadcast(message('news', ['c2']), to(['r']))
      await untilTailHolds(cluster, a, 2, "c's broadcasts in a's tail")
      releases.push(aProxy.holdDownstream())

      // The marker is published; neither a nor b reads it. c3 comes after it on the channel: sent
      // once the marker ran, not once it is queued, when it may land before it.
      const marked = await markerOnChannel(cluster, b, releases)
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => waits.began === 1 && marked(), 5000, "b's marker on the channel")
      c.adapter.broadcast(message('news', ['c3']), to(['r']))

      // The wait runs out: b joins the socket and reads the tail a has not sealed.
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['c1', 'c2'])
      expect(tail.complete).toBe(false)

      // b now reads c1, c2 (in the tail), its marker, then c3 (not in it).
      for (const release of releases.splice(0)) release()
      await until(() => taken.got.includes('c3'), 5000, 'c3 at the socket')
      c.adapter.broadcast(message('news', ['c4']), to(['r']))
      await until(() => taken.got.includes('c4'), 5000, 'c4 at the socket')
      expect([...tail.tail.map(argOf), ...taken.got]).toEqual(['c1', 'c2', 'c3', 'c4'])
    }))
})
