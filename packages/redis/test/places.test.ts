// Where a node is on the broadcast channel, as it writes it with a tail: what it read, and its
// own broadcasts given up, which reached its sockets without being read.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { GONE_PLACE_MS, MAX_READ_PLACES, MAX_SKIPPED_RANGES, placesClock, ReadPlaces } from '../src/places.js'
import { parsePlaces } from '../src/wire.js'

describe('ReadPlaces', () => {
  afterEach(() => vi.restoreAllMocks())

  it(`leaves out a node out of the live set once its last broadcast read is ${GONE_PLACE_MS} ms old`, () => {
    let now = 0
    vi.spyOn(placesClock, 'now').mockImplementation(() => now)
    const live = new Set(['a', 'b'])
    const places = new ReadPlaces((node) => live.has(node))
    places.read('a', 1)
    places.read('b', 2)
    places.read('gone', 3)
    live.delete('gone')
    places.liveChanged()
    now = GONE_PLACE_MS
    expect(JSON.parse(places.text)).toEqual({ a: 1, b: 2, gone: 3 })
    // Past the bound: made anew without it, though nothing was read since; a live one stays.
    now = GONE_PLACE_MS + 1
    expect(JSON.parse(places.text)).toEqual({ a: 1, b: 2 })
    expect(JSON.parse(places.readText)).toEqual({ a: 1, b: 2 })
    // The node raised is written whatever its age.
    expect(JSON.parse(places.textWith('gone', 4, true))).toEqual({ a: 1, b: 2, gone: 4 })
    // Back in the live set: written again.
    live.add('gone')
    places.liveChanged()
    expect(JSON.parse(places.text)).toEqual({ a: 1, b: 2, gone: 3 })
    // A live node past the bound is kept, and the text made once, not at every call.
    const write = vi.spyOn(JSON, 'stringify')
    expect([places.text, places.text]).toEqual([places.text, places.text])
    expect(write).not.toHaveBeenCalled()
    write.mockRestore()
    // Nothing left to write: ''.
    const alone = new ReadPlaces(() => false)
    alone.read('x', 1)
    now += GONE_PLACE_MS + 1
    expect(alone.text).toBe('')
  })

  it('keeps given-up counts above the place as ranges, and lets them go once the place passes them', () => {
    const places = new ReadPlaces()
    expect(places.text).toBe('')
    places.read('b', 4)
    places.skipped('a', 2)
    places.skipped('a', 3)
    places.skipped('a', 6)
    expect(JSON.parse(places.text)).toEqual({ b: 4, a: [0, [2, 3], [6, 6]] })
    // Given up out of order: merged where it touches.
    places.skipped('a', 5)
    places.skipped('a', 1)
    expect(JSON.parse(places.text)).toEqual({ b: 4, a: [0, [1, 3], [5, 6]] })
    // For a tail whose socket still owes one given up: what was read alone.
    expect(JSON.parse(places.readText)).toEqual({ b: 4 })
    // An earlier one read (it was on its way): the place rises to it, the ranges above stay.
    places.read('a', 4)
    expect(JSON.parse(places.text)).toEqual({ b: 4, a: [4, [5, 6]] })
    // Read at or past them: the place alone holds them.
    places.read('a', 6)
    expect(JSON.parse(places.text)).toEqual({ b: 4, a: 6 })
    places.skipped('a', 6)
    expect(JSON.parse(places.text)).toEqual({ b: 4, a: 6 })
    expect(parsePlaces(places.text)?.get('a')).toEqual({ q: 6, skipped: [] })
  })

  it("raises a node's own place to what its socket took when emitted, the ranges at or below it let go", () => {
    const places = new ReadPlaces()
    // Nothing read yet: the floor alone.
    expect(JSON.parse(places.textWith('a', 3, true))).toEqual({ a: 3 })
    expect(places.textWith('a', 0, true)).toBe('')
    places.read('b', 4)
    places.read('a', 2)
    places.skipped('a', 4)
    places.skipped('a', 7)
    expect(JSON.parse(places.textWith('a', 5, true))).toEqual({ b: 4, a: [5, [7, 7]] })
    expect(JSON.parse(places.textWith('a', 5, false))).toEqual({ b: 4, a: 5 })
    // At or below the place read: as `text` and `readText`.
    expect(places.textWith('a', 2, true)).toBe(places.text)
    expect(places.textWith('a', 1, false)).toBe(places.readText)
    // The place read is left as it was.
    expect(JSON.parse(places.text)).toEqual({ b: 4, a: [2, [4, 4], [7, 7]] })
    expect(parsePlaces(places.textWith('a', 5, true))?.get('a')).toEqual({ q: 5, skipped: [[7, 7]] })
  })

  it(`keeps the places of ${MAX_READ_PLACES} nodes at most: past them, the one read longest ago is let go`, () => {
    const places = new ReadPlaces()
    places.read('oldest', 1)
    places.read('again', 1)
    for (let i = 2; i < MAX_READ_PLACES; i++) places.read(`n${i}`, 1)
    // Read again: now the one read last.
    places.read('again', 2)
    places.read('one-more', 1)
    const read = JSON.parse(places.text) as Record<string, number>
    expect(Object.keys(read)).toHaveLength(MAX_READ_PLACES)
    expect(read).not.toHaveProperty('oldest')
    expect(read).toMatchObject({ again: 2, n2: 1, 'one-more': 1 })
  })

  it(`keeps at most ${MAX_SKIPPED_RANGES} ranges: past them the oldest is let go`, () => {
    const places = new ReadPlaces()
    for (let q = 2; q <= 2 * (MAX_SKIPPED_RANGES + 1); q += 2) places.skipped('a', q)
    const [q, ...ranges] = JSON.parse(places.text).a as [number, ...[number, number][]]
    expect(q).toBe(0)
    expect(ranges).toHaveLength(MAX_SKIPPED_RANGES)
    expect(ranges[0]).toEqual([4, 4])
  })
})
