import { AckTable, PacketType, type ParleyError, type WireValue } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ForwardedReplies } from './forwarded-replies.js'

/** A table with one wait per name, and how each ended (`name: reply` or `name: code`). */
function asked(names: string[], timeout?: number) {
  const table = new AckTable(10)
  const ended: string[] = []
  const ids = names.map((name) =>
    table.register(
      (error: ParleyError<string> | null, args: WireValue[]) =>
        void ended.push(`${name}: ${error ? error.code : String(args[0])}`),
      timeout,
    ),
  )
  return { table, ended, ids }
}

/** Timers and the turns of the event loop faked: the bound's verdict waits two turns (see `InputFirstTimer`). */
const fakeTimersAndTurns = () =>
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })

/** The two turns after a bound's timer ran (a faked immediate set during an advance runs at the next one). */
const twoTurns = () => {
  vi.advanceTimersByTime(1)
  vi.advanceTimersByTime(1)
}

const reply = (ackId: number, value: string) => ({ type: PacketType.REPLY, seq: 3, ackId, args: [value] })

describe('ForwardedReplies', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('settles each wait once with the reply sent back, and drops what nobody awaits', () => {
    const replies = new ForwardedReplies(1000)
    const { table, ended, ids } = asked(['a', 'b'])
    replies.keep('s1', table)
    expect(replies.settle('s1', reply(ids[1]!, 'yes'))).toBe(true)
    expect(replies.settle('s1', reply(ids[1]!, 'again'))).toBe(false)
    expect(replies.settle('s2', reply(ids[0]!, 'other socket'))).toBe(false)
    const error = { type: PacketType.ERROR, seq: 4, ackId: ids[0]!, code: 'NOPE', message: 'no' } as const
    expect(replies.settle('s1', error)).toBe(true)
    expect(ended).toEqual(['b: yes', 'a: NOPE'])
    // Every wait ended: the socket is forgotten.
    expect(replies.settle('s1', reply(ids[0]!, 'late'))).toBe(false)
  })

  it('ends the waits left with PARLEY_SESSION_MOVED at the bound, or at close', () => {
    fakeTimersAndTurns()
    const replies = new ForwardedReplies(1000)
    const first = asked(['a'])
    const second = asked(['b'])
    replies.keep('s1', first.table)
    vi.advanceTimersByTime(500)
    replies.keep('s2', second.table)
    vi.advanceTimersByTime(500)
    twoTurns()
    expect(first.ended).toEqual(['a: PARLEY_SESSION_MOVED'])
    expect(second.ended).toEqual([])
    replies.close()
    expect(second.ended).toEqual(['b: PARLEY_SESSION_MOVED'])
  })

  it('keeps a wait’s own shorter timeout', () => {
    fakeTimersAndTurns()
    const replies = new ForwardedReplies(1000)
    const { table, ended, ids } = asked(['a'], 200)
    replies.keep('s1', table)
    vi.advanceTimersByTime(200)
    expect(ended).toEqual(['a: PARLEY_ACK_TIMEOUT'])
    expect(replies.settle('s1', reply(ids[0]!, 'late'))).toBe(false)
  })

  it('ends the waits of a socket’s earlier move when it moves again, so that no id is taken twice', () => {
    const replies = new ForwardedReplies(1000)
    const before = asked(['a'])
    const now = asked(['b'])
    replies.keep('s1', before.table)
    replies.keep('s1', now.table)
    expect(before.ended).toEqual(['a: PARLEY_SESSION_MOVED'])
    expect(replies.settle('s1', reply(now.ids[0]!, 'yes'))).toBe(true)
    expect(now.ended).toEqual(['b: yes'])
  })

  it('sends replies to the previous node’s questions on there, once each, beside its own waits', () => {
    fakeTimersAndTurns()
    const replies = new ForwardedReplies(1000)
    const { table, ended, ids } = asked(['own'])
    const relayed: number[] = []
    replies.keep('s1', table, { ids: new Set([40, 41]), forward: (r) => void relayed.push(r.ackId) })
    expect(replies.settle('s1', reply(40, 'theirs'))).toBe(true)
    expect(replies.settle('s1', reply(40, 'again'))).toBe(false)
    expect(replies.settle('s1', reply(ids[0]!, 'mine'))).toBe(true)
    expect(relayed).toEqual([40])
    expect(ended).toEqual(['own: mine'])
    // One relayed id left: kept until the bound, then forgotten.
    vi.advanceTimersByTime(1000)
    twoTurns()
    expect(replies.settle('s1', reply(41, 'late'))).toBe(false)
    expect(relayed).toEqual([40])
  })

  it('keeps a socket that awaits nothing of its own for the previous node’s questions', () => {
    const replies = new ForwardedReplies(1000)
    const relayed: number[] = []
    replies.keep('s1', undefined, { ids: new Set([7]), forward: (r) => void relayed.push(r.ackId) })
    expect(replies.settle('s1', reply(7, 'theirs'))).toBe(true)
    expect(relayed).toEqual([7])
    // Nothing left: forgotten.
    expect(replies.settle('s1', reply(7, 'again'))).toBe(false)
  })
})
