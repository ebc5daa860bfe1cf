// The undos an adapter keeps until Redis answers them: what `add` returns says when the undo is
// over (answered, or given up), which the server waits for before it runs what a client sent
// a session whose move was given up on (see `HandingOff.withdrawHandOff`).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { Commands } from '../src/commands.js'
import type { RedisClient } from '../src/options.js'
import { MAX_KEPT_UNDOS, Undos } from '../src/undos.js'
import { connectedClient } from './e2e-suite.js'
import { isSettled } from './settled.js'

/** A client whose connection the test turns on and off; what is sent waits for `answer`. */
function fakeClient() {
  const listeners = new Set<() => void>()
  const client = {
    isOpen: true,
    isReady: true,
    sendCommand: () => Promise.reject(new Error('not used')),
    duplicate: () => {
      throw new Error('not used')
    },
    on: (_event: 'ready', listener: () => void) => listeners.add(listener),
    off: (_event: 'ready', listener: () => void) => listeners.delete(listener),
  }
  const sent: { args: string[]; answer: (reply: unknown) => void; fail: (err: unknown) => void }[] = []
  const send = (args: string[]) =>
    new Promise<unknown>((answer, fail) => {
      sent.push({ args, answer, fail })
    })
  return { client: client as unknown as RedisClient, state: client, sent, send }
}

describe('Undos', () => {
  it('resolves an undo once Redis answered it, after telling `answered`', async () => {
    const { client, sent, send } = fakeClient()
    const undos = new Undos(client, send, () => {})
    const replies: unknown[] = []
    const over = undos.add(['EVAL', 'undo'], 60_000, (reply) => replies.push(reply))
    expect(await isSettled(over)).toBe(false)
    sent[0]!.answer(3)
    await over
    expect(replies).toEqual([3])
  })

  it('keeps an undo whose connection dropped, unresolved, until the next connection answers it', async () => {
    const { client, state, sent, send } = fakeClient()
    const undos = new Undos(client, send, () => {})
    const over = undos.add(['EVAL', 'undo'], 60_000)
    state.isReady = false
    sent[0]!.fail(new Error('connection dropped'))
    expect(await isSettled(over)).toBe(false)
    state.isReady = true
    undos.flush()
    expect(sent).toHaveLength(2)
    sent[1]!.answer(1)
    expect(await isSettled(over)).toBe(true)
  })

  it('resolves an undo Redis refused, expired, or pushed out by newer ones: each given up', async () => {
    const { client, state, sent, send } = fakeClient()
    const givenUp: string[] = []
    const undos = new Undos(client, send, (why) => givenUp.push(why))
    const refused = undos.add(['EVAL', 'refused'], 60_000)
    sent[0]!.fail(new Error('ERR'))
    expect(await isSettled(refused)).toBe(true)
    // Not connected: kept, past its time given up at the next look.
    state.isReady = false
    const expired = undos.add(['EVAL', 'expired'], 0)
    await new Promise((resolve) => setTimeout(resolve, 5))
    const pushedOut = undos.add(['EVAL', 'oldest'], 60_000)
    expect(await isSettled(expired)).toBe(true)
    for (let i = 0; i < MAX_KEPT_UNDOS; i++) void undos.add(['EVAL', `newer ${i}`], 60_000)
    expect(await isSettled(pushedOut)).toBe(true)
    expect(givenUp).toEqual([
      'Redis refused it',
      'what it would take back has expired meanwhile',
      `more than ${MAX_KEPT_UNDOS} waited for Redis`,
    ])
  })

  it('makes an undo built as it goes again at each try, and gives it up once it has nothing left to do', async () => {
    const { client, state, sent, send } = fakeClient()
    const givenUp: string[] = []
    const undos = new Undos(client, send, (why) => givenUp.push(why))
    let tries = 0
    const over = undos.add(() => {
      tries++
      return tries <= 2 ? ['SET', 'k', 'v', 'PX', String(1000 - tries)] : undefined
    }, 60_000)
    for (const _ of [1, 2]) {
      state.isReady = false
      sent.at(-1)!.fail(new Error('connection dropped'))
      // Undos hears of the drop once the refusal's microtasks ran.
      await new Promise((resolve) => setImmediate(resolve))
      state.isReady = true
      undos.flush()
    }
    // Made at each of its three tries: the third had nothing left to send.
    expect(sent.map(({ args }) => args.join(' '))).toEqual(['SET k v PX 999', 'SET k v PX 998'])
    expect(await isSettled(over)).toBe(true)
    expect(givenUp).toEqual(['what it would take back has expired meanwhile'])
  })

  it('counts the undos given one place as one, and gives them up together once theirs is the oldest pushed out', async () => {
    const { client, state, send } = fakeClient()
    const givenUp: string[] = []
    const undos = new Undos(client, send, (why) => givenUp.push(why))
    state.isReady = false
    // A session's record of how it ended, then the other places but one taken.
    const record = undos.add(['SET', 'record'], 60_000, undefined, 'session')
    const others = Array.from({ length: MAX_KEPT_UNDOS - 1 }, (_, i) =>
      undos.add(['EVAL', `other ${i}`], 60_000),
    )
    // Every place taken: the withdrawal behind the record takes none of its own.
    const withdrawal = undos.add(['EVAL', 'withdraw'], 60_000, undefined, 'session')
    expect(givenUp).toEqual([])
    expect(await isSettled(record)).toBe(false)
    // One more pushes the oldest place out: the record, and the withdrawal with it.
    void undos.add(['EVAL', 'newest'], 60_000)
    expect(await isSettled(record)).toBe(true)
    expect(await isSettled(withdrawal)).toBe(true)
    expect(await isSettled(others[0]!)).toBe(false)
    expect(givenUp).toEqual([`more than ${MAX_KEPT_UNDOS} waited for Redis`])
  })

  describe('past its time', () => {
    // The clocks and the timers only: what settles the undo is the expiry timer alone, with no other
    // call into Undos to look again (isSettled's setImmediate stays real).
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    })
    afterEach(() => {
      vi.useRealTimers()
    })

    it('gives up an undo that waits for the connection at its time, with no other undo or command', async () => {
      const { client, state, send } = fakeClient()
      const givenUp: string[] = []
      const undos = new Undos(client, send, (why) => givenUp.push(why))
      state.isReady = false
      const later = undos.add(['EVAL', 'later'], 5000)
      const sooner = undos.add(['EVAL', 'sooner'], 1000)
      vi.advanceTimersByTime(999)
      expect(await isSettled(sooner)).toBe(false)
      vi.advanceTimersByTime(1)
      expect(await isSettled(sooner)).toBe(true)
      expect(await isSettled(later)).toBe(false)
      expect(givenUp).toEqual(['what it would take back has expired meanwhile'])
      vi.advanceTimersByTime(4000)
      expect(await isSettled(later)).toBe(true)
      expect(givenUp).toHaveLength(2)
      // Nothing is left to wait for: no timer either.
      expect(vi.getTimerCount()).toBe(0)
    })

    it('gives up at its time an undo whose connection dropped while it was sent', async () => {
      const { client, state, sent, send } = fakeClient()
      const undos = new Undos(client, send, () => {})
      const over = undos.add(['EVAL', 'undo'], 1000)
      // On the connection: its answer is awaited, past its time too.
      vi.advanceTimersByTime(2000)
      expect(await isSettled(over)).toBe(false)
      state.isReady = false
      sent[0]!.fail(new Error('connection dropped'))
      await isSettled(over)
      vi.advanceTimersByTime(0)
      expect(await isSettled(over)).toBe(true)
      expect(sent).toHaveLength(1)
    })

    it('keeps no timer once stopped, and gives up the undos that wait', async () => {
      const { client, state, sent, send } = fakeClient()
      const undos = new Undos(client, send, () => {})
      const onTheWire = undos.add(['EVAL', 'sent'], 60_000)
      state.isReady = false
      const waiting = undos.add(['EVAL', 'waiting'], 60_000)
      expect(vi.getTimerCount()).toBe(1)
      undos.stop()
      expect(vi.getTimerCount()).toBe(0)
      expect(await isSettled(waiting)).toBe(true)
      // The one on the connection still settles with Redis' answer.
      expect(await isSettled(onTheWire)).toBe(false)
      sent[0]!.answer(1)
      expect(await isSettled(onTheWire)).toBe(true)
    })
  })
})

describe.skipIf(skipRedisSuites())('undos on a real Redis that went away', () => {
  it('gives up one past its time while Redis stays away, and sends one still kept once Redis is back', async () => {
    const redis = await startRedis()
    const client = await connectedClient(redis.url)
    const givenUp: string[] = []
    const commands = new Commands(client as unknown as RedisClient, 2000, (why) => givenUp.push(why))
    try {
      await redis.stop()
      await until(() => !client.isReady, 5000, 'the client to see Redis gone')
      const expired = commands.undo(['SET', 'parley:test:expired', '1'], 300)
      const kept = commands.undo(['SET', 'parley:test:kept', '1'], 60_000)
      // Nothing else is sent meanwhile: only its own time can settle it.
      await within(expired, 3000, 'the undo past its time to be given up')
      expect(givenUp).toEqual(['what it would take back has expired meanwhile'])
      await redis.restart()
      await within(kept, 5000, 'the kept undo to go once Redis is back')
      expect(await client.get('parley:test:kept')).toBe('1')
      expect(await client.get('parley:test:expired')).toBeNull()
    } finally {
      commands.stop()
      if (client.isOpen) client.destroy()
      await redis.stop()
    }
  })
})
