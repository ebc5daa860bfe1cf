// The bound on commands Redis leaves unanswered (see src/commands.ts): once one is given up at
// `timeout`, nothing more goes until Redis answers. The give-up and the bound must judge that
// wait by one clock: Node's timers may fire when the wall clock says a millisecond less passed,
// and a command sent then (the probe of a broadcast given up) would run behind the one held.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Commands, MAX_UNANSWERED_COMMANDS } from '../src/commands.js'
import type { RedisClient } from '../src/options.js'
import { RedisUnreachableError } from '../src/send.js'

/** A connected client whose commands Redis never answers: what it was sent, in order. */
function silentClient() {
  const sent: string[][] = []
  const client: RedisClient = {
    isOpen: true,
    isReady: true,
    sendCommand: (args) => {
      sent.push(args)
      return new Promise(() => {})
    },
    duplicate: () => {
      throw new Error('not used')
    },
    on: () => {},
    off: () => {},
  }
  return { client, sent }
}

/** A connected client whose commands Redis answers ('OK') when the test says: what it was sent. */
function answeringClient() {
  const sent: string[][] = []
  const answers: ((reply: unknown) => void)[] = []
  const client: RedisClient = {
    isOpen: true,
    isReady: true,
    sendCommand: (args) => {
      sent.push(args)
      return new Promise((resolve) => answers.push(resolve))
    },
    duplicate: () => {
      throw new Error('not used')
    },
    on: () => {},
    off: () => {},
  }
  const answerAll = () => {
    for (const answer of answers.splice(0)) answer('OK')
  }
  return { client, sent, answerAll }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('the bound on unanswered commands', () => {
  it('sends nothing once a command was given up at its timeout, whatever the wall clock says', async () => {
    // Timers faked, the wall clock not: when the give-up fires, Date.now() says almost no time
    // passed, the most a clock read beside the timers can lag them.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { client, sent } = silentClient()
    const commands = new Commands(client, 300)
    const first = commands.send(['PUBLISH', 'channel', 'first'])
    const givenUp = expect(first).rejects.toThrow('no answer to PUBLISH within 300 ms')
    vi.advanceTimersByTime(300)
    await givenUp
    // What reacts to the give-up (a probe) finds Redis unavailable, and nothing is sent.
    expect(commands.unavailable()).toBe('it has left 1 command(s) unanswered for 300 ms or more')
    await expect(commands.send(['PUBLISH', 'channel', 'probe'])).rejects.toBeInstanceOf(RedisUnreachableError)
    expect(sent).toEqual([['PUBLISH', 'channel', 'first']])
    commands.stop()
  })

  it('counts an undo left unanswered that long too', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { client, sent } = silentClient()
    const commands = new Commands(client, 300)
    void commands.undo(['EVAL', 'undo', '0'], 60_000)
    expect(commands.unavailable()).toBeUndefined()
    vi.advanceTimersByTime(300)
    // The verdict waits a turn once the timer ran (see stalled-commands.test.ts).
    await new Promise((resolve) => setImmediate(resolve))
    expect(commands.unavailable()).toBe('it has left 1 command(s) unanswered for 300 ms or more')
    await expect(commands.send(['PUBLISH', 'channel', 'next'])).rejects.toBeInstanceOf(RedisUnreachableError)
    expect(sent).toEqual([['EVAL', 'undo', '0']])
    commands.stop()
  })

  it('refuses a command waiting for its turn once one ahead of it is given up, without sending it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { client, sent } = silentClient()
    const commands = new Commands(client, 300)
    const ahead = Array.from({ length: MAX_UNANSWERED_COMMANDS }, (_, i) =>
      commands.send(['PUBLISH', 'channel', String(i)]).catch(() => undefined),
    )
    const waiting = commands.sendInTurn(['SET', 'record', 'node'])
    const refused = expect(waiting).rejects.toThrow(
      `it has left ${MAX_UNANSWERED_COMMANDS} command(s) unanswered for 300 ms`,
    )
    vi.advanceTimersByTime(300)
    await refused
    await Promise.all(ahead)
    expect(sent).toHaveLength(MAX_UNANSWERED_COMMANDS)
    commands.stop()
  })

  it('sends at stop the commands waiting their turn behind a full bound, and the close’s own after them', async () => {
    const { client, sent, answerAll } = answeringClient()
    const commands = new Commands(client, 60_000)
    const ahead = Array.from({ length: MAX_UNANSWERED_COMMANDS }, (_, i) =>
      commands.send(['PUBLISH', 'channel', String(i)]),
    )
    const waiting = commands.sendInTurn(['EVAL', 'ended', '0'])
    expect(sent).toHaveLength(MAX_UNANSWERED_COMMANDS)
    commands.stop()
    // The goodbye, as the adapter's close sends it once stopped.
    const goodbye = commands.send(['SET', 'left', '1'])
    expect(sent.slice(MAX_UNANSWERED_COMMANDS)).toEqual([
      ['EVAL', 'ended', '0'],
      ['SET', 'left', '1'],
    ])
    answerAll()
    await expect(waiting).resolves.toBe('OK')
    await expect(goodbye).resolves.toBe('OK')
    await Promise.all(ahead)
  })
})
