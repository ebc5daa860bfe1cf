// A question asked of a socket a takeover joined, its tail not read yet: the count waits for the
// read and leaves that socket out when its old node kept the session, every reply coming after
// the count. The orders the two-node test cannot pick (a reply after the read, a count of the
// other sockets that comes after it) are played here on a scripted ask.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it, vi } from 'vitest'
import { until } from '../../server/test/helpers.js'
import type { AskWithAck } from '../src/held-questions.js'
import { askCountingTakeovers, UnreadTakeovers } from '../src/unread-takeovers.js'
import { asking } from './ask-holding.js'

/**
 * An ask of `sockets`: each one `only` lets through is counted, at once or when `count()` is
 * called, and replies (its id as the value) when `reply(id)` is called.
 */
function scripted(sockets: string[], countLater = false) {
  const replies = new Map<string, (made: BroadcastReply) => void>()
  const counts: (() => void)[] = []
  const ask: AskWithAck = (_message, _options, _timeout, expectCount, reply, only) => {
    const asked = sockets.filter((id) => !only || only(id))
    for (const id of asked) replies.set(id, reply)
    const give = () => expectCount(asked.length)
    if (countLater) counts.push(give)
    else give()
    // Nothing held here to give at once.
    return undefined
  }
  return {
    ask,
    count: () => {
      for (const give of counts.splice(0)) give()
    },
    reply: (id: string) => replies.get(id)?.({ ok: true, value: id }),
  }
}

describe('a question asked of a socket whose takeover has not read its tail', () => {
  it('is asked as before when no takeover waits', () => {
    const script = scripted(['s1', 's2'])
    const seen = asking(askCountingTakeovers(script.ask, new UnreadTakeovers()))
    script.reply('s2')
    expect(seen).toEqual(['count 2', 's2'])
  })

  it('counts the socket taken over once its tail is read, its reply and the others after the count', () => {
    const script = scripted(['taken', 'other'])
    const unread = new UnreadTakeovers()
    unread.joined('taken')
    const seen = asking(askCountingTakeovers(script.ask, unread))
    script.reply('taken')
    script.reply('other')
    expect(seen).toEqual([])
    unread.read('taken', false)
    expect(seen).toEqual(['count 2', 'other', 'taken'])
    // Read already: a question now is counted at once.
    expect(asking(askCountingTakeovers(script.ask, unread))).toEqual(['count 2'])
  })

  it('leaves out the socket its old node kept, and drops its reply, before or after the read', () => {
    const script = scripted(['kept', 'other'])
    const unread = new UnreadTakeovers()
    unread.joined('kept')
    const ask = askCountingTakeovers(script.ask, unread)
    const before = asking(ask)
    script.reply('kept')
    const after = asking(ask)
    unread.read('kept', true)
    // The server drops its copy: what it was asked after the read fails, and is not counted.
    script.reply('kept')
    script.reply('other')
    expect(before).toEqual(['count 1'])
    expect(after).toEqual(['count 1', 'other'])
  })

  it('waits for the count of the other sockets when it comes after the read', () => {
    const script = scripted(['taken', 'other'], true)
    const unread = new UnreadTakeovers()
    unread.joined('taken')
    const seen = asking(askCountingTakeovers(script.ask, unread))
    unread.read('taken', false)
    expect(seen).toEqual([])
    script.count()
    script.reply('taken')
    expect(seen).toEqual(['count 2', 'taken'])
  })

  it('waits past an unsealed read for the confirm, which may find the session kept', () => {
    const script = scripted(['kept', 'other'])
    const unread = new UnreadTakeovers()
    unread.joined('kept')
    const seen = asking(askCountingTakeovers(script.ask, unread))
    // Read without the seal: the wait goes on for the confirm.
    unread.unconfirmed('kept', 60_000)
    expect(seen).toEqual([])
    unread.read('kept', true)
    script.reply('kept')
    script.reply('other')
    expect(seen).toEqual(['count 1', 'other'])
    expect(unread.empty).toBe(true)
  })

  it('counts the socket when no confirm comes within its bound', async () => {
    const script = scripted(['taken'])
    const unread = new UnreadTakeovers()
    unread.joined('taken')
    const seen = asking(askCountingTakeovers(script.ask, unread))
    unread.unconfirmed('taken', 10)
    await until(() => seen.length > 0, 2000, 'the count at the bound')
    expect(seen).toEqual(['count 1'])
    expect(unread.empty).toBe(true)
  })

  it('gives every count it holds when the adapter closes', () => {
    const script = scripted(['read', 'unconfirmed'])
    const unread = new UnreadTakeovers()
    unread.joined('read')
    unread.joined('unconfirmed')
    unread.unconfirmed('unconfirmed', 60_000)
    const seen = asking(askCountingTakeovers(script.ask, unread))
    unread.close()
    expect(seen).toEqual(['count 2'])
    expect(unread.empty).toBe(true)
  })

  it('passes on a reply made while the held ones are passed on, behind them', () => {
    const script = scripted(['taken', 'first', 'second'])
    const unread = new UnreadTakeovers()
    unread.joined('taken')
    const seen = asking(askCountingTakeovers(script.ask, unread), {
      // Its taker makes another socket reply at once (a socket failed as the first is taken).
      onReply: (value) => {
        if (value === 'first') script.reply('second')
      },
    })
    script.reply('first')
    unread.read('taken', false)
    expect(seen).toEqual(['count 3', 'first', 'second'])
  })

  it('holds no socket a takeover joins after the adapter closed, and keeps no timer for it', () => {
    vi.useFakeTimers()
    try {
      const script = scripted(['late'])
      const unread = new UnreadTakeovers()
      unread.close()
      // A takeover under way at the close joins its socket, and reads its tail unsealed, after it.
      unread.joined('late')
      unread.unconfirmed('late', 60_000)
      expect(vi.getTimerCount()).toBe(0)
      expect(unread.empty).toBe(true)
      expect(asking(askCountingTakeovers(script.ask, unread))).toEqual(['count 1'])
    } finally {
      vi.useRealTimers()
    }
  })

  it("gives the count it has at the question's timeout, the socket whose tail is unread left out", () => {
    // The timeout's verdict waits a turn (see answers-first-timer.ts): that turn is faked too.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })
    try {
      const script = scripted(['taken', 'other'])
      const unread = new UnreadTakeovers()
      unread.joined('taken')
      unread.unconfirmed('taken', 60_000)
      const seen = asking(askCountingTakeovers(script.ask, unread), { timeout: 500 })
      script.reply('other')
      script.reply('taken')
      expect(seen).toEqual([])
      vi.advanceTimersByTime(500)
      // The turn after it (a faked immediate set during an advance runs at the next one).
      vi.advanceTimersByTime(1)
      // As its sender's wait ends: the others counted, their replies after the count.
      expect(seen).toEqual(['count 1', 'other'])
      // Read later, the socket left out adds neither a count nor a reply.
      unread.read('taken', false)
      expect(seen).toEqual(['count 1', 'other'])
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
