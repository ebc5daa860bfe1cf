// A claimer that reads its tail without the old node's seal (the old node slow to read the
// channel) gives the session what that node read too late for the tail, from the broadcasts it
// read itself before its cut (src/read-window.ts): the old node's own and its own as well as a
// third node's; and none of a node whose broadcasts the window no longer reaches back to, after
// its time or under a flood past its size: missed, as before, never twice.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { READ_WINDOW_MS, READ_WINDOW_UNITS, windowClock } from '../src/read-window.js'
import {
  argOf,
  type FakeNode,
  type FakeSocket,
  handedOffSession,
  handoffScenes,
  message,
  takeOverOn,
  to,
  won,
} from './handoff-support.js'
import { markerOnChannel, type ProxiedScene, proxiedScene } from './proxied-scene.js'
import { watcherOn } from './uncut-scene.js'

const scene = handoffScenes()

afterEach(() => {
  vi.restoreAllMocks()
})

/** `node` broadcasts each of `args` to room 'r' (as 'news'). */
function burst(node: FakeNode, args: readonly string[]): void {
  for (const arg of args) node.adapter.broadcast(message('news', [arg]), to(['r']))
}

/** `${prefix}${from}` .. `${prefix}${to}`. */
const counted = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`)

/** Until `taken` got `arg` live (at most 5 s). */
const untilGot = (taken: FakeSocket, arg: string) =>
  until(() => taken.got.includes(arg), 5000, `${arg} at the socket`)

/**
 * a hands off `sid`, b claims it; a's subscriber is held, so a reads nothing of what `before`
 * broadcasts; b reads it, publishes its marker, reads c's 'c-after' past it, and its wait for
 * the seal runs out (`beforeRead` runs first). Then a reads everything (its appends refused)
 * and c sends 'c-last'. Returns the tail and what the session got, the tail's first.
 */
async function slowOldNode(
  { cluster, aProxy, a, b, c, waits, releases }: ProxiedScene,
  sid: string,
  before: () => void,
  lastBefore: string,
  beforeRead: () => void = () => {},
) {
  await handedOffSession(a, sid)
  const claim = won(await b.adapter.claimSession(sid))
  releases.push(aProxy.holdDownstream())
  before()
  const watcher = watcherOn(b)
  await until(() => watcher.got.includes(lastBefore), 10_000, 'the burst read at b')

  // The wait for the seal begins once b's marker is queued, not once Redis ran it: c-after sent
  // then may land before the marker, the old node's to deliver, which the window may not give.
  const marked = await markerOnChannel(cluster, b, releases)
  const { taken, done } = takeOverOn(b, claim, sid)
  await until(() => waits.began === 1 && marked(), 5000, "b's marker on the channel")
  burst(c, ['c-after'])
  await until(() => watcher.got.includes('c-after'), 5000, "c's broadcast read at b past its marker")
  beforeRead()
  waits.runOut()
  const tail = await within(done, 5000, 'the takeover')

  for (const release of releases.splice(0)) release()
  await until(() => a.sockets.claims.includes(sid), 10_000, 'the marker at a')
  burst(c, ['c-last'])
  await untilGot(taken, 'c-last')
  return { tail, got: [...tail.tail.map(argOf), ...taken.got] }
}

describe.skipIf(skipRedisSuites())(
  'a tail read without its seal, and the broadcasts the claimer read',
  () => {
    it("gives the old node's own broadcasts, the claimer's own and a third node's, read before the cut, once each, in channel order", () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { a, b, c } = nodes
        const { tail, got } = await slowOldNode(
          nodes,
          'sid-own',
          () => {
            // All before b's marker: the old node's to deliver, which it reads too late.
            burst(c, ['c1'])
            burst(a, ['a1'])
            burst(b, ['b1'])
            burst(c, ['c2'])
          },
          'c2',
        )
        expect(tail.complete).toBe(false)
        // Each node's own come back in the order it sent them, but the nodes' interleaving is the
        // channel's: each node's own order, and every one once.
        expect([...got].sort()).toEqual(['a1', 'b1', 'c-after', 'c-last', 'c1', 'c2'])
        expect(got.filter((arg) => String(arg).startsWith('c'))).toEqual(['c1', 'c2', 'c-after', 'c-last'])
        expect(got.slice(-2)).toEqual(['c-after', 'c-last'])
      }))

    it("gives none of a node's whose broadcasts were read longer ago than the window keeps: missed, and incomplete, as before; nothing twice", () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { c } = nodes
        const { tail, got } = await slowOldNode(
          nodes,
          'sid-aged',
          () => burst(c, counted('c', 1, 3)),
          'c3',
          () => {
            // The tail is read past the window's time: c1 .. c3 are let go.
            const now = windowClock.now()
            vi.spyOn(windowClock, 'now').mockReturnValue(now + READ_WINDOW_MS + 1)
          },
        )
        expect(tail.complete).toBe(false)
        expect(tail.tail).toEqual([])
        expect(got).toEqual(['c-after', 'c-last'])
      }))

    it("gives none of a node whose flood passed the window's size before the cut: missed, and incomplete, as before; nothing twice", () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { c } = nodes
        // Five broadcasts of a fifth of the window each, then small ones: the first are let go.
        const big = 'x'.repeat(Math.ceil(READ_WINDOW_UNITS / 5))
        const { tail, got } = await slowOldNode(
          nodes,
          'sid-flood',
          () => {
            for (let i = 1; i <= 5; i++) c.adapter.broadcast(message('news', [`f${i}:${big}`]), to(['r']))
            burst(c, counted('c', 1, 3))
          },
          'c3',
        )
        expect(tail.complete).toBe(false)
        expect(tail.tail).toEqual([])
        expect(got).toEqual(['c-after', 'c-last'])
      }))
  },
)
