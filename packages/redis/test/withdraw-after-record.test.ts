// A session this node handed off ends here during a burst on its Redis connection (a thousand
// commands unanswered, Redis answering): the record of how it ended waits its turn, and the
// withdrawal of its snapshot waits behind it. A claim that won meanwhile reads the session ended
// from that withdrawal, ends its copy, and its client's next try, wherever it lands, must find
// the record already there (its CLOSE), not a new session.
import { CloseReason, PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { burstOnAdapter } from './burst.js'
import { fakeClusterSuite, snapshotOf } from './handoff-support.js'
import { rawRedis } from './raw-redis.js'

/** The longest Redis holds the burst, should the test fail before it lets it go. */
const PAUSE_MS = 5000

describe.skipIf(skipRedisSuites())('a handed-off session that ends in a burst', () => {
  const suite = fakeClusterSuite()
  const cleanups: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup()
  })

  it('sends the record of how it ended before the withdrawal of its snapshot', async () => {
    const cluster = suite.cluster()
    const [a] = await cluster.start(1)
    const sid = 'sid-ended-in-burst'
    a!.sockets.add('s1', sid)
    await a!.adapter.sessionOpened(sid)
    expect(await a!.adapter.handOff(snapshotOf(sid, 's1'), 60_000)).toBe(true)
    const raw = await rawRedis(suite.redis().url, cleanups)
    try {
      await burstOnAdapter(raw, a!.adapter, PAUSE_MS)
      // The server ends the session (a goodbye while its handoff waits): it forgets it, keeps
      // how it ended, then withdraws its snapshot.
      a!.sockets.sessions.delete(sid)
      a!.sockets.sockets.delete('s1')
      a!.adapter.sessionEnded(
        sid,
        { close: { type: PacketType.CLOSE, reason: CloseReason.CLIENT_DISCONNECT, message: 'bye' }, ack: 0 },
        60_000,
      )
      const withdrawn = a!.adapter.withdrawHandOff(sid)
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      await within(withdrawn, 4000, 'the withdrawal')
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
    const record = a!.commands.findIndex(([name, key]) => name === 'SET' && key?.includes(':ended:'))
    // WITHDRAW: the one script that marks a claimed hash ended.
    const withdrawal = a!.commands.findIndex(
      ([name, script]) => name === 'EVAL' && script?.includes("HSET', KEYS[1], 'ended'"),
    )
    expect(record).toBeGreaterThanOrEqual(0)
    expect(withdrawal).toBeGreaterThan(record)
    // Redis answered it in its turn: nothing was left to send later.
    expect(a!.warnings.filter((w) => w.includes('could not withdraw'))).toEqual([])
  })
})
