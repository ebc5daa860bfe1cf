// A session this node handed off ends here during a burst on its Redis connection (a thousand
// commands unanswered, Redis answering): the record of how it ended waits its turn, and the
// withdrawal of its snapshot waits behind it. A claim that won meanwhile reads the session ended
// from that withdrawal, ends its copy, and its client's next try, wherever it lands, must find
// the record already there (its CLOSE), not a new session. So too when the queue of commands
// waiting their turn has one place left: the record, had it waited its turn there, would take
// it, and the withdrawal, refused as busy and kept with the take-back steps, would go on the
// connection at once, ahead of the record.
import { CloseReason, PacketType } from '@parley/protocol'
import { MAX_QUEUED_COMMANDS } from '@parley/redis'
import type { EndedSession } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { burstOnAdapter, queueFilledOn } from './burst.js'
import { type FakeNode, fakeClusterSuite, snapshotOf } from './handoff-support.js'
import { rawRedisEach } from './raw-redis.js'

const ENDING: EndedSession = {
  close: { type: PacketType.CLOSE, reason: CloseReason.CLIENT_DISCONNECT, message: 'bye' },
  ack: 0,
}

/** Where `node` sent the record of how a session ended, and the WITHDRAW of its snapshot. */
function order(node: FakeNode): { record: number; withdrawal: number } {
  const record = node.commands.findIndex(([name, key]) => name === 'SET' && key?.includes(':ended:'))
  // WITHDRAW: the one script that marks a claimed hash ended.
  const withdrawal = node.commands.findIndex(
    ([name, script]) => name === 'EVAL' && script?.includes("HSET', KEYS[1], 'ended'"),
  )
  return { record, withdrawal }
}

/** The longest Redis holds the burst, should the test fail before it lets it go. */
const PAUSE_MS = 5000

describe.skipIf(skipRedisSuites())('a handed-off session that ends in a burst', () => {
  const suite = fakeClusterSuite()
  /** Raw clients of the suite's Redis, closed after each test. */
  const rawClient = rawRedisEach(() => suite.redis().url)

  it('sends the record of how it ended before the withdrawal of its snapshot', async () => {
    const cluster = suite.cluster()
    const [a] = await cluster.start(1)
    const sid = 'sid-ended-in-burst'
    a!.sockets.add('s1', sid)
    await a!.adapter.sessionOpened(sid)
    expect(await a!.adapter.handOff(snapshotOf(sid, 's1'), 60_000)).toBe(true)
    const raw = await rawClient()
    try {
      await burstOnAdapter(raw, a!.adapter, PAUSE_MS)
      // The server ends the session (a goodbye while its handoff waits): it forgets it, keeps
      // how it ended, then withdraws its snapshot.
      a!.sockets.sessions.delete(sid)
      a!.sockets.sockets.delete('s1')
      a!.adapter.sessionEnded(sid, ENDING, 60_000)
      const withdrawn = a!.adapter.withdrawHandOff(sid)
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      await within(withdrawn, 4000, 'the withdrawal')
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
    const { record, withdrawal } = order(a!)
    expect(record).toBeGreaterThanOrEqual(0)
    expect(withdrawal).toBeGreaterThan(record)
    // Redis answered it in its turn: nothing was left to send later.
    expect(a!.warnings.filter((w) => w.includes('could not withdraw'))).toEqual([])
  })

  it('sends the record before the withdrawal when one place is left in the queue of commands waiting their turn', async () => {
    const cluster = suite.cluster()
    const [a] = await cluster.start(1)
    const sid = 'sid-ended-last-place'
    a!.sockets.add('s1', sid)
    await a!.adapter.sessionOpened(sid)
    expect(await a!.adapter.handOff(snapshotOf(sid, 's1'), 60_000)).toBe(true)
    // Every command of a's held, and one place left in the queue of those waiting their turn.
    const burst = await queueFilledOn(a!, MAX_QUEUED_COMMANDS - 1)
    let withdrawn = Promise.resolve()
    try {
      a!.sockets.sessions.delete(sid)
      a!.sockets.sockets.delete('s1')
      a!.adapter.sessionEnded(sid, ENDING, 60_000)
      withdrawn = a!.adapter.withdrawHandOff(sid)
    } finally {
      await burst.release()
    }
    await within(withdrawn, 4000, 'the withdrawal')
    await until(() => order(a!).record >= 0, 4000, 'the record sent')
    const { record, withdrawal } = order(a!)
    expect(withdrawal).toBeGreaterThan(record)
    await expect.poll(() => a!.adapter.endedSession(sid), { timeout: 4000 }).toEqual(ENDING)
  })
})
