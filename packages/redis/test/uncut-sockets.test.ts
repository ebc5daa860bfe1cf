// The sockets a takeover joined before its claim marker came back, filtered by the old node's
// places: each is let go once no place of the old node can filter anything more for it, so that
// it is not kept (and looked up at every broadcast read) for as long as the session lives.
import type { BroadcastMessage } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { UncutSockets } from '../src/uncut-sockets.js'
import type { Place } from '../src/wire.js'
import { message, to } from './handoff-support.js'

/** Sockets joined without a cut, and what they were given besides what `only` let through. */
function uncutSockets(): { sockets: UncutSockets; delivered: string[] } {
  const delivered: string[] = []
  const sockets = new UncutSockets((sent: BroadcastMessage) => delivered.push(String(sent.args[0])))
  return { sockets, delivered }
}

/** Broadcast `q` of `node`, read on the channel: whether it reaches socket `id` now. */
function read(sockets: UncutSockets, node: string, q: number, id = 's1'): boolean {
  const reaches = sockets.only(
    { node, q, message: message('news', [`${node}${q}`]), options: to(['r']) },
    undefined,
  )(id)
  sockets.readFrom(node, q)
  return reaches
}

const place = (q: number, skipped: [number, number][] = []): Place => ({ q, skipped })

describe('UncutSockets', () => {
  it('drops what the places hold, and lets the socket go once its broadcast at each place is read', () => {
    const { sockets } = uncutSockets()
    sockets.joined('s1')
    sockets.read(
      's1',
      new Map([
        ['a', place(2, [[4, 4]])],
        ['c', place(5)],
      ]),
      () => undefined,
    )
    expect([read(sockets, 'a', 2), read(sockets, 'a', 3), read(sockets, 'a', 4)]).toEqual([
      false,
      true,
      false,
    ])
    expect([read(sockets, 'c', 4), read(sockets, 'c', 5)]).toEqual([false, false])
    // c's last one the tail holds is read (c may send none after it): nothing left to filter.
    expect(sockets.empty).toBe(true)
    expect(read(sockets, 'c', 6)).toBe(true)
  })

  it("lets the socket go when the tail is read if this node read every node's broadcasts up to its place already", () => {
    const { sockets, delivered } = uncutSockets()
    sockets.joined('s1')
    // Read while the tail was read: a3 (the tail has it) and c7, held meanwhile.
    expect(read(sockets, 'a', 3)).toBe(false)
    expect(read(sockets, 'c', 7)).toBe(false)
    // gone: a node that left long ago, whose last broadcast (9) both nodes read.
    const readHere = new Map([
      ['a', 3],
      ['c', 7],
      ['gone', 9],
    ])
    sockets.read(
      's1',
      new Map([
        ['a', place(3)],
        ['c', place(6)],
        ['gone', place(9)],
      ]),
      (node) => readHere.get(node),
    )
    expect(delivered).toEqual(['c7'])
    expect(sockets.empty).toBe(true)
  })

  it('keeps the place of a node this node has not read that far yet, or knows nothing of', () => {
    const { sockets } = uncutSockets()
    sockets.joined('s1')
    sockets.read(
      's1',
      new Map([
        ['a', place(3)],
        ['b', place(5, [[7, 8]])],
      ]),
      (node) => (node === 'b' ? 7 : undefined),
    )
    expect(sockets.empty).toBe(false)
    expect([read(sockets, 'a', 3), read(sockets, 'b', 8)]).toEqual([false, false])
    expect(sockets.empty).toBe(true)
  })

  it('after the close, joins no socket, and holds a question in order but gives its count at once', () => {
    const { sockets } = uncutSockets()
    sockets.joined('s1')
    sockets.close()
    const settled: boolean[] = []
    let closed = 0
    const question = {
      node: 'a',
      q: 1,
      settle: (ask: boolean) => void settled.push(ask),
      drop: () => undefined,
      close: () => {
        closed++
      },
    }
    // Held behind what s1 holds (asked now, it would pass that), its count given now rather
    // than past the close.
    expect(sockets.holdQuestion('s1', question)).toBe(true)
    expect(closed).toBe(1)
    expect(settled).toEqual([])
    sockets.joined('s2')
    expect(sockets.holds('s2')).toBe(false)
    expect(sockets.holdQuestion('s2', question)).toBe(false)
    // Read late, what s1 held is delivered, the question asked in its turn.
    sockets.read('s1', undefined, () => undefined)
    expect(settled).toEqual([true])
  })
})
