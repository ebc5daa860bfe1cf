// A claimer whose subscriber is slow joins the socket before its marker came back, and reads a
// tail the old node has not sealed yet (its subscriber is slow as well). The broadcasts that the
// old node's socket took before the handoff are in the snapshot: the claimer, reading them after
// the join, must not deliver them again. Its places at the last append do not say so when the
// old node emitted one of its own just before the handoff and had not read it back by then, nor
// when it appended nothing at all: the handoff's write carries them, taken with the snapshot.
// Nor must the old node's place for itself pass one of its own still on its way to the socket,
// which no snapshot or tail holds: the claimer would drop it.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { releaseAll } from '../../../test/support/release.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  type FakeCluster,
  type FakeNode,
  type FakeSocket,
  handedOffSession,
  handoffScenes,
  message,
  proxiedTrio,
  reachesLive,
  sealWaitsByHand,
  snapshotOf,
  takeOverOn,
  to,
  untilTailSealed,
  won,
} from './handoff-support.js'
import { proxiedScene } from './proxied-scene.js'

const scene = handoffScenes()

/**
 * a hands off, b claims, c is a third node: a's and b's subscribers reach Redis through proxies
 * that can hold what Redis sends them. The session's socket on a is in room 'r'.
 */
async function nodes(): Promise<{
  cluster: FakeCluster
  a: FakeNode
  b: FakeNode
  c: FakeNode
  aProxy: TcpProxy
  bProxy: TcpProxy
  socket: FakeSocket
}> {
  const { redis, proxy, cluster } = await scene()
  const aProxy = await startTcpProxy(redis.port)
  const { a, b, c } = await proxiedTrio(cluster, aProxy, proxy)
  const socket = a.sockets.add('s1', 'sid-own')
  a.adapter.addAll('s1', ['s1', 'r'])
  await a.adapter.sessionOpened('sid-own')
  return { cluster, a, b, c, aProxy, bProxy: proxy, socket }
}

/** From now on, what reaches `socket` goes to its tail (the server's tail sink, after a freeze). */
function handedOff(node: FakeNode, socket: FakeSocket, sid: string): void {
  socket.handedOff = (text) => node.adapter.appendHandOff(sid, text)
}

describe.skipIf(skipRedisSuites())('a tail read before the old node sealed it', () => {
  it("gives the session the old node's own broadcast, emitted right before the handoff, once: its last append's places were taken before it came back", async () => {
    const { cluster, a, b, c, aProxy, bProxy, socket } = await nodes()
    const waits = sealWaitsByHand()
    const releases: (() => void)[] = []
    try {
      // a reads its own a1 back (before c's c0, which its socket gets): its place for itself is 1.
      await reachesLive(a, 'a1', socket)
      await reachesLive(c, 'c0', socket)
      // Neither a nor b reads the channel from now on.
      releases.push(bProxy.holdDownstream(), aProxy.holdDownstream())

      // a2 reaches the socket when emitted (the snapshot holds it); then, in the same turn, the
      // handoff, and a local broadcast into the tail, appended with a's places: a2 is above them.
      a.adapter.broadcast(message('news', ['a2']), to(['r']))
      handedOff(a, socket, 'sid-own')
      const stored = a.adapter.handOff(snapshotOf('sid-own', 's1', ['r']), 60_000)
      a.adapter.broadcast(message('news', ['l1']), to(['r'], true))
      expect(await within(stored, 5000, 'the handoff')).toBe(true)
      const claim = won(await b.adapter.claimSession('sid-own'))

      // The marker is published; neither a nor b reads it. The wait runs out: b joins and reads.
      const { taken, done } = takeOverOn(b, claim, 'sid-own')
      await until(() => waits.began === 1, 5000, 'the marker published')
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['l1'])
      expect(tail.complete).toBe(false)

      // b now reads a2 (the snapshot holds it), its marker, then c1.
      for (const release of releases.splice(0)) release()
      await reachesLive(c, 'c1', taken)
      expect([...socket.got, ...tail.tail.map(argOf), ...taken.got]).toEqual(['a1', 'c0', 'a2', 'l1', 'c1'])
    } finally {
      for (const release of releases) release()
      waits.stop()
      // a's subscriber goes through aProxy: the nodes close first, then the proxy.
      await releaseAll([() => cluster.close(), () => aProxy.close()])
    }
  })

  it('gives the session what the old node delivered before the handoff once when it appended nothing after it', async () => {
    const { cluster, a, b, c, aProxy, bProxy, socket } = await nodes()
    const waits = sealWaitsByHand()
    const releases: (() => void)[] = []
    try {
      // b reads nothing from now on; a reads c's c1 and delivers it (the snapshot holds it).
      releases.push(bProxy.holdDownstream())
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      await until(() => socket.got.includes('c1'), 5000, 'c1 at the socket')
      // Then a reads nothing either. a1 reaches the socket when emitted, right before the
      // handoff; nothing reaches the session after it: the tail stays empty.
      releases.push(aProxy.holdDownstream())
      a.adapter.broadcast(message('news', ['a1']), to(['r']))
      handedOff(a, socket, 'sid-own')
      expect(await a.adapter.handOff(snapshotOf('sid-own', 's1', ['r']), 60_000)).toBe(true)
      const claim = won(await b.adapter.claimSession('sid-own'))

      const { taken, done } = takeOverOn(b, claim, 'sid-own')
      await until(() => waits.began === 1, 5000, 'the marker published')
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail).toEqual([])
      expect(tail.complete).toBe(false)

      // b now reads c1 and a1 (the snapshot holds both), its marker, then c2.
      for (const release of releases.splice(0)) release()
      await reachesLive(c, 'c2', taken)
      expect([...socket.got, ...taken.got]).toEqual(['c1', 'a1', 'c2'])
    } finally {
      for (const release of releases) release()
      waits.stop()
      await releaseAll([() => cluster.close(), () => aProxy.close()])
    }
  })

  it("still delivers the old node's own broadcasts that its socket was left out of and had not taken back by the handoff", () =>
    // c hands the session off to a, whose socket, joined before a's marker came back, stays
    // positioned past a0 (before that marker); a1, emitted then, is on its way to it when a hands
    // the session on to b. a's place for itself must stay below a1: counted from a's own count at
    // the handoff rather than from where its socket is positioned (`Cut.position`), it would hold
    // a1, and b would drop it though neither a snapshot nor a tail has it.
    proxiedScene(scene, {}, async ({ cluster, aProxy, proxy: bProxy, a, b, c, waits, releases }) => {
      const sid = 'sid-owed'
      await handedOffSession(c, sid)
      const claimA = won(await a.adapter.claimSession(sid))

      // Neither a nor b reads the channel from now on. a0 goes before a's marker: c's tail.
      releases.push(aProxy.holdDownstream(), bProxy.holdDownstream())
      a.adapter.broadcast(message('news', ['a0']), to(['r']))
      const { taken: onA, done: doneA } = takeOverOn(a, claimA, sid)
      await until(() => waits.began === 1, 5000, "a's marker published")
      await untilTailSealed(cluster, c)
      waits.runOut()
      const tailA = await within(doneA, 5000, "a's takeover")
      expect(tailA.tail.map(argOf)).toEqual(['a0'])

      // a1 is after a's marker: the socket takes it when it comes back, not now.
      a.adapter.broadcast(message('news', ['a1']), to(['r']))
      expect(onA.got).toEqual([])
      handedOff(a, onA, sid)
      expect(await within(a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000), 5000, 'the handoff')).toBe(
        true,
      )
      const claimB = won(await b.adapter.claimSession(sid))
      const { taken: onB, done: doneB } = takeOverOn(b, claimB, sid)
      await until(() => waits.began === 1, 5000, "b's marker published")
      waits.runOut()
      const tailB = await within(doneB, 5000, "b's takeover")
      expect(tailB.tail).toEqual([])

      // b now reads a0 (c's tail has it), a's marker, a1 (no tail has it), its marker, then c1.
      for (const release of releases.splice(0)) release()
      await reachesLive(c, 'c1', onB)
      expect([...tailA.tail.map(argOf), ...onA.got, ...onB.got]).toEqual(['a0', 'a1', 'c1'])
    }))

  it("still delivers the old node's own broadcast that its socket was left out of for a tail it had not read, and had not taken back by the handoff", () =>
    // c hands the session off to b, which joins the socket before its marker came back, with
    // none of its own broadcasts on their way: the cut does not position it. b1, emitted right
    // after the join, before b read the tail, is left out all the same, for that tail
    // (`UncutSockets.leftOut`), and is on its way to the socket when b hands the session on to a.
    // b's place for itself must stay below b1: without `firstOwed` in `HandingOff.handOff` it
    // would hold b1, and a would drop it though neither a snapshot nor a tail has it.
    proxiedScene(scene, {}, async ({ cluster, aProxy, proxy: bProxy, a, b, c, waits, releases }) => {
      const sid = 'sid-left-out'
      await handedOffSession(c, sid)
      const claimB = won(await b.adapter.claimSession(sid))

      // Neither a nor b reads the channel from now on.
      releases.push(aProxy.holdDownstream(), bProxy.holdDownstream())
      const { taken: onB, done: doneB } = takeOverOn(b, claimB, sid, () => {
        b.adapter.addAll('s1', ['s1', 'r'])
        b.adapter.broadcast(message('news', ['b1']), to(['r']))
      })
      await until(() => waits.began === 1, 5000, "b's marker published")
      await untilTailSealed(cluster, c)
      waits.runOut()
      const tailB = await within(doneB, 5000, "b's takeover")
      expect(tailB.tail).toEqual([])
      expect(onB.got).toEqual([])

      handedOff(b, onB, sid)
      expect(await within(b.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000), 5000, 'the handoff')).toBe(
        true,
      )
      const claimA = won(await a.adapter.claimSession(sid))
      const { taken: onA, done: doneA } = takeOverOn(a, claimA, sid)
      await until(() => waits.began === 1, 5000, "a's marker published")
      waits.runOut()
      const tailA = await within(doneA, 5000, "a's takeover")
      expect(tailA.tail).toEqual([])

      // a now reads b's marker, b1 (no tail has it), its own marker, then c1.
      for (const release of releases.splice(0)) release()
      await reachesLive(c, 'c1', onA)
      expect([...onB.got, ...onA.got]).toEqual(['b1', 'c1'])
    }))
})
