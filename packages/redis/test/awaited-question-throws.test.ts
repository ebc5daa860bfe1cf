// A socket being handed over that throws at an own broadcast with acks of its node proved never
// run, as the question reaches the positioned sockets (see src/ask-each.ts), loses that one
// alone: the other sockets are still asked, its own reply, counted, fails, and what follows in
// the same read still happens (the later broadcast that proved it).
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until } from '../../server/test/helpers.js'
import {
  dropConnection,
  type FakeNode,
  fakeClusterSuite,
  HeldOnDroppedLink,
  message,
  to,
} from './handoff-support.js'
import { isProbe, isRequest } from './published.js'
import { handedOff } from './throwing-session.js'

describe.skipIf(skipRedisSuites())('a socket that throws at an own question proved never run', () => {
  const suite = fakeClusterSuite()

  it('loses it alone: the other session is asked, its reply fails, the proof goes on', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const node = a as FakeNode
    // s1 first in room 'r': it is asked before s2.
    const first = await handedOff(node, 's1', 'sid-throws', 'asked')
    const second = await handedOff(node, 's2', 'sid-takes')
    new HeldOnDroppedLink(node, isRequest)
    node.lose = isProbe
    const asked: { count: number | undefined; replies: BroadcastReply[] } = { count: undefined, replies: [] }
    node.adapter.broadcastWithAck(
      message('asked', ['asked']),
      to(['r']),
      5000,
      (count) => {
        asked.count = count
      },
      (reply) => asked.replies.push(reply),
    )
    await until(() => node.adapter.stats.lostBroadcasts === 1, 3000, 'the question given up')
    const left = await unheard(async () => {
      // Lost with the connection, never run: the later own broadcast proves it.
      await dropConnection(node)
      node.adapter.broadcast(message('news', ['after']), to(['r']))
      await until(
        () => second.includes('after') && first.includes('after'),
        3000,
        'the later broadcast at both',
      )
      await until(() => asked.replies.length === 2, 3000, 'the replies')
    })
    expect(left).toEqual([])
    expect(second).toEqual(['asked', 'after'])
    expect(first).toEqual(['after'])
    expect(asked.count).toBe(2)
    const failed = asked.replies.filter((reply) => !reply.ok)
    expect(failed).toHaveLength(1)
    const error = failed[0]?.ok === false ? failed[0].error : undefined
    expect(error).toBeInstanceOf(ParleyError)
    expect((error as ParleyError).code).toBe(ErrorCode.DISCONNECTED)
    expect(
      node.warnings.filter((line) => line.includes('a broadcast with acks failed at its delivery')),
    ).toHaveLength(1)
    expect(node.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })
})
