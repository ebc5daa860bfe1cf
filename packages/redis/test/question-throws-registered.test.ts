// A socket whose send of a question throws after it registered that question (the server's
// socket registers it first): the adapter fails its reply at once, and the question, settled
// later where it was registered (its timeout, its session's end), is not counted a second time.
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { fakeClusterSuite, message, to } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a socket that throws at a question it registered', () => {
  const suite = fakeClusterSuite()

  it('is counted once, its reply failed, whatever settles its question later', async () => {
    const [a, b] = await suite.cluster().start(2)
    let registered: ((reply: BroadcastReply) => void) | undefined
    const thrower = a!.sockets.add('t')
    a!.adapter.addAll('t', ['t', 'r'])
    thrower.deliverWithAck = (_event, _timeout, settle) => {
      registered = settle
      throw new Error('the socket threw as it sent the question')
    }
    a!.sockets.add('s')
    a!.adapter.addAll('s', ['s', 'r'])
    b!.sockets.add('w')
    b!.adapter.addAll('w', ['w', 'r'])

    let count: number | undefined
    const replies: BroadcastReply[] = []
    a!.adapter.broadcastWithAck(
      message('asked', ['q']),
      to(['r']),
      5000,
      (total) => {
        count = total
      },
      (reply) => replies.push(reply),
    )
    await until(() => count !== undefined && replies.length >= count, 3000, 'every reply')
    // Its session ends: the question it registered is settled there.
    registered?.({ ok: false, error: new ParleyError(ErrorCode.DISCONNECTED, 'the session ended') })
    expect(count).toBe(3)
    expect(replies).toHaveLength(3)
    expect(replies.filter((reply) => !reply.ok)).toMatchObject([{ error: { code: 'PARLEY_DISCONNECTED' } }])
    expect(a!.warnings).toContain(
      '@parley/redis: a broadcast with acks failed at its delivery to a socket, and is lost to its session',
    )
  })
})
