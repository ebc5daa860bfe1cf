// A client's reply to a question of the node that handed its session off is sent back there over
// Redis by the node that took the session over. A reply that cannot go (Redis away) is lost, and
// the old node's question ends at its own limits: the claimer counts it and says so.
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { fakeClusterSuite, handedOffSession, takeOverOn, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a reply sent back while Redis is away', () => {
  const suite = fakeClusterSuite()

  it('is counted and logged as lost', async () => {
    const [a, b] = await suite.cluster().start(2)
    const sid = 'sid-reply-lost'
    await handedOffSession(a!, sid)
    const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
    await within(takeOverOn(b!, claim, sid).done, 5000, 'the takeover')

    b!.down = true
    claim.forwardReply?.({ type: PacketType.REPLY, seq: 3, ackId: 4, args: ['yes'] })
    expect(b!.adapter.stats.lostRepliesSentBack).toBe(1)
    expect(b!.warnings).toContainEqual(
      expect.stringMatching(
        `^@parley/redis: a client's reply could not be sent back to node ${a!.adapter.node}: Redis at .* is not reachable`,
      ),
    )
  })
})
