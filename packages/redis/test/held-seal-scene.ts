// A seal held at a claim marker, staged on real adapters: node a hands off socket s1's session
// while its own broadcast `given` is given up unanswered (a's link stalls from it on, then drops
// with it: Redis never runs it, yet a cannot tell), and b claims it. a reads the marker while
// s1 awaits `given`, so the seal waits (at most `MARKER_SETTLE_MS`), s1 out of its rooms; every
// probe that could prove `given` never ran is lost, so only that limit (or a's close) ends it.
// The limit is the test's to run out (`markerLimitByHand`), once its scene is set: on a loaded
// machine, 1 s could pass before the checks that the seal still waits.
import type { BroadcastReply } from '@parley/server'
import { expect, onTestFinished, vi } from 'vitest'
import { until, within } from '../../server/test/helpers.js'
import { markerSettles } from '../src/handing-off.js'
import {
  argOf,
  dropConnection,
  type FakeCluster,
  type FakeNode,
  type FakeSocket,
  HeldOnDroppedLink,
  message,
  registeredCopy,
  repliesAs,
  snapshotOf,
  to,
  won,
} from './handoff-support.js'
import { isBroadcast, isMarker, isProbe } from './published.js'

/**
 * The time limits of the seals' waits at a claim marker, from now to the end of the test, run
 * out by hand (`runOut`) rather than after `MARKER_SETTLE_MS`: only what settles the awaited
 * broadcast, the node's close, or the test ends such a wait.
 */
export function markerLimitByHand() {
  const pending: (() => void)[] = []
  const spy = vi.spyOn(markerSettles, 'start').mockImplementation((wake) => {
    pending.push(wake)
    return () => {
      const at = pending.indexOf(wake)
      if (at !== -1) pending.splice(at, 1)
    }
  })
  onTestFinished(() => spy.mockRestore())
  return {
    /** How many such waits are still running. */
    get running() {
      return pending.length
    },
    runOut: () => {
      for (const wake of pending.splice(0)) wake()
    },
  }
}

/**
 * `node`'s broadcast 'given' to room 'r', given up and never run: its link stalls from it on (what
 * follows waits behind it, unrun) and drops with it, its probes lost meanwhile; the node works on
 * its next connection after.
 */
export async function givenUpNeverRun(node: FakeNode): Promise<void> {
  new HeldOnDroppedLink(node, isBroadcast)
  node.lose = isProbe
  node.adapter.broadcast(message('news', ['given']), to(['r']))
  await until(() => node.adapter.stats.lostBroadcasts === 1, 5000, 'the broadcast given up')
  await dropConnection(node)
}

/** Whether `node`'s claim marker has run on Redis yet, watched from now on (`node.hold`). */
export function markerRunOf(node: FakeNode): () => boolean {
  let ran = false
  node.hold = (args) =>
    isMarker(args)
      ? node.redis.sendCommand(args).then((reply) => {
          ran = true
          return reply
        })
      : undefined
  return () => ran
}

/** A broadcast with acks of `node` to `rooms` (`local`: this node's sockets alone): its count and replies. */
export function ask(node: FakeNode, text: string, rooms: string[], local = false) {
  const asked: { count: number | undefined; replies: BroadcastReply[] } = { count: undefined, replies: [] }
  node.adapter.broadcastWithAck(
    message('asked', [text]),
    to(rooms, local),
    5000,
    (count) => {
      asked.count = count
    },
    (reply) => asked.replies.push(reply),
  )
  return asked
}

/** Waits for `asked`'s count and two replies (a's two sockets, in these scenes), and checks the count. */
export async function answeredByTwo(asked: ReturnType<typeof ask>, what: string): Promise<void> {
  await until(() => asked.count !== undefined && asked.replies.length === 2, 3000, what)
  expect(asked.count).toBe(2)
}

/**
 * The scene above on `cluster` (a with `requestTimeout` 300, to give `given` up soon), the seal's
 * limit run out by hand (`limit.runOut()`, see `markerLimitByHand`). `behind`
 * runs on a, its link down (nothing sent), before the claim: what it emits never runs, and waits
 * behind `given` for s1's seal. Resolves once a read the marker (c's broadcast after it reached
 * a's witness s2, in room 'r' with s1), the seal held. `before` runs on a once s1 is handed off,
 * before `given`: a session it hands off then awaits `given` too.
 */
export async function heldSeal(
  cluster: FakeCluster,
  behind: (a: FakeNode) => void = () => {},
  before: (a: FakeNode) => Promise<void> = async () => {},
) {
  const a = await cluster.node(undefined, { requestTimeout: 300 })
  const b = await cluster.node()
  const c = await cluster.node()
  await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live nodes')
  const sid = 'sid-held-seal'
  const socket = a.sockets.add('s1', sid)
  a.adapter.addAll('s1', ['s1', 'r'])
  await a.adapter.sessionOpened(sid)
  /** What s1 gets, in order, into its tail (appended there too). */
  const tail: unknown[] = []
  socket.handedOff = (text) => {
    tail.push(argOf(text))
    a.adapter.appendHandOff(sid, text)
  }
  if (!(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000))) throw new Error('not handed off')
  await before(a)

  // a's link stalls from `given` on; the probe sent as it is given up waits behind it, and goes
  // with it when the link drops. Those sent later, on the next connection, are lost.
  new HeldOnDroppedLink(a, isBroadcast)
  a.lose = (args) => a.hold === undefined && isProbe(args)
  a.adapter.broadcast(message('news', ['given']), to(['r']))
  await until(() => a.adapter.stats.lostBroadcasts === 1, 3000, 'the broadcast given up')
  await dropConnection(a)
  a.down = true
  behind(a)
  a.down = false

  const witness = a.sockets.add('s2')
  a.adapter.addAll('s2', ['s2', 'r'])
  const limit = markerLimitByHand()
  const markerRan = markerRunOf(b)
  const claim = won(await within(b.adapter.claimSession(sid), 5000, 'the claim'))
  const claimed: FakeSocket = b.sockets.add('s1', sid)
  const taking = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
  await until(markerRan, 5000, 'the marker run')
  c.adapter.broadcast(message('news', ['other']), to(['r']))
  await until(() => witness.got.includes('other'), 5000, "c's broadcast read on a past the marker")
  if (tail.length > 0 || limit.running !== 1)
    throw new Error(`the seal did not wait: ${JSON.stringify(tail)}`)
  return { a, b, c, sid, socket, tail, taking, claimed, witness, limit }
}

/** What a test does to the sockets of `claimedPastGiven` as each comes, before it is asked anything. */
export interface ClaimedPastGivenSetUp {
  /** s1 on a, its session open, before the handoff (its `handedOff` is the test's to set). */
  socket(socket: FakeSocket): void
  /** a's witness s2, in room 'r' beside s1, before the claim. */
  witness?(witness: FakeSocket): void
  /** b's copy of s1, before its takeover. */
  claimed?(claimed: FakeSocket): void
}

/**
 * The scene above on nodes `a` and `b` of the test's own cluster (`heldSeal` starts its own, and
 * waits for c's broadcast): socket s1 of session `sid` on a in room 'r', handed off, a's `given`
 * given up and never run (`givenUpNeverRun`), the seal's limit run out by hand, a's witness s2 in
 * 'r', b's claim won and its takeover begun (s1 joined to 'r'). The marker run is not awaited:
 * `markerRan` tells, for the test to wait on with what else it waits for.
 */
export async function claimedPastGiven(a: FakeNode, b: FakeNode, sid: string, setUp: ClaimedPastGivenSetUp) {
  const socket = a.sockets.add('s1', sid)
  a.adapter.addAll('s1', ['s1', 'r'])
  await a.adapter.sessionOpened(sid)
  setUp.socket(socket)
  expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
  // a's own broadcast, given up and never run, holds the seal at the marker.
  await givenUpNeverRun(a)

  // The seal's wait ends by what proves the broadcast never ran: its limit is run out by
  // hand, never here (on a loaded machine, 1 s could pass before the write is given up).
  markerLimitByHand()
  const markerRan = markerRunOf(b)
  // A socket of a's own in the room, not handed over: it tells what a read, and when.
  const witness = a.sockets.add('s2')
  a.adapter.addAll('s2', ['s2', 'r'])
  setUp.witness?.(witness)
  const claim = won(await within(b.adapter.claimSession(sid), 5000, 'the claim'))
  const claimed = b.sockets.add('s1', sid)
  setUp.claimed?.(claimed)
  const taking = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
  return { socket, witness, claim, claimed, taking, markerRan }
}

/**
 * `claimedPastGiven` for the counts of a session whose claim may be undone: s1 replies `a:s1` and
 * its witness `a:s2`, each with `repliesAs`, and b's copy is registered as the server's (`copy`:
 * its questions fail when the server drops it).
 */
export async function claimedCopyPastGiven(a: FakeNode, b: FakeNode, sid: string) {
  const copy = registeredCopy()
  const scene = await claimedPastGiven(a, b, sid, {
    socket(socket) {
      // Handed off, what it gets goes to its tail; kept, to the session, which replies.
      socket.handedOff = () => {}
      repliesAs(socket, 'a:s1')
    },
    witness: (witness) => repliesAs(witness, 'a:s2'),
    claimed: copy.register,
  })
  return { ...scene, copy }
}

/**
 * Each question of `asked` (with who sent it), once counted and all its replies in: counted 2,
 * with the replies of a's s1 and s2 (see `claimedPastGiven`, both replying with `repliesAs`):
 * the session kept on a counted once, with the reply it made there, and a's witness.
 */
export async function countedOnceOnA(asked: readonly (readonly [string, ReturnType<typeof ask>])[]) {
  for (const [who, question] of asked) {
    await until(
      () => question.count !== undefined && question.replies.length >= question.count,
      5000,
      `the count and replies of ${who}'s question`,
    )
    expect({ who, count: question.count }).toEqual({ who, count: 2 })
    const values = question.replies.map((reply) => (reply.ok ? reply.value : reply.error.code))
    expect({ who, values: values.sort() }).toEqual({ who, values: ['a:s1', 'a:s2'] })
  }
}
