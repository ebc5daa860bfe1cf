// The adapter's warnings: at most one line per kind every 10 s, and what was held back said when
// the adapter closes, so that the last counts of an outage are not lost; after that, at the end of
// their turn.
import { redisAdapter } from '@parley/redis'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { MAX_HELD_MESSAGES, WARN_INTERVAL, Warnings } from '../src/warnings.js'
import { FakeSockets } from './handoff-support.js'

describe.skipIf(skipRedisSuites())("the adapter's warnings", () => {
  let redis: RedisServer

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(() => redis?.stop())

  it('are one line per kind at once, and the rest with its count at close', async () => {
    const client = createClient({ url: redis.url })
    await client.connect()
    const lines: { message: string; times: unknown }[] = []
    const adapter = redisAdapter({
      client,
      prefix: 'warnings',
      log: { warn: (details, message) => lines.push({ message, times: details.times }) },
    })(new FakeSockets())
    try {
      await adapter.ready()
      // Three messages on the nodes' channel that no node could have sent.
      for (let i = 0; i < 3; i++) await client.publish('warnings:membership', 'not a message')
      await until(() => lines.length === 1)
      // Heard by then: a PING answered comes after the messages published before it.
      await client.ping()
      const heard = 'a message from another node was malformed and was dropped'
      expect(lines).toEqual([{ message: `@parley/redis: ${heard}`, times: 1 }])
      await adapter.close()
      expect(lines).toEqual([
        { message: `@parley/redis: ${heard}`, times: 1 },
        { message: `@parley/redis: ${heard}`, times: 2 },
      ])
    } finally {
      await adapter.close()
      await client.quit()
    }
  })
})

describe('warnings held back', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  /** A `Warnings` on fake time, and the lines it wrote: message (without the prefix) and `times`. */
  function watched() {
    vi.useFakeTimers({ toFake: ['Date', 'performance', 'setTimeout', 'clearTimeout'] })
    const lines: [string, unknown][] = []
    const warnings = new Warnings({
      warn: (details, message) => lines.push([message.replace('@parley/redis: ', ''), details.times]),
    })
    return { warnings, lines }
  }

  it('are said when their kind’s interval ends, each message as itself, with its own count', () => {
    const { warnings, lines } = watched()
    warnings.warn('handoff', 'refused')
    vi.advanceTimersByTime(1000)
    warnings.warn('handoff', 'unanswered')
    warnings.warn('handoff', 'refused')
    warnings.warn('handoff', 'unanswered')
    warnings.warn('other', 'at once')
    expect(lines).toEqual([
      ['refused', 1],
      ['at once', 1],
    ])
    // Not kept back until the next line of the kind, which may never come, nor merged into it.
    vi.advanceTimersByTime(WARN_INTERVAL - 1000)
    expect(lines.slice(2)).toEqual([
      ['unanswered', 2],
      ['refused', 1],
    ])
    // Those lines open a new interval: the next is held again, and said at its end.
    warnings.warn('handoff', 'refused')
    expect(lines).toHaveLength(4)
    vi.advanceTimersByTime(WARN_INTERVAL)
    expect(lines.slice(4)).toEqual([['refused', 1]])
    // An interval that held nothing is over with no line: the next is written at once.
    vi.advanceTimersByTime(WARN_INTERVAL)
    warnings.warn('handoff', 'unanswered')
    expect(lines.slice(5)).toEqual([['unanswered', 1]])
  })

  it('are all said at close, each message of a kind as itself', () => {
    const { warnings, lines } = watched()
    warnings.warn('goodbye', 'the mark was refused')
    warnings.warn('goodbye', 'the record was not removed')
    warnings.warn('goodbye', 'the others were not told')
    warnings.close()
    expect(lines).toEqual([
      ['the mark was refused', 1],
      ['the record was not removed', 1],
      ['the others were not told', 1],
    ])
    // Nothing is said twice once the interval would have ended.
    vi.advanceTimersByTime(WARN_INTERVAL)
    expect(lines).toHaveLength(3)
  })

  it('are said at the end of their turn after close: an interval’s timer would not keep the process alive to say them', async () => {
    const { warnings, lines } = watched()
    warnings.warn('handoff', 'refused')
    warnings.warn('handoff', 'refused')
    warnings.close()
    expect(lines).toEqual([
      ['refused', 1],
      ['refused', 1],
    ])
    // Commands in flight at the close that fail late, many in one turn: one line per message.
    warnings.warn('handoff', 'unanswered')
    warnings.warn('handoff', 'unanswered')
    warnings.warn('other', 'refused')
    await new Promise((resolve) => setImmediate(resolve))
    // One more in a later turn: said as soon.
    warnings.warn('handoff', 'unanswered')
    await new Promise((resolve) => setImmediate(resolve))
    expect(lines.slice(2)).toEqual([
      ['unanswered', 2],
      ['refused', 1],
      ['unanswered', 1],
    ])
    expect(vi.getTimerCount()).toBe(0)
  })

  it(`hold at most ${MAX_HELD_MESSAGES} messages of a kind: the last stands for the rest, with the latest`, () => {
    const { warnings, lines } = watched()
    warnings.warn('lost-broadcast', 'first')
    for (let i = 0; i < MAX_HELD_MESSAGES + 5; i++) warnings.warn('lost-broadcast', `why ${i}`)
    warnings.close()
    const held = lines.slice(1)
    expect(held).toHaveLength(MAX_HELD_MESSAGES)
    expect(held.at(-2)).toEqual([`why ${MAX_HELD_MESSAGES - 2}`, 1])
    expect(held.at(-1)).toEqual([`why ${MAX_HELD_MESSAGES + 4}`, 6])
  })
})
