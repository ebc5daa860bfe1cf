// A PUBLISH that takes its turn behind a burst (`Publisher.publishInTurn`: a claim's marker) and
// is refused before it goes says why once: the refusal of `Commands` names the Redis address and
// its reason already, and wrapped again it read "Redis at X is not reachable (@parley/redis:
// Redis at X is not reachable (...))". The error itself stays available as the `cause`.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Commands, MAX_QUEUED_COMMANDS, MAX_UNANSWERED_COMMANDS } from '../src/commands.js'
import type { RedisClient } from '../src/options.js'
import { Publisher } from '../src/publish.js'
import { RedisBusyError, RedisErrorCode, RedisUnreachableError } from '../src/send.js'
import { Warnings } from '../src/warnings.js'

/** A connected client whose commands Redis never answers. */
function silentClient(): RedisClient {
  return {
    isOpen: true,
    isReady: true,
    sendCommand: () => new Promise(() => {}),
    duplicate: () => {
      throw new Error('not used')
    },
    on: () => {},
    off: () => {},
  }
}

/** What a `PublishFailed` was told. */
interface Failure {
  why: string
  sent: boolean
  code: string
  cause: unknown
}

/** A publisher on `commands` whose connection holds `MAX_UNANSWERED_COMMANDS` unanswered ones. */
function burst(commands: Commands) {
  const warned: string[] = []
  const publisher = new Publisher(
    commands,
    300,
    new Warnings({ warn: (_details, message) => warned.push(message) }),
  )
  for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++)
    commands.send(['PUBLISH', 'channel', String(i)]).catch(() => undefined)
  return { publisher, warned }
}

/** Publishes in turn on `publisher`: resolves with what its `failed` was told. */
function failure(publisher: Publisher): Promise<Failure> {
  return new Promise((resolve, reject) => {
    publisher.publishInTurn(
      'channel',
      { k: 'marker' },
      (why, sent, code, cause) => resolve({ why, sent, code, cause }),
      () => reject(new Error('answered')),
    )
  })
}

afterEach(() => {
  vi.useRealTimers()
})

describe('a PUBLISH refused while it waits its turn', () => {
  it('says once that Redis is not reachable, and why, with the refusal as its cause', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const commands = new Commands(silentClient(), 300)
    const { publisher, warned } = burst(commands)
    const failed = failure(publisher)
    // The commands ahead of it go unanswered past the bound: it is refused unsent.
    vi.advanceTimersByTime(300)
    const { why, sent, code, cause } = await failed
    expect(why).toBe(
      `Redis at ${commands.address} is not reachable (it has left ${MAX_UNANSWERED_COMMANDS} command(s) unanswered for 300 ms or more)`,
    )
    expect(sent).toBe(false)
    expect(code).toBe(RedisErrorCode.UNREACHABLE)
    expect(cause).toBeInstanceOf(RedisUnreachableError)
    expect((cause as RedisUnreachableError).message).toBe(`@parley/redis: ${why}`)
    expect(warned).toEqual([])
    commands.stop()
  })

  it('says once that a burst fills the queue, not that Redis is unreachable', async () => {
    // Faked, so that the bounds of the commands left unanswered never run after the test.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const commands = new Commands(silentClient(), 300)
    const { publisher } = burst(commands)
    for (let i = 0; i < MAX_QUEUED_COMMANDS; i++)
      commands.sendInTurn(['SET', `record-${i}`, 'node']).catch(() => undefined)
    const { why, sent, code, cause } = await failure(publisher)
    expect(why).toBe(
      `Redis at ${commands.address} has ${MAX_UNANSWERED_COMMANDS} command(s) of this node unanswered and ${MAX_QUEUED_COMMANDS} waiting behind them, the most that wait (MAX_QUEUED_COMMANDS): PUBLISH not sent`,
    )
    expect(sent).toBe(false)
    expect(code).toBe(RedisErrorCode.BUSY)
    expect(cause).toBeInstanceOf(RedisBusyError)
    commands.stop()
  })
})
