// Redis delivers pub/sub messages at most once: a reply to a broadcast with acks that it loses
// on its way back must not be waited for until the replying node leaves, when the caller set no
// timeout. The replying node is asked how many replies it made, and those that never came fail.
import type { PreparedEvent } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until } from '../../server/test/helpers.js'
import { type FakeNode, FakeSocket, fakeClusterSuite, message, to } from './handoff-support.js'

/** A socket that replies when the test says so. */
class LaterSocket extends FakeSocket {
  settle: ((reply: BroadcastReply) => void) | undefined

  override deliverWithAck(
    _event: PreparedEvent,
    _timeout: number,
    settle: (reply: BroadcastReply) => void,
  ): void {
    this.settle = settle
  }
}

function later(node: FakeNode, id: string, rooms: string[]): LaterSocket {
  const socket = new LaterSocket(id)
  node.sockets.sockets.set(id, socket)
  node.adapter.addAll(id, [id, ...rooms])
  return socket
}

describe.skipIf(skipRedisSuites())('a reply Redis loses', () => {
  const suite = fakeClusterSuite()

  it('fails once its node says it made it, though the broadcast has no timeout', async () => {
    const cluster = suite.cluster({ requestTimeout: 300 })
    const [a, b] = await cluster.start(2)
    const before = later(b!, 's1', ['room'])
    const after = later(b!, 's2', ['room'])
    let total: number | undefined
    const replies: BroadcastReply[] = []
    a!.adapter.broadcastWithAck(
      message('ask', [1]),
      to(['room']),
      Number.POSITIVE_INFINITY,
      (count) => {
        total = count
      },
      (reply) => replies.push(reply),
    )
    await until(
      () => total === 2 && before.settle !== undefined && after.settle !== undefined,
      3000,
      'counted',
    )
    before.settle!({ ok: true, value: 'first' })
    await until(() => replies.length === 1, 3000, 'the first reply')

    // Redis takes the PUBLISH of the second reply and no subscriber hears it (as when a's
    // subscriber is reconnecting): lost.
    b!.lose = (args) => args[0] === 'PUBLISH' && args[2]?.includes('"k":"reply"') === true
    after.settle!({ ok: true, value: 'second' })
    b!.lose = undefined

    await until(() => replies.length === 2, 5000, 'the lost reply, failed')
    expect(replies[0]).toEqual({ ok: true, value: 'first' })
    expect(replies[1]).toMatchObject({ ok: false, error: { code: 'PARLEY_REDIS_REPLY_LOST' } })
    expect(a!.adapter.stats.lostReplies).toBe(1)
    expect(a!.warnings.some((w) => w.includes('Redis lost 1 reply'))).toBe(true)
    // Failed once: later answers of b (it owes nothing now) add nothing.
    await sleep(700)
    expect(replies).toHaveLength(2)
  })
})
