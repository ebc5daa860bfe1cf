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
const TIMEOUT = 800

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
     * answered `ANSWERED_LATE_MS` after the question.
     * What c heard: its count, and the replies' values.
     */
    async function askedAcross(sender: 'now' | 'earlier' | 'queued' | 'skewed' | 'failed over') {
      const cluster = suite.cluster()
      const [a, b, c] = await cluster.start(3)
      const sid = 'sid-held-sender-timeout'
      await handedOffSession(a!, sid)
      const watcher = watcherOn(b!)
      repliesAs(watcher, 'b:w')
      const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
      // b's read of the tail is held back: until it is answered, s1's count waits.
      const tailRead = new HeldInOrder(b!.redis, isTailRead, () => false)
      b!.hold = tailRead.hold
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
          TIMEOUT,
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

    it('from a sender of an earlier version, is bounded from its arrival, as before', async () => {
      // Given a hop after the sender stopped waiting: that node counts as none.
      expect(await askedAcross('earlier')).toEqual({ count: 0, values: [] })
    })
  },
)

/**
 * How long a request waits in its sender's queue before it reaches Redis: more than the margin
 * the other node keeps for the hops (twice its round trip and 50 ms), well below `TIMEOUT`.
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
 * within `TIMEOUT` less the margin for the hops.
 */
const ANSWERED_LATE_MS = 540

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
