// The adoption bench's harness on a small run, so that it cannot rot: two nodes and a Redis,
// 20 away sessions, every one adopted by the live node, with figures that make sense. Never a
// speed target: the machine running the tests is busy with other tests.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { redisRequired, redisServerPath } from '../../test/support/redis-server.ts'
import { adoptionRun, adoptionTable } from '../src/adoption.ts'

const builtRedis = existsSync(
  fileURLToPath(new URL('../node_modules/@parley/redis/dist/index.js', import.meta.url)),
)
const skip = (!redisServerPath && !redisRequired) || !builtRedis

describe.skipIf(skip)('the adoption bench', () => {
  it('has the live node adopt every away session of a drained one, and reports its cost per session', async () => {
    const sessions = 20
    const row = await adoptionRun(sessions)
    expect(row.adoptedByDeadline).toBe(sessions)
    expect(row.adopted).toBe(sessions)
    expect(row.spanMs).toBeGreaterThanOrEqual(0)
    expect(row.cpuMsPerSession).toBeGreaterThan(0)
    // A claim script's share, the tail's read and the claim marker at least.
    expect(row.commandsPerSession).toBeGreaterThan(1)
    expect(row.byCommand.PUBLISH).toBeGreaterThan(0)
    expect(adoptionTable([row])).toContain(`| ${sessions} | ${sessions} | ${sessions} |`)
  }, 60_000)
})
