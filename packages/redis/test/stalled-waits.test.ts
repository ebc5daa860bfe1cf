// Two more bounds on what a node reads from Redis, run out during a stall of its own thread
// while what they wait for already came: a question's count waiting for a socket past its claim
// marker (what ends that wait is read on the node's subscriber), and a takeover read without its
// seal waiting for the claim's confirm (a command's answer). Node runs the timers that ran out
// during the stall before it reads the sockets; each bound's verdict waits one turn, so that what
// came in time wins. What a node would read comes here on a subscriber of the test's own, opened
// long before the stall, as a node's are; a message PUBLISHed just before the stall reaches it
// during it.
import type { BroadcastReply } from '@parley/server'
import { MemoryAdapter } from '@parley/server'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { MUTE } from '../../server/test/stall-gate.js'
import { PastMarkerSockets } from '../src/past-marker.js'
import { UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, repliesAs, to } from './handoff-support.js'

/** The bound under test: short, the stall well past it. */
const BOUND_MS = 200
const STALL_MS = BOUND_MS + 500

describe.skipIf(skipRedisSuites())('a wait whose end was read from Redis while the thread stalled', () => {
  let redis: RedisServer
  const closers: (() => Promise<unknown>)[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const close of closers.splice(0)) await close()
  })

  /**
   * A subscriber on `channel` that runs `heard` at each message, and a `publish` of one on it
   * followed at once by a stall of this thread past `BOUND_MS`: the message reaches the subscriber
   * during the stall, the bound runs out in it. Resolves once the stall ended.
   */
  async function heardDuringStall(channel: string, heard: () => void) {
    const publisher = createClient({ url: redis.url })
    const subscriber = publisher.duplicate()
    for (const client of [publisher, subscriber]) {
      client.on('error', () => {})
      closers.push(async () => client.destroy())
    }
    await within(Promise.all([publisher.connect(), subscriber.connect()]), 5000, 'the clients connected')
    await subscriber.subscribe(channel, heard)
    return () => {
      void publisher.publish(channel, 'done')
      // node-redis writes the PUBLISH in this turn's check phase, queued before the stall.
      return within(
        stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS),
        3000,
        'the stall',
      )
    }
  }

  it('counts the socket past its claim marker whose wait ended in time', async () => {
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    const past = new PastMarkerSockets(memory, sockets, new Warnings({ warn: () => undefined }), () => 0)
    for (const id of ['s1', 's2']) {
      repliesAs(sockets.add(id), id)
      memory.addAll(id, new Set([id, 'r']))
    }
    // s1 past its marker: its wait ends (the session kept here) as the subscriber hears so.
    const end = past.enter('s1', 0, (aside) => aside.kept())
    const publishAndStall = await heardDuringStall('past-marker', end)
    const heard: string[] = []
    past.askWithAck(
      message('asked', ['q']),
      to(['r']),
      BOUND_MS,
      (count) => heard.push(`count ${count}`),
      (reply: BroadcastReply) => heard.push(reply.ok ? String(reply.value) : 'failed'),
      undefined,
      true,
    )
    await publishAndStall()
    // The count comes with the replies made by then, in one go.
    await until(() => heard.length > 0, 3000, 'the count')
    // Given at the bound first, the count would leave s1 out: ['count 1', 's2'].
    expect(heard).toEqual(['count 2', 's2', 's1'])
  })

  it("takes the claim's confirm that came in time over its bound", async () => {
    const unread = new UnreadTakeovers()
    unread.joined('s1')
    const kept: boolean[] = []
    unread.whenRead('s1', (keptThere) => kept.push(keptThere))
    // The old node kept the session: the confirm, read on the subscriber, says so.
    const publishAndStall = await heardDuringStall('confirm', () => unread.read('s1', true))
    unread.unconfirmed('s1', BOUND_MS)
    await publishAndStall()
    await until(() => kept.length > 0, 3000, 'the read')
    // At the bound first, the socket would count here as taken over, and at its old node too.
    expect(kept).toEqual([true])
  })
})
