// A session's handoff on a node in a burst so long that `MAX_QUEUED_COMMANDS` commands wait their
// turn already: the snapshot's write is not sent, and the warning that gives it up says why with
// its code, `PARLEY_REDIS_BUSY`, as every warning of a command given up does. Real adapters over
// fake sockets on a real Redis (see handoff-support.ts): the burst's broadcasts are held
// unanswered by the test, not by a pause of a fixed time.
import { MAX_QUEUED_COMMANDS, RedisErrorCode } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { queueFullOn } from './burst.js'
import { fakeClusterSuite, snapshotOf } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a snapshot written on a node in a burst', () => {
  const suite = fakeClusterSuite()

  it('refused past MAX_QUEUED_COMMANDS waiting: not stored, and warned with PARLEY_REDIS_BUSY', async () => {
    // Nothing goes overdue while the test runs: the refusal is the burst's alone.
    const [a, b] = await suite.cluster({ requestTimeout: 20_000 }).start(2)
    const sid = 'sid-busy'
    a!.sockets.add('s1', sid)
    a!.adapter.addAll('s1', ['s1'])
    await a!.adapter.sessionOpened(sid)
    const burst = await queueFullOn(a!)
    try {
      expect(await within(a!.adapter.handOff(snapshotOf(sid, 's1'), 60_000), 3000, 'the handoff')).toBe(false)
      const givenUp = a!.warned.filter(({ message }) => message.includes('session snapshot'))
      expect(givenUp).toHaveLength(1)
      expect(givenUp[0]!.message).toBe('@parley/redis: could not store a session snapshot')
      expect(givenUp[0]!.details.code).toBe(RedisErrorCode.BUSY)
      expect(String(givenUp[0]!.details.err)).toContain(`and ${MAX_QUEUED_COMMANDS} waiting behind them`)
    } finally {
      await burst.release()
    }
    // Never sent: nothing of it is claimable once Redis answered everything.
    const claim = await b!.adapter.claimSession(sid)
    expect(typeof claim === 'object' && claim !== null && 'takeOver' in claim).toBe(false)
  })
})
