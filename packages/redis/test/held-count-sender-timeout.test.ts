// Another node's question reaches a claimer whose count waits for a takeover's tail (its read
// held back here, as a slow Redis would): the claimer gives its count, with the replies its other
// sockets made, before the question's sender stops waiting. Bounded by a timer of its own that
// starts when the question arrives, a Redis hop after the sender's, it would give them after
// the sender's timeout: the sender would count that node as none and drop its replies. So too
// when the question waits in its sender's queue before Redis runs it (Redis slow to run the
// commands ahead of it): what was left of the timeout as it was sent is less by the time it
// reaches Redis, which only Redis' clock, read by both nodes, tells the claimer. And when the
// two nodes read that clock apart (a failover to a Redis on another machine, before both beat
// again), the sender still waiting while the claimer's reading says it is done: the claimer holds
// its count at least half of what the sender said was left; and, when the sender says which
// Redis server its reading is of (its run_id) and it is not the claimer's, ignores that reading.
// And when the claimer's count, given at its bound, reaches Redis late (its event loop lagging,
// as on a loaded machine or in a major GC): the room it kept for that lag lets it in still.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  type FakeNode,
  fakeClusterSuite,
  HeldInOrder,
  handedOffSession,
  message,
  repliesAs,
  takeOverOn,
  to,
  untilTailSealed,
  won,
} from './handoff-support.js'
import { isTailRead, watcherOn } from './uncut-scene.js'

/** The sender's timeout: short, far below the nodes' requestTimeout (5 s). */
const TIMEOUT = 1000

describe.skipIf(skipRedisSuites())(
  "another node's question held for a takeover's tail, at its sender's timeout",
  () => {
    const suite = fakeClusterSuite()

    /**
     * c asks room 'r' (its own sockets none) while b, a claimer, holds its count for s1, a
     * takeover whose tail read is held back; b's watcher replies at once. `sender`: 'earlier',
     * c's request leaves without what was left of its timeout, as from a node of an earlier
     * version; 'queued', it waits `QUEUED_MS` in c's queue before it reaches Redis; 'skewed', its
     * `d` is `SKEW_MS` sooner, as c's reading of Redis' clock would be behind b's, and b's tail
     * read is answered `ANSWERED_MS` after the question, so that s1 is counted too; 'failed over',
     * as 'skewed' with the request naming another Redis server than b read, and b's tail read
     * answered `ANSWERED_LATE_MS` after the question; 'lagging', b's count and the answers behind
     * it reach Redis `COUNT_LAG_MS` after b gave it, the sender's timeout `LAGGED_TIMEOUT`.
     * What c heard: its count, and the replies' values.
     */
    async function askedAcross(sender: 'now' | 'earlier' | 'queued' | 'skewed' | 'failed over' | 'lagging') {
      const cluster = suite.cluster()
      const [a, b, c] = await cluster.start(3)
      const sid = 'sid-held-sender-timeout'
      await handedOffSession(a!, sid)
      const watcher = watcherOn(b!)
      repliesAs(watcher, 'b:w')
      const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
      // b's read of the tail is held back: until it is answered, s1's count waits.
      const tailRead = new HeldInOrder(b!.redis, isTailRead, () => false)
      const lagged = sender === 'lagging' ? lagging(b!) : undefined
      b!.hold = (args) => tailRead.hold(args) ?? lagged?.(args)
      if (sender === 'earlier') c!.hold = withoutLeft(c!)
      if (sender === 'queued') c!.hold = queued(c!)
      if (sender === 'skewed') c!.hold = skewed(c!)
      if (sender === 'failed over') c!.hold = skewed(c!, OTHER_RUN)
      try {
        const { taken } = takeOverOn(b!, claim, sid)
        repliesAs(taken, 'b:s1')
        await untilTailSealed(cluster, a!)
        await until(() => b!.commands.some(isTailRead), 5000, 'the tail read sent, s1 joined')

        const asked: { count: number | undefined; replies: BroadcastReply[] } = {
          count: undefined,
          replies: [],
        }
        c!.adapter.broadcastWithAck(
          message('ask', ['q']),
          to(['r']),
          sender === 'lagging' ? LAGGED_TIMEOUT : TIMEOUT,
          (count) => {
            asked.count = count
          },
          (reply) => asked.replies.push(reply),
        )
        if (sender === 'skewed') setTimeout(() => void tailRead.runAll(), ANSWERED_MS)
        if (sender === 'failed over') setTimeout(() => void tailRead.runAll(), ANSWERED_LATE_MS)
        await until(() => asked.count !== undefined, 5000, "the sender's count")
        // Replies that came with the count are in by its timeout, or never.
        await until(() => asked.replies.length >= (asked.count ?? 0), 3000, 'the replies counted')
        const values = asked.replies.map((reply) => (reply.ok ? reply.value : reply.error.code)).sort()
        return { count: asked.count, values }
      } finally {
        tailRead.dropAll(null)
      }
    }

    it('is counted by its sender, with the replies made in time, the held socket left out', async () => {
      expect(await askedAcross('now')).toEqual({ count: 1, values: ['b:w'] })
    })

    it("is counted by its sender, with the replies made in time, when the question waited in its sender's queue", async () => {
      expect(await askedAcross('queued')).toEqual({ count: 1, values: ['b:w'] })
    })

    it("is counted by its sender, with the replies made in time, when the sender's reading of Redis' clock is behind", async () => {
      // Given at once, as c's `d` says c is done, the count would leave s1 out and drop its reply.
      expect(await askedAcross('skewed')).toEqual({ count: 2, values: ['b:s1', 'b:w'] })
    })

    it("is counted by its sender, with the replies made in time, when the sender's reading of Redis' clock is another server's", async () => {
      // Held only half of what was left, as when that reading is taken for the claimer's own
      // server's, the count would be given before s1's tail is read, leaving it out.
      expect(await askedAcross('failed over')).toEqual({ count: 2, values: ['b:s1', 'b:w'] })
    })

    it('is counted by its sender, with the replies made in time, when the count reaches Redis late', async () => {
      // With 50 ms kept for the lag of both nodes, the count would reach the sender after it
      // stopped waiting: the node counted as none, its reply in time dropped.
      expect(await askedAcross('lagging')).toEqual({ count: 1, values: ['b:w'] })
    })

    it('from a sender of an earlier version, is bounded from its arrival, as before', async () => {
      // Given a hop after the sender stopped waiting: that node counts as none.
      expect(await askedAcross('earlier')).toEqual({ count: 0, values: [] })
    })
  },
)

/**
 * How long a request waits in its sender's queue before it reaches Redis: more than the margin
 * the other node keeps for the hops and its lag (twice its round trip and a fifth of what was
 * left, 200 ms), so that bounded by `l` alone the count would come late; below half of `TIMEOUT`,
 * so that bounded by `d` (down to that half) it comes `TIMEOUT` / 2 - `QUEUED_MS` before the
 * sender stops waiting.
 */
const QUEUED_MS = 300

/** Whether `args` PUBLISHes a request for a broadcast with acks. */
function isAckRequest(args: string[]): boolean {
  const [command, channel, text] = args
  return (
    command === 'PUBLISH' && channel?.endsWith(':request') === true && text?.includes('"k":"ack"') === true
  )
}

/** `node`'s requests for a broadcast with acks reach Redis `QUEUED_MS` after it sent them. */
function queued(node: FakeNode): (args: string[]) => Promise<unknown> | undefined {
  return (args) => {
    if (!isAckRequest(args)) return undefined
    return new Promise((resolve) => setTimeout(resolve, QUEUED_MS)).then(() => node.redis.sendCommand(args))
  }
}

/** `node`'s requests for a broadcast with acks PUBLISHed without `l` and `d`, as a node of an earlier version sends them. */
function withoutLeft(node: FakeNode): (args: string[]) => Promise<unknown> | undefined {
  return (args) => {
    const [command, channel, text] = args
    if (command !== 'PUBLISH' || !channel?.endsWith(':request') || text === undefined) return undefined
    const request = JSON.parse(text) as { k?: unknown; l?: unknown; d?: unknown }
    if (request.k !== 'ack') return undefined
    delete request.l
    delete request.d
    return node.redis.sendCommand(['PUBLISH', channel, JSON.stringify(request)])
  }
}

/**
 * How far behind the claimer's a sender's reading of Redis' clock is: more than the whole
 * timeout, so that by the claimer's reading the sender is done waiting at the question's arrival.
 */
const SKEW_MS = 2000

/** When b's held tail read is answered, from the question's emit: well within half of `TIMEOUT`. */
const ANSWERED_MS = 100

/**
 * When b's held tail read is answered, from the question's emit, for a sender whose reading is of
 * another Redis server: past half of `TIMEOUT` (where the floor alone would give the count), well
 * within `TIMEOUT` less the margin for the hops and the lag (a fifth of it: at 800 ms).
 */
const ANSWERED_LATE_MS = 640

/**
 * The sender's timeout when b's count reaches Redis late: long enough that a fifth of it (the
 * room b keeps for its lag) is well past `COUNT_LAG_MS` and a Redis hop.
 */
const LAGGED_TIMEOUT = 2000

/**
 * How late b's count reaches Redis, as from a node whose event loop lags (a loaded machine, a
 * major GC): well past the 50 ms kept for that lag before, well within the fifth of
 * `LAGGED_TIMEOUT` kept now.
 */
const COUNT_LAG_MS = 200

/**
 * `node`'s answers to another node's question, from its count on, PUBLISHed `COUNT_LAG_MS` after
 * it gave them, in order, as a node whose event loop lags gives them.
 */
function lagging(node: FakeNode): (args: string[]) => Promise<unknown> | undefined {
  /** The channel of the answers, once the count was given. */
  let channel: string | undefined
  let lagged: Promise<void> | undefined
  return (args) => {
    const [command, to, text] = args
    if (command !== 'PUBLISH' || to === undefined || text === undefined) return undefined
    if (channel === undefined) {
      if (!to.includes(':response:') || !text.includes('"k":"count"')) return undefined
      channel = to
      lagged = new Promise((resolve) => setTimeout(resolve, COUNT_LAG_MS))
    } else if (to !== channel) return undefined
    // Sent in the order given, on the one connection: the count first.
    return lagged?.then(() => node.redis.sendCommand(args))
  }
}

/** A Redis run_id prefix no server of these tests has: the sender read a server failed over from. */
const OTHER_RUN = '0000000000000000'

/**
 * `node`'s requests for a broadcast with acks PUBLISHed with a `d` `SKEW_MS` sooner, and, with
 * `run`, naming that Redis server as the one whose clock `d` is on.
 */
function skewed(node: FakeNode, run?: string): (args: string[]) => Promise<unknown> | undefined {
  return (args) => {
    const [command, channel, text] = args
    if (command !== 'PUBLISH' || !channel?.endsWith(':request') || text === undefined) return undefined
    const request = JSON.parse(text) as { k?: unknown; d?: unknown; r?: unknown }
    if (request.k !== 'ack' || typeof request.d !== 'number') return undefined
    request.d -= SKEW_MS
    if (run !== undefined) {
      // The sender names the server it read, as every node of this version does.
      expect(request.r).toMatch(/^[0-9a-f]{16}$/)
      request.r = run
    }
    return node.redis.sendCommand(['PUBLISH', channel, JSON.stringify(request)])
  }
}
