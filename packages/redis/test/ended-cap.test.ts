// The bound on the records of ended sessions one node keeps in Redis (MAX_ENDED_RECORDS), over
// time: a record counts from Redis's answer to its SET until its TTL runs out, and once earlier
// records expired the node writes again. The commands go to a stand-in for Redis that answers
// every SET; the clock is the test's (ended-elsewhere.test.ts holds the bound on a real Redis).
import { CloseReason, PacketType } from '@parley/protocol'
import { MAX_ENDED_RECORDS } from '@parley/redis'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Commands } from '../src/commands.js'
import { EndedRecords } from '../src/ended.js'
import { argsNow, type MadeArgs } from '../src/made-args.js'
import { Warnings } from '../src/warnings.js'

afterEach(() => {
  vi.useRealTimers()
})

const ending = {
  close: { type: PacketType.CLOSE, reason: CloseReason.SERVER_DISCONNECT, message: 'bye' },
  ack: 0,
} as const

/** Records over a Redis that answers every SET on the next turn; the keys it was sent, in order. */
function records() {
  const sets: string[] = []
  const send = async (args: string[]) => {
    if (args[0] === 'SET') sets.push(args[1]!)
    return 'OK'
  }
  // No burst here: a command in turn is made and goes at once, as `send` (see `MadeArgs`).
  const sendInTurn = async (args: MadeArgs) => {
    const now = argsNow(args)
    return now === undefined ? undefined : send(now)
  }
  const commands = { client: { isReady: true }, send, sendInTurn } as unknown as Commands
  const lines: string[] = []
  const warnings = new Warnings({ warn: (_details, message) => lines.push(message) })
  return { ended: new EndedRecords(commands, 'p', warnings), sets, lines }
}

describe('the records of ended sessions one node keeps in Redis', () => {
  it('are written again once those before them expired, never more than MAX_ENDED_RECORDS alive', async () => {
    vi.useFakeTimers({ toFake: ['performance'] })
    const { ended, sets, lines } = records()
    for (let i = 0; i < MAX_ENDED_RECORDS; i++) ended.write(`s${i}`, ending, 1000)
    // Not answered yet: they count all the same.
    ended.write('early', ending, 1000)
    await vi.advanceTimersByTimeAsync(0)
    expect(sets).toHaveLength(MAX_ENDED_RECORDS)
    vi.advanceTimersByTime(999)
    ended.write('late', ending, 1000)
    expect(sets).not.toContain(ended.key('late'))
    expect(lines.filter((line) => line.includes(`${MAX_ENDED_RECORDS} records`))).toHaveLength(1)
    vi.advanceTimersByTime(1)
    ended.write('after', ending, 1000)
    await vi.advanceTimersByTimeAsync(0)
    expect(sets.at(-1)).toBe(ended.key('after'))
    expect(sets).toHaveLength(MAX_ENDED_RECORDS + 1)
    expect(sets).not.toContain(ended.key('early'))
  })
})
