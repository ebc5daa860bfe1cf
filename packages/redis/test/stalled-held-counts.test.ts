// A stall of a node's own event loop (a long synchronous task, a major GC, a debugger's pause)
// while a count it holds for a broadcast with acks waits for a takeover's tail read: the read's
// answer reaches the node's connection during the stall, and the bound on the count runs out
// during it too. Node runs that bound's timer before it reads the connection; the bound's verdict
// waits one turn, so that the answer is read first and the takeover's socket is counted, its reply
// passed on. Two bounds: the count's own at the question's timeout, on the node that asks (see
// held-count.ts), and the sooner one a node that answers another node's question keeps, so that
// the sender has its count before it stops waiting (see sender-deadline.ts). The nodes run in this
// thread, which the test blocks; Redis answers the read meanwhile.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { MUTE } from '../../server/test/stall-gate.js'
import {
  type FakeCluster,
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

/** The question's timeout when b asks: the count's own bound. */
const OWN_TIMEOUT = 1000

/** The stall b's own question waits through: past `OWN_TIMEOUT` from its emit. */
const OWN_STALL_MS = OWN_TIMEOUT + 500

/**
 * The sender's timeout when c asks: b, answering, gives the count it holds about its last fifth
 * (500 ms at most) and two Redis round trips before it, 2500 ms or a little less after the
 * question reached it.
 */
const SENDER_TIMEOUT = 3000

/** The stall b answers through, from the question's arrival: past b's bound, ending well before c's. */
const ANSWER_STALL_MS = SENDER_TIMEOUT - 300

describe.skipIf(skipRedisSuites())('a count held for a tail read answered while the node stalled', () => {
  const suite = fakeClusterSuite()

  /**
   * Nodes a, b and c; session `sid` handed off on a and taken over on b, whose read of the tail
   * is held back: a broadcast with acks to room 'r' counts b's socket s1 (which replies 'b:s1')
   * once it is answered. b's watcher, in room 'r' too, replies 'b:w'.
   */
  async function heldScene(sid: string): Promise<{
    cluster: FakeCluster
    a: FakeNode
    b: FakeNode
    c: FakeNode
    tailRead: HeldInOrder
  }> {
    const cluster = suite.cluster()
    const [a, b, c] = await cluster.start(3)
    await handedOffSession(a!, sid)
    repliesAs(watcherOn(b!), 'b:w')
    const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
    const tailRead = new HeldInOrder(b!.redis, isTailRead, () => false)
    b!.hold = tailRead.hold
    const { taken } = takeOverOn(b!, claim, sid)
    repliesAs(taken, 'b:s1')
    await untilTailSealed(cluster, a!)
    await until(() => b!.commands.some(isTailRead), 5000, 'the tail read sent, s1 joined')
    return { cluster, a: a!, b: b!, c: c!, tailRead }
  }

  /**
   * Sends the held tail read now, then stalls this thread `ms` from this turn's check phase: the
   * read is written first (node-redis writes in the check phase too, queued before), and Redis
   * answers it during the stall.
   */
  function answeredInStall(tailRead: HeldInOrder, ms: number): Promise<boolean> {
    void tailRead.runAll()
    return stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, ms)
  }

  /**
   * `node`'s warnings of a broadcast with acks ended short of a node's count (its other warnings,
   * of the nodes' addresses all alike here, say nothing of it).
   */
  const countsShort = (node: FakeNode) => node.warnings.filter((warning) => warning.includes('count'))

  /** What `asked` heard: its count, and the replies' values. */
  async function heard(asked: { count: number | undefined; replies: BroadcastReply[] }) {
    await until(() => asked.count !== undefined, 5000, 'the count')
    await until(() => asked.replies.length >= (asked.count ?? 0), 3000, 'the replies counted')
    const values = asked.replies.map((reply) => (reply.ok ? reply.value : reply.error.code)).sort()
    return { count: asked.count, values }
  }

  it("counts the socket whose tail read came in time, at the asking node's own timeout", async () => {
    const { a, b, tailRead } = await heldScene('sid-stalled-own-count')
    let stalled: Promise<boolean> | undefined
    try {
      // The stall begins once Redis took a's count for b's question: b's own bound (and the
      // caller's timeout) run out during it, with a's count and the tail read's answer unread.
      a.hold = (args) => {
        const [command, channel, text] = args
        if (command !== 'PUBLISH' || !channel?.includes(':response:') || !text?.includes('"k":"count"'))
          return undefined
        return a.redis.sendCommand(args).then((answer) => {
          stalled ??= answeredInStall(tailRead, OWN_STALL_MS)
          return answer
        })
      }
      const asked: { count: number | undefined; replies: BroadcastReply[] } = {
        count: undefined,
        replies: [],
      }
      b.adapter.broadcastWithAck(
        message('ask', ['q']),
        to(['r']),
        OWN_TIMEOUT,
        (count) => {
          asked.count = count
        },
        (reply) => asked.replies.push(reply),
      )
      await until(() => stalled !== undefined, 3000, "a's count taken by Redis")
      await within(stalled!, 4000, 'the stall')
      // Given at the bound before the read was, the count would leave s1 out and drop its reply.
      expect(await heard(asked)).toEqual({ count: 2, values: ['b:s1', 'b:w'] })
      expect(countsShort(b)).toEqual([])
    } finally {
      tailRead.dropAll(null)
    }
  })

  it("counts the socket whose tail read came in time, at the bound kept for another node's question", async () => {
    const { b, c, tailRead } = await heldScene('sid-stalled-answer-count')
    let stalled: Promise<boolean> | undefined
    try {
      // The stall begins as c's question reaches b (its watcher asked, the bound set in that
      // turn): b's bound runs out during it, the tail read's answer unread.
      const watcher = b.sockets.get('w')!
      const ask = watcher.deliverWithAck.bind(watcher)
      watcher.deliverWithAck = (...args) => {
        stalled ??= answeredInStall(tailRead, ANSWER_STALL_MS)
        ask(...args)
      }
      const asked: { count: number | undefined; replies: BroadcastReply[] } = {
        count: undefined,
        replies: [],
      }
      c.adapter.broadcastWithAck(
        message('ask', ['q']),
        to(['r']),
        SENDER_TIMEOUT,
        (count) => {
          asked.count = count
        },
        (reply) => asked.replies.push(reply),
      )
      await until(() => stalled !== undefined, 3000, "c's question at b")
      await within(stalled!, 5000, 'the stall')
      // Given at the bound before the read was, b's count would leave s1 out and drop its reply.
      expect(await heard(asked)).toEqual({ count: 2, values: ['b:s1', 'b:w'] })
      expect(countsShort(c)).toEqual([])
    } finally {
      tailRead.dropAll(null)
    }
  })
})
