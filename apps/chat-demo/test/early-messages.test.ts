// What the page draws when it joins a room: the history, and the messages of that room it heard
// before the answer (the server puts it in the room before it reads the history).
import { describe, expect, it } from 'vitest'
import { EarlyMessages } from '../src/page/early-messages.js'
import { latestPlace, placeOf } from '../src/page/places.js'
import { type ChatMessage, Limits } from '../src/shared.js'

/** A message at its place in the store (`seq`), written at `at` by the clock of the node that took it. */
const message = (id: string, room = 'lobby', seq = 0, at = seq): ChatMessage => ({
  id,
  room,
  from: 'bob',
  text: id,
  at,
  seq,
})
const ids = (messages: readonly ChatMessage[]) => messages.map((m) => m.id)

describe('EarlyMessages', () => {
  it('draws a message heard before the answer after the history, once, also when the history has it', () => {
    const early = new EarlyMessages()
    early.expect('lobby')
    // Stored before the history was read (heard too), then after it.
    expect(early.keep(message('m2'))).toBe(true)
    expect(early.keep(message('m3'))).toBe(true)
    expect(ids(early.answered('lobby', [message('m1'), message('m2')]))).toEqual(['m1', 'm2', 'm3'])
    // The join is answered: nothing more is kept for it.
    expect(early.keep(message('m4'))).toBe(false)
  })

  it('keeps nothing for a room no join is on its way to, and drops what a refused join kept', () => {
    const early = new EarlyMessages()
    expect(early.keep(message('x', 'random'))).toBe(false)
    early.expect('random')
    early.keep(message('r1', 'random'))
    expect(early.answered('random')).toEqual([])
    expect(early.keep(message('r2', 'random'))).toBe(false)
  })

  it('keeps each room for its own answer when a join supersedes another', () => {
    const early = new EarlyMessages()
    early.expect('help')
    early.expect('random')
    early.keep(message('h1', 'help'))
    early.keep(message('r1', 'random'))
    expect(ids(early.answered('help', []))).toEqual(['h1'])
    early.keep(message('r2', 'random'))
    expect(ids(early.answered('random', [message('r0', 'random')]))).toEqual(['r0', 'r1', 'r2'])
  })

  it('goes on keeping a room asked for twice until its second answer, and knows a room as the server names it', () => {
    const early = new EarlyMessages()
    early.expect(' Help')
    early.expect('help')
    early.keep(message('h1', 'help'))
    expect(ids(early.answered(' Help', []))).toEqual(['h1'])
    expect(early.keep(message('h2', 'help'))).toBe(true)
    expect(ids(early.answered('help', [message('h1', 'help')]))).toEqual(['h1', 'h2'])
  })

  it('draws a message heard before the answer that a full history has left behind before it', () => {
    const early = new EarlyMessages()
    early.expect('lobby')
    // Stored at 1000; its broadcast came while more than a history's worth were stored after it.
    early.keep(message('old', 'lobby', 1000))
    early.keep(message('new', 'lobby', 9000))
    const full = Array.from({ length: Limits.history }, (_, i) => message(`h${i}`, 'lobby', 2000 + i))
    const drawn = ids(early.answered('lobby', full))
    expect(drawn).toHaveLength(Limits.history + 2)
    expect(drawn.slice(0, 2)).toEqual(['old', 'h0'])
    expect(drawn.at(-1)).toBe('new')
  })

  it('draws what a history lacks in the store order, whatever its time says', () => {
    const early = new EarlyMessages()
    early.expect('lobby')
    // Taken by a node whose clock is behind: stored after the read, its time says before.
    early.keep(message('late', 'lobby', 3000, 1000))
    expect(ids(early.answered('lobby', [message('h0', 'lobby', 2000)]))).toEqual(['h0', 'late'])
    early.expect('lobby')
    early.keep(message('late', 'lobby', 9000, 1000))
    const full = Array.from({ length: Limits.history }, (_, i) => message(`h${i}`, 'lobby', 2000 + i))
    expect(ids(early.answered('lobby', full)).at(-1)).toBe('late')
  })

  it("draws an older node's messages without a place where they arrived, and the rest in the store order", () => {
    const early = new EarlyMessages()
    early.expect('lobby')
    const { seq: _, ...unplaced } = message('old', 'lobby')
    // Stored at 1500, its broadcast late: it goes before the history all the same.
    for (const heard of [message('late', 'lobby', 1500), unplaced, message('new', 'lobby', 9000)])
      early.keep(heard)
    const history = [
      message('h0', 'lobby', 2000),
      { ...unplaced, id: 'old in history' },
      message('h1', 'lobby', 3000),
    ]
    expect(ids(early.answered('lobby', history))).toEqual([
      'late',
      'h0',
      'old in history',
      'h1',
      'old',
      'new',
    ])
  })
})

describe('latestPlace', () => {
  it("is the greatest place drawn, past the page's own not stored yet; 0 for none", () => {
    const drawn = [3, undefined, 7, 5]
    expect(latestPlace(drawn.length, (i) => drawn[i])).toBe(7)
    expect(latestPlace(0, () => undefined)).toBe(0)
  })
})

describe('placeOf', () => {
  const place = (drawn: (number | undefined)[], seq: number) => placeOf(drawn.length, (i) => drawn[i], seq)

  it('puts a message heard after the messages the store holds before it', () => {
    expect(place([], 5)).toBe(0)
    expect(place([1, 2, 3], 5)).toBe(3)
    // Node B's broadcast of 4 and 6 came before node A's of 5.
    expect(place([1, 2, 4, 6], 5)).toBe(3)
    expect(place([4, 6], 1)).toBe(0)
  })

  it("leaves the page's own messages where they were written", () => {
    expect(place([1, 7, undefined], 5)).toBe(3)
    expect(place([1, undefined, 7, 8], 5)).toBe(2)
  })
})
