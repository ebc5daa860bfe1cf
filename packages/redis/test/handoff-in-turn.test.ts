// A drained session's snapshot waits its turn behind a burst on its node (see
// `Commands.sendInTurn`): its keys live until the end of its client's window as the server gave
// it (`ttl` from the `handOff` call), not a whole `ttl` from when its turn came, by which the
// session would stay claimable past that window as long as the write waited; and nothing is
// written once nothing is left of it. Over a real Redis, every command of the node held
// unanswered for the burst (see `queueFilledOn`).
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep } from '../../server/test/helpers.js'
import { sidHash } from '../src/sessions.js'
import { queueFilledOn } from './burst.js'
import { handOff, open } from './handoff-steps.js'
import { type FakeCluster, fakeClusterSuite } from './handoff-support.js'

/** How long the burst holds the write back after `handOff` was called: a good part of its ttl. */
const HELD_MS = 2000

/**
 * Slack for the write's way to Redis once its turn came (loopback, on a machine that may be
 * loaded), by which the keys outlive the window; well below the `HELD_MS` and more that a write
 * given its whole ttl at its turn would have left.
 */
const SLACK_MS = 1000

describe.skipIf(skipRedisSuites())('a handoff write held behind a burst', () => {
  const suite = fakeClusterSuite()

  const handoffKey = (cluster: FakeCluster, sid: string) => `${cluster.prefix}:handoff:${sidHash(sid)}`

  /**
   * A node whose every command is held in a burst (its requestTimeout well past the hold, so
   * that the write waits its turn rather than being refused) when `sid` is handed off there for
   * `ttl` ms; the burst let go after `HELD_MS`. Resolves with the moment right before the
   * handoff was asked (`performance.now()`) and its answer.
   */
  async function handedOffInBurst(sid: string, ttl: number) {
    const cluster = suite.cluster({ requestTimeout: 10_000 })
    const [a] = await cluster.start(1)
    const socket = await open(a!, sid, `${sid}-socket`)
    const burst = await queueFilledOn(a!, 0)
    const asked = performance.now()
    const answer = handOff(a!, socket, sid, [], ttl)
    await sleep(HELD_MS)
    // Still waiting its turn: nothing of it reached the connection.
    expect(a!.commands.some((args) => args.includes(handoffKey(cluster, sid)))).toBe(false)
    await burst.release()
    return { cluster, a: a!, asked, stored: await answer }
  }

  it('lives until the end of the window it was given, not a whole ttl from its turn', async () => {
    const sid = 'sid-handoff-in-burst'
    const ttl = 3 * HELD_MS
    const { cluster, a, asked, stored } = await handedOffInBurst(sid, ttl)
    expect(stored).toBe(true)
    const read = performance.now()
    const left = await a.redis.pTTL(handoffKey(cluster, sid))
    // Given its whole ttl at its turn, it would have about `ttl` left; it has at most what was
    // left of it from the ask (the clock of this process is the node's own).
    expect(left).toBeGreaterThan(0)
    expect(left).toBeLessThanOrEqual(ttl - (read - asked) + SLACK_MS)
    // The owner record that says "handing off" lives as long.
    const owner = await a.redis.pTTL(`${cluster.prefix}:session:${sidHash(sid)}`)
    expect(owner).toBeLessThanOrEqual(ttl - (read - asked) + SLACK_MS)
  })

  it('is not written once its window ran out while it waited its turn', async () => {
    const sid = 'sid-handoff-in-burst-too-late'
    const { cluster, a, stored } = await handedOffInBurst(sid, HELD_MS / 2)
    expect(stored).toBe(false)
    expect(a.commands.some((args) => args.includes(handoffKey(cluster, sid)))).toBe(false)
    expect(await a.redis.exists(handoffKey(cluster, sid))).toBe(0)
  })
})
