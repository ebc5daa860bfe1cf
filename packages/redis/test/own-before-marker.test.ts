// The claimer's own broadcasts PUBLISHed before its claim marker are the old node's to deliver
// (see src/cut.ts). A claimer whose subscriber is slow joins the socket before its marker came
// back and reads them back only after that join; should its old node be slow as well, the tail
// it reads is not sealed and may lack them. The old node's places tell which the tail holds:
// those it does not hold reach the session from the claimer, once each, in channel order; those
// it holds are not delivered again. A later own broadcast given up, which the socket would take
// at once, waits for them: the session takes them in the order the claimer emitted them.
import type { SessionClaim } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  dropConnection,
  type FakeNode,
  HeldInOrder,
  HeldOnDroppedLink,
  handedOffSession,
  handoffScenes,
  message,
  repliesAs,
  takeOverOn,
  to,
  untilTailHolds,
  won,
} from './handoff-support.js'
import { type ProxiedScene, proxiedScene } from './proxied-scene.js'
import { allAnswered, askRoom, isTailRead, watcherOn } from './uncut-scene.js'

const scene = handoffScenes()

/** b's PUBLISH of its 'news' `arg`. */
const isNews = (args: string[], arg: string) =>
  args[0] === 'PUBLISH' && (args[2] ?? '').includes(`\\"news\\",[\\"${arg}\\"]`)

/** `node` broadcasts each of `args` to room 'r' (as 'news'). */
function burst(node: FakeNode, args: readonly string[]): void {
  for (const arg of args) node.adapter.broadcast(message('news', [arg]), to(['r']))
}

/**
 * b confirms `claim`: taken. Read unsealed, its tail's session may still turn out kept by a, and
 * b's count of its copy for a question waits for this (see src/unread-takeovers.ts).
 */
async function confirmed(claim: SessionClaim): Promise<void> {
  expect(await within(claim.confirm?.() ?? Promise.resolve(undefined), 5000, 'the confirm')).toBe('taken')
}

/**
 * A `before` for `joinedBeforeOwnMarker`: b asks its room q1, then broadcasts b1, a reading none of
 * them before the tail is read (its subscriber held; released after b read them back). `asked()`
 * is the question, once asked.
 */
function unreadQuestion(nodes: ProxiedScene) {
  let asked: ReturnType<typeof askRoom> | undefined
  const before = async () => {
    nodes.releases.push(nodes.aProxy.holdDownstream())
    asked = askRoom(nodes.b, 'q1')
    burst(nodes.b, ['b1'])
  }
  return { before, asked: () => asked }
}

/** b confirms `claim`, and `asked` gets its count and a reply from each socket it counted. */
async function answeredAsCounted(claim: SessionClaim, asked: ReturnType<typeof askRoom> | undefined) {
  await confirmed(claim)
  await allAnswered(asked)
  expect(asked?.replies.length).toBe(asked?.count)
}

/**
 * b's subscriber reads nothing from here on; `before` broadcasts (and holds a's subscriber), all
 * of it PUBLISHed (c's watcher got `lastBefore`) before b takes the session over. b's wait runs
 * out: it joins before its marker came back and reads the tail a did not seal. Then both read
 * everything (a's appends refused), and c sends 'c-last'. With `readBeforeTail`, b's read of the
 * tail is answered only once b read everything up to c's 'c-after', sent past its marker: b reads
 * what `before` sent between its join and its tail. With `replyAs`, b's copy of the session replies
 * to questions with that value. Returns the tail, what the session got (the tail's first), and the
 * order the channel carried the broadcasts in, and the claim (its confirm is the caller's).
 */
async function joinedBeforeOwnMarker(
  { cluster, proxy: bProxy, a, b, c, waits, releases }: ProxiedScene,
  sid: string,
  before: () => Promise<void>,
  lastBefore: string,
  readBeforeTail = false,
  replyAs?: string,
) {
  // Read directly: b's and c's broadcasts interleave as Redis ran them, not as they were emitted.
  const channel: string[] = []
  const listener = c.redis.duplicate()
  listener.on('error', () => {})
  await listener.connect()
  try {
    await listener.subscribe(`${cluster.prefix}:broadcast`, (text) => {
      const { e } = JSON.parse(text) as { e?: unknown }
      const arg = typeof e === 'string' ? /"(c-last|c-after|[bc]\d)"/.exec(e)?.[1] : undefined
      if (arg) channel.push(arg)
    })
    const claim = won(await b.adapter.claimSession(sid))
    releases.push(bProxy.holdDownstream())
    const seen = watcherOn(c)
    await before()
    await until(() => seen.got.includes(lastBefore), 5000, `${lastBefore} PUBLISHed`)

    const tailRead = new HeldInOrder(b.redis, isTailRead, () => true)
    if (readBeforeTail) {
      tailRead.sendAll()
      b.hold = tailRead.hold
    }
    const { taken, done } = takeOverOn(b, claim, sid)
    if (replyAs !== undefined) repliesAs(taken, replyAs)
    await until(() => waits.began === 1, 5000, 'the marker published')
    waits.runOut()
    if (readBeforeTail) {
      await until(() => b.commands.some(isTailRead), 5000, 'the tail read sent')
      const bHeld = releases.shift()
      bHeld?.()
      const bSees = watcherOn(b)
      burst(c, ['c-after'])
      await until(() => bSees.got.includes('c-after'), 5000, 'c-after read at b')
      tailRead.runAll()
    }
    const tail = await within(done, 5000, 'the takeover')

    for (const release of releases.splice(0)) release()
    await until(() => a.sockets.claims.includes(sid), 10_000, 'the marker at a')
    burst(c, ['c-last'])
    await until(() => taken.got.includes('c-last'), 5000, 'c-last at the socket')
    await until(() => channel.includes('c-last'), 5000, 'c-last on the channel')
    return { claim, tail, got: [...tail.tail.map(argOf), ...taken.got], channel }
  } finally {
    listener.destroy()
  }
}

/**
 * a hands off `sid`; b claims it; neither a nor b reads the channel from then on. y1, b's own
 * before its marker, is PUBLISHed; b's wait runs out, it joins before its marker came back and
 * reads the tail a did not seal, which lacks y1. Then x1, emitted by b after the join, is held on
 * its way to Redis and given up (b's `requestTimeout` short), its link stalled from x1 on: the
 * socket would take it at once, ahead of y1, and does not. Returns that socket.
 */
async function givenUpBehindOwn({ aProxy, proxy, a, b, c, waits, releases }: ProxiedScene, sid: string) {
  await handedOffSession(a, sid)
  const claim = won(await b.adapter.claimSession(sid))
  releases.push(aProxy.holdDownstream(), proxy.holdDownstream())
  const seen = watcherOn(c)
  burst(b, ['y1'])
  await until(() => seen.got.includes('y1'), 5000, 'y1 PUBLISHed')
  const { taken, done } = takeOverOn(b, claim, sid)
  await until(() => waits.began === 1, 5000, 'the marker published')
  waits.runOut()
  const tail = await within(done, 5000, 'the takeover')
  expect(tail.complete).toBe(false)
  expect(tail.tail).toEqual([])

  new HeldOnDroppedLink(b, (args) => isNews(args, 'x1'))
  burst(b, ['x1'])
  await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'x1 given up')
  expect(taken.got).toEqual([])
  return taken
}

describe.skipIf(skipRedisSuites())(
  "the claimer's own broadcasts before its marker, read back after its join",
  () => {
    it.each([
      ['after', false, ['b1', 'b2', 'c-last', 'c1', 'c2']],
      ['before', true, ['b1', 'b2', 'c-after', 'c-last', 'c1', 'c2']],
    ] as const)(
      'reach the session from the claimer when the unsealed tail lacks them: once each, in channel order (read %s the tail; held until it says it lacks them)',
      (_, readBeforeTail, all) =>
        proxiedScene(scene, {}, async (nodes) => {
          const { a, b, c } = nodes
          const sid = `sid-own-${readBeforeTail ? 'read' : 'before'}`
          await handedOffSession(a, sid)
          const { tail, got, channel } = await joinedBeforeOwnMarker(
            nodes,
            sid,
            async () => {
              // a reads none of it before the tail is read (held after b's subscriber when b
              // reads it first: released later).
              nodes.releases.push(nodes.aProxy.holdDownstream())
              burst(c, ['c1'])
              burst(b, ['b1'])
              burst(c, ['c2'])
              burst(b, ['b2'])
            },
            'b2',
            readBeforeTail,
          )
          expect(tail.complete).toBe(false)
          expect(tail.tail).toEqual([])
          expect([...got].sort()).toEqual(all)
          expect(got).toEqual(channel)
        }),
    )

    it.each([
      ['after', false],
      ['before', true],
    ])(
      'are not delivered again when the unsealed tail holds them, and the rest reach the session once (read %s the tail)',
      (_, readBeforeTail) =>
        proxiedScene(scene, {}, async (nodes) => {
          const { a, b, c, cluster } = nodes
          const sid = `sid-own-held-${readBeforeTail}`
          await handedOffSession(a, sid)
          const { tail, got, channel } = await joinedBeforeOwnMarker(
            nodes,
            sid,
            async () => {
              // a reads b1 and c1 and puts them into the tail, before its subscriber is held.
              burst(b, ['b1'])
              await untilTailHolds(cluster, a, 1, 'b1 in the tail')
              burst(c, ['c1'])
              await untilTailHolds(cluster, a, 2, 'c1 in the tail')
              // a does not read b2 before the tail is read: no tail holds it.
              nodes.releases.push(nodes.aProxy.holdDownstream())
              burst(b, ['b2'])
            },
            'b2',
            readBeforeTail,
          )
          expect(tail.complete).toBe(false)
          expect(tail.tail.map(argOf)).toEqual(['b1', 'c1'])
          expect(got).toEqual(
            readBeforeTail ? ['b1', 'c1', 'b2', 'c-after', 'c-last'] : ['b1', 'c1', 'b2', 'c-last'],
          )
          expect(got).toEqual(channel)
        }),
    )

    it('ask the session there when one is a broadcast with acks the unsealed tail lacks, read back after the tail', () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { a } = nodes
        const sid = 'sid-own-asked'
        await handedOffSession(a, sid)
        const { tail, got } = await joinedBeforeOwnMarker(nodes, sid, unreadQuestion(nodes).before, 'b1')
        expect(tail.complete).toBe(false)
        expect(tail.tail).toEqual([])
        expect(got).toEqual(['q1', 'b1', 'c-last'])
      }))

    it("ask the session at the tail's read when one is a broadcast with acks the unsealed tail lacks, read back before that read: counted, its reply the caller's", () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { a } = nodes
        const sid = 'sid-own-asked-read'
        await handedOffSession(a, sid)
        const question = unreadQuestion(nodes)
        const { claim, tail, got, channel } = await joinedBeforeOwnMarker(
          nodes,
          sid,
          question.before,
          'b1',
          true,
          'from b',
        )
        expect(tail.complete).toBe(false)
        expect(tail.tail).toEqual([])
        // Asked of the session once, held with b1 and c-after, in the order b read them.
        expect(got).toEqual(['q1', ...channel])
        const asked = question.asked()
        await answeredAsCounted(claim, asked)
        expect(asked?.replies.filter((reply) => reply.ok && reply.value === 'from b')).toHaveLength(1)
      }))

    it('count the session once when one is a broadcast with acks the unsealed tail lacks: the old node, reading it late, its append refused, counts its copy not', () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { a, b, c } = nodes
        const sid = 'sid-own-asked-once'
        await handedOffSession(a, sid)
        // Each copy says whose it is: a's, whose append the tail refuses, must not be counted.
        const onA = a.sockets.get('s1')
        if (!onA) throw new Error("a's copy of the session is missing")
        repliesAs(onA, 'from a')
        const question = unreadQuestion(nodes)
        const { claim, tail } = await joinedBeforeOwnMarker(
          nodes,
          sid,
          async () => {
            const watcher = c.sockets.get('w')
            if (!watcher) throw new Error("c's watcher is missing")
            repliesAs(watcher, 'from c')
            await question.before()
          },
          'b1',
          true,
          'from b',
        )
        const asked = question.asked()
        expect(tail.tail).toEqual([])
        await confirmed(claim)
        // a read q1 (before b's marker, which it reads later) into a tail already read: refused.
        await until(() => a.sockets.claims.includes(sid), 5000, 'the marker at a')
        await allAnswered(asked)
        // c's watcher and the session, once: asked by b, which delivers it to the client.
        expect(asked?.count).toBe(2)
        expect(asked?.replies.map((reply) => (reply.ok ? reply.value : reply.error.code)).sort()).toEqual([
          'from b',
          'from c',
        ])
        expect(b.sockets.get('s1')?.got.filter((arg) => arg === 'q1')).toEqual(['q1'])
      }))

    it("are not asked again at the tail's read when the unsealed tail holds a broadcast with acks read back before that read", () =>
      proxiedScene(scene, {}, async (nodes) => {
        const { a, b, cluster } = nodes
        const sid = 'sid-own-asked-held'
        await handedOffSession(a, sid)
        let asked: ReturnType<typeof askRoom> | undefined
        const { claim, tail, got, channel } = await joinedBeforeOwnMarker(
          nodes,
          sid,
          async () => {
            // a reads q1 and asks it into the tail, before its subscriber is held.
            asked = askRoom(b, 'q1')
            await untilTailHolds(cluster, a, 1, 'q1 in the tail')
            nodes.releases.push(nodes.aProxy.holdDownstream())
            burst(b, ['b1'])
          },
          'b1',
          true,
          'from b',
        )
        expect(tail.complete).toBe(false)
        expect(tail.tail.map(argOf)).toEqual(['q1'])
        expect(got).toEqual(['q1', ...channel])
        await answeredAsCounted(claim, asked)
        // a asked it of the session, into the tail: b's copy is not asked it.
        expect(asked?.replies.filter((reply) => reply.ok && reply.value === 'from b')).toEqual([])
      }))

    it('keep their order with a later own broadcast given up, which waits for them rather than reach the session first', () =>
      // b gives up a PUBLISH Redis does not answer within 300 ms.
      proxiedScene(scene, { claimer: { requestTimeout: 300 } }, async (nodes) => {
        const { b, c, releases } = nodes
        const taken = await givenUpBehindOwn(nodes, 'sid-own-given-up')

        // b reads y1 back: the tail lacks it, and the socket takes it, then x1.
        for (const release of releases.splice(0)) release()
        await until(() => taken.got.includes('x1'), 5000, 'x1 at the socket')
        expect(taken.got).toEqual(['y1', 'x1'])

        // x1 never runs: the link drops with it. What comes next reaches the socket once, in order.
        await dropConnection(b)
        burst(b, ['x2'])
        burst(c, ['x3'])
        await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')
        expect(taken.got).toEqual(['y1', 'x1', 'x2', 'x3'])
      }))

    it('let the own broadcast given up behind them go when the claimer closes: they never come back then', () =>
      proxiedScene(scene, { claimer: { requestTimeout: 300 } }, async (nodes) => {
        const taken = await givenUpBehindOwn(nodes, 'sid-own-given-up-close')
        await within(nodes.b.adapter.close(), 5000, "b's close")
        expect(taken.got).toEqual(['x1'])
      }))
  },
)
