// The broadcasts a node read lately (src/read-window.ts), and what a claimer adds from them to a
// tail read without its seal (src/unsealed-tail.ts): no Redis, the parts alone.
import { decodeText, PacketType, prepareEvent } from '@parley/protocol'
import type { LocalSockets, SessionSnapshot } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { GONE_PLACE_MS } from '../src/places.js'
import { READ_WINDOW_COUNT, READ_WINDOW_MS, ReadWindow, windowClock } from '../src/read-window.js'
import { unsealedTail } from '../src/unsealed-tail.js'
import { Warnings } from '../src/warnings.js'
import type { Place, WireOptions } from '../src/wire.js'

afterEach(() => vi.restoreAllMocks())

/** The event text of a 'news' broadcast of `arg`, as it comes on the channel. */
const news = (arg: string) => prepareEvent('news', [arg]).text(0, 0)

/** To rooms `r`, minus `x`. */
const wire = (r: string[], x: string[] = [], v = false): WireOptions => ({ r, x, v })

const place = (q: number, skipped: [number, number][] = []): Place => ({ q, skipped })

/** The first argument of each broadcast `since` gives. */
const given = (window: ReadWindow, cut: number, places: Map<string, Place>, rooms = ['s', 'r']) => {
  const { broadcasts, whole } = window.since(cut, places, new Set(rooms))
  return { args: broadcasts.map((b) => b.e.match(/"([^"]+)"\]/)?.[1]), whole }
}

describe('ReadWindow', () => {
  it("gives what was read before the cut past the old node's places, in the order read, to the socket's rooms", () => {
    const window = new ReadWindow()
    window.read('c', 1, news('c1'), wire(['r']))
    window.read('a', 1, news('a1'), wire(['r']))
    window.read('c', 2, news('c2'), wire(['other']))
    window.read('c', 3, news('c3'), wire([], ['r']))
    window.read('b', 7, news('b7'), wire([]))
    window.read('c', 4, news('c4'), wire(['r'], [], true))
    window.read('c', 5, news('c5'), wire(['s']))
    const cut = window.mark()
    window.read('c', 6, news('c6'), wire(['r']))
    // a's place for itself holds a1, c1 is below c's; b is new to it: all of b's.
    expect(
      given(
        window,
        cut,
        new Map([
          ['c', place(1)],
          ['a', place(1)],
        ]),
      ),
    ).toEqual({
      args: ['b7', 'c5'],
      whole: true,
    })
    // A range skipped above the place is held as well.
    expect(
      given(
        window,
        cut,
        new Map([
          ['c', place(0, [[5, 5]])],
          ['a', place(1)],
        ]),
      ),
    ).toEqual({
      args: ['c1', 'b7'],
      whole: true,
    })
  })

  it('says it no longer reaches a node of which it let go one above the place, and gives none of it', () => {
    let now = 0
    vi.spyOn(windowClock, 'now').mockImplementation(() => now)
    const window = new ReadWindow()
    window.read('c', 1, news('c1'), wire(['r']))
    window.read('d', 1, news('d1'), wire(['r']))
    now = READ_WINDOW_MS + 1
    window.read('c', 2, news('c2'), wire(['r']))
    window.read('d', 2, news('d2'), wire(['r']))
    const cut = window.mark()
    // d's place is past what was let go: d2 is given; c1 is gone above c's place: none of c's.
    expect(
      given(
        window,
        cut,
        new Map([
          ['c', place(0)],
          ['d', place(1)],
        ]),
      ),
    ).toEqual({ args: ['d2'], whole: false })
    // A node missing from the places had none read: one let go is out of reach as well.
    expect(given(window, cut, new Map([['c', place(1)]]))).toEqual({ args: ['c2'], whole: false })
    // Let go longer ago than any place is kept for: it no longer counts.
    now += GONE_PLACE_MS + 1
    window.read('c', 3, news('c3'), wire(['r']))
    expect(given(window, window.mark(), new Map())).toEqual({ args: ['c3'], whole: true })
  })

  it(`keeps ${READ_WINDOW_COUNT} broadcasts at most, the oldest let go`, () => {
    const window = new ReadWindow()
    for (let q = 1; q <= READ_WINDOW_COUNT + 2; q++) window.read('c', q, news(`c${q}`), wire(['r']))
    const all = given(window, window.mark(), new Map([['c', place(2)]]))
    expect(all.whole).toBe(true)
    expect(all.args.length).toBe(READ_WINDOW_COUNT)
    expect(all.args[0]).toBe('c3')
    expect(given(window, window.mark(), new Map([['c', place(1)]])).whole).toBe(false)
  })
})

describe('unsealedTail', () => {
  const snapshot = { id: 's', outSeq: 4, rooms: ['r'] } as unknown as SessionSnapshot
  const parts = (window: ReadWindow) => ({
    node: 'b',
    window,
    sockets: { maxPayload: undefined } as unknown as LocalSockets,
    warnings: new Warnings({ warn: () => {} }),
  })

  /** The seq and first argument of each packet of `tail`. */
  const packets = (tail: string[]) =>
    tail.flatMap((text) => {
      const decoded = decodeText(text, { maxPayload: Number.MAX_SAFE_INTEGER })
      return decoded.ok && decoded.packet.type === PacketType.EVENT
        ? [[decoded.packet.seq, decoded.packet.args[0]]]
        : []
    })

  it("numbers what it adds after the tail's packets, in the rooms of the tail's rooms entry", () => {
    const window = new ReadWindow()
    window.read('c', 1, news('c1'), wire(['r']))
    window.read('c', 2, news('c2'), wire(['joined']))
    const tail = [
      prepareEvent('own', ['t5']).text(5, 0),
      '{"rooms":["joined"]}',
      prepareEvent('own', ['t6']).text(6, 0),
    ]
    const out = unsealedTail(parts(window), snapshot, tail, new Map(), window.mark())
    expect(out.whole).toBe(true)
    expect(out.tail.slice(0, 3)).toEqual(tail)
    // Out of 'r' at the cut: c1 is not the session's; c2 is, numbered after t6.
    expect(packets(out.tail)).toEqual([
      [5, 't5'],
      [6, 't6'],
      [7, 'c2'],
    ])
  })

  it("numbers from the snapshot's last when the tail holds no packet", () => {
    const window = new ReadWindow()
    window.read('c', 1, news('c1'), wire(['r']))
    window.read('c', 2, news('c2'), wire(['r']))
    const out = unsealedTail(parts(window), snapshot, [], new Map([['c', place(1)]]), window.mark())
    expect(packets(out.tail)).toEqual([[5, 'c2']])
  })
})
