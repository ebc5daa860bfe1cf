// An operator who reads that the adapter's subscriber connection failed must also read when it
// is back: without that line the last ones of the outage (held back, said up to 10 s later with
// how many times they came) read as a trouble still going on.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { stepWallClock } from '../../server/test/wall-clock.js'
import { inbox, Nodes, redisSuite } from './nodes.js'

/** How long Redis stays away: long enough for node-redis to fail a reconnection or two. */
const AWAY_MS = 1500

describe.skipIf(skipRedisSuites())('the subscriber connection back after Redis was away', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  it('says once that it is up again, after the lines of its failure, with how long it was down', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    b0.socket.join('room')
    const got = inbox(b0.client)
    const failed = (message: string) =>
      message.includes('subscriber connection') && message.endsWith('by itself')
    const back = (message: string) =>
      message.includes('subscriber connection') && message.includes('up again')

    await suite.redis.stop()
    const stoppedAt = performance.now()
    await until(() => b!.warnings.some(failed), 5000, "b's subscriber failure logged")
    await new Promise((resolve) => setTimeout(resolve, AWAY_MS))
    expect(b!.warnings.some(back)).toBe(false)
    await suite.redis.restart()
    await until(() => b!.warnings.some(back), 10_000, "b's subscriber back, logged")

    // One line for the outage, after every line of its failure (those held back come first).
    const lines = b!.warned.filter(({ message }) => failed(message) || back(message))
    expect(lines.filter(({ message }) => back(message))).toHaveLength(1)
    expect(back(lines.at(-1)!.message)).toBe(true)
    expect(lines.at(-1)!.message).toContain(`@parley/redis: the subscriber connection to ${suite.redis.url}`)
    const { downMs } = lines.at(-1)!.details as { downMs: number }
    expect(downMs).toBeGreaterThanOrEqual(AWAY_MS)
    expect(downMs).toBeLessThanOrEqual(performance.now() - stoppedAt + 1000)

    // What it says holds: b hears a's broadcasts again.
    await until(
      () => {
        a!.app.parley.to('room').emit('news', 'after')
        return got.includes('after')
      },
      5000,
      "a's broadcast reaches b",
    )
  }, 25_000)

  it('says how long it was down by the monotonic clock, whatever the wall clock did meanwhile', async () => {
    nodes = new Nodes()
    const [, b] = await nodes.cluster(suite.redis.url, 2)
    const failed = (message: string) =>
      message.includes('subscriber connection') && message.endsWith('by itself')
    const back = (message: string) =>
      message.includes('subscriber connection') && message.includes('up again')
    try {
      // Taken before the stop: the subscriber may see its connection drop before stop() resolves.
      const stoppedAt = performance.now()
      await suite.redis.stop()
      await until(() => b!.warnings.some(failed), 5000, "b's subscriber failure logged")
      // NTP steps the wall clock an hour back while Redis is away.
      stepWallClock(-60 * 60 * 1000)
      await suite.redis.restart()
      await until(() => b!.warnings.some(back), 10_000, "b's subscriber back, logged")
      const line = b!.warned.find(({ message }) => back(message))!
      const { downMs } = line.details as { downMs: number }
      expect(downMs).toBeGreaterThan(0)
      expect(downMs).toBeLessThanOrEqual(performance.now() - stoppedAt)
      expect(line.message).toContain(`, ${downMs} ms after it failed`)
    } finally {
      vi.restoreAllMocks()
    }
  })
})
