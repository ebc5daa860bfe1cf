// The record of how a session ended (one its node did not hand off) waits its turn behind a
// burst on its node (see `Commands.sendInTurn`): it lives what is left of its TTL counted from
// the session's end, not its whole TTL from when its turn came, by which it would outlive the
// end it describes as long as it waited; and it is not written once nothing is left. Over a real
// Redis, every command of the node held unanswered for the burst (see `queueFilledOn`).
import { type ClosePacket, PacketType } from '@parley/protocol'
import type { EndedSession } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep } from '../../server/test/helpers.js'
import { sidHash } from '../src/sessions.js'
import { queueFilledOn } from './burst.js'
import { type FakeCluster, fakeClusterSuite } from './handoff-support.js'

const close: ClosePacket = { type: PacketType.CLOSE, reason: 'server disconnect', message: 'bye' }
const ENDING: EndedSession = { close, ack: 2 }

/** How long the burst holds the record back after the session ended: a good part of its TTL. */
const HELD_MS = 2000

/**
 * Slack for the SET's way to Redis once its turn came (loopback, on a machine that may be
 * loaded), by which the record outlives its end; well below the `HELD_MS` and more that a record
 * given its whole TTL at its turn would have left.
 */
const SLACK_MS = 1000

describe.skipIf(skipRedisSuites())('the record of how a session ended, held behind a burst', () => {
  const suite = fakeClusterSuite()

  const endedKey = (cluster: FakeCluster, sid: string) => `${cluster.prefix}:ended:${sidHash(sid)}`

  /**
   * A node whose every command is held in a burst (its requestTimeout well past the hold, so
   * that the record waits its turn rather than being refused) when `sid` ends there with a record
   * of `ttl` ms; the burst let go after `HELD_MS`. Resolves with the moment right before the end
   * was recorded (`performance.now()`), once every command held and queued was answered.
   */
  async function endedInBurst(sid: string, ttl: number) {
    const cluster = suite.cluster({ requestTimeout: 10_000 })
    const [a] = await cluster.start(1)
    const burst = await queueFilledOn(a!, 0)
    const ended = performance.now()
    a!.adapter.sessionEnded(sid, ENDING, ttl)
    await sleep(HELD_MS)
    // Still waiting its turn: nothing of it reached the connection.
    expect(a!.commands.some(([name, key]) => name === 'SET' && key === endedKey(cluster, sid))).toBe(false)
    await burst.release()
    return { cluster, a: a!, ended }
  }

  it('lives what is left of its TTL from the session’s end, not its whole TTL from its turn', async () => {
    const sid = 'sid-ended-in-burst'
    const ttl = 3 * HELD_MS
    const { cluster, a, ended } = await endedInBurst(sid, ttl)
    // The record goes once the burst's answers free its place: at most a moment after them.
    await expect.poll(() => a.redis.exists(endedKey(cluster, sid)), { timeout: 3000 }).toBe(1)
    const read = performance.now()
    const left = await a.redis.pTTL(endedKey(cluster, sid))
    // Given its whole TTL at its turn, it would have about `ttl` left; it has at most what was
    // left of it from the end (the clock of this process is the node's own).
    expect(left).toBeGreaterThan(0)
    expect(left).toBeLessThanOrEqual(ttl - (read - ended) + SLACK_MS)
    expect(await a.adapter.endedSession(sid)).toEqual(ENDING)
    expect(a.warnings.filter((line) => line.includes('how a session ended'))).toEqual([])
  })

  it('is not written once its TTL ran out while it waited its turn', async () => {
    const sid = 'sid-ended-in-burst-too-late'
    const { cluster, a } = await endedInBurst(sid, HELD_MS / 2)
    // Once a command sent after the burst is answered, so is every one queued before it.
    await a.redis.sendCommand(['PING'])
    await a.adapter.sessionOpened('sid-after-burst')
    expect(a.commands.some(([name, key]) => name === 'SET' && key === endedKey(cluster, sid))).toBe(false)
    expect(await a.redis.exists(endedKey(cluster, sid))).toBe(0)
    expect(await a.adapter.endedSession(sid)).toBeUndefined()
    expect(a.warnings.filter((line) => line.includes('how a session ended'))).toEqual([])
  })
})
