// Own broadcasts given up while a session is handed over, which its socket waits for (see
// src/awaited.ts): in order, each once, settled by what comes back.
import type { BroadcastMessage } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { AwaitedBroadcasts, MAX_AWAITED } from '../src/awaited.js'
import { Cut } from '../src/cut.js'
import { message, to } from './handoff-support.js'

/** Awaited broadcasts whose deliveries are written down by count. */
function awaited() {
  const delivered: number[] = []
  const list = new AwaitedBroadcasts()
  const deliver = (q: number, _message: BroadcastMessage) => {
    delivered.push(q)
  }
  const add = (q: number, mayRun: boolean) => list.add(q, message('news', [q]), to(['r']), mayRun, deliver)
  return { list, add, deliver, delivered }
}

describe('own broadcasts awaited by a session being handed over', () => {
  it('reach it in order once a later one comes back, and not the one that came back', () => {
    const { list, add, deliver, delivered } = awaited()
    add(1, true)
    add(2, false)
    add(4, true)
    list.overtaken(4, deliver)
    expect(delivered).toEqual([1, 2])
    expect(list.empty).toBe(true)
  })

  it('keep those never sent behind one that may run, and let them go once none is before them', () => {
    const { list, add, deliver, delivered } = awaited()
    add(1, true)
    add(2, false)
    add(3, false)
    list.flush(deliver)
    expect(delivered).toEqual([])
    // 1 came back: the caller delivered it; those behind it follow.
    list.overtaken(1, deliver)
    list.flush(deliver)
    expect(delivered).toEqual([2, 3])
  })

  it('miss one that may have run in a gap of the subscriber, not one never sent', () => {
    const { list, add, deliver, delivered } = awaited()
    add(1, true)
    add(2, false)
    add(5, true)
    list.gap(3, deliver)
    expect(delivered).toEqual([2])
    expect(list.empty).toBe(false)
  })

  it('give a socket that leaves those never sent alone', () => {
    const { list, add, deliver, delivered } = awaited()
    add(1, true)
    add(2, false)
    list.leaving('s1', deliver)
    expect(delivered).toEqual([2])
  })

  it('are delivered at once, in order, past their bound', () => {
    const { add, delivered } = awaited()
    for (let q = 1; q <= MAX_AWAITED; q++) add(q, true)
    expect(delivered).toEqual([])
    add(MAX_AWAITED + 1, false)
    expect(delivered).toHaveLength(MAX_AWAITED + 1)
    expect(delivered.at(0)).toBe(1)
    expect(delivered.at(-1)).toBe(MAX_AWAITED + 1)
  })
})

describe('the cut, for an own broadcast a session being handed over awaits', () => {
  /**
   * A cut with socket 'handed' (being handed over) and 'taken' (taken over here) positioned, and
   * `q`, the own broadcast sent next.
   */
  function handedAndTaken() {
    const cut = new Cut()
    // One of this node's own on its way: a socket taken over here stays positioned for it.
    cut.sent()
    cut.position('handed')
    cut.positionUntilBack('taken')
    expect(cut.has('taken')).toBe(true)
    return { cut, q: cut.sent() }
  }

  it('serves it to that socket when it comes back, not to one that took it when it was given up', () => {
    const { cut, q } = handedAndTaken()
    cut.givenUp(q)
    cut.awaits(q, true)
    const takes = cut.atReturn(q)
    expect(takes('handed')).toBe(true)
    expect(takes('taken')).toBe(false)
    // It waits for it: released, it stays positioned until it is settled.
    expect(cut.owesGivenUp('handed')).toBe(true)
    expect(cut.firstOwedGivenUp('handed')).toBe(q)
    cut.release('handed')
    expect(cut.has('handed')).toBe(true)
    // The one before it came back: nothing else is on its way to it.
    cut.back(q - 1)
    expect(cut.has('taken')).toBe(false)
    expect(cut.has('handed')).toBe(true)
    cut.awaitedDone(q)
    expect(cut.has('handed')).toBe(false)
  })

  it('serves one never sent to the socket being handed over alone', () => {
    const { cut, q } = handedAndTaken()
    cut.lost(q)
    cut.awaits(q, false)
    cut.positionUntilBack('since')
    const takes = cut.atReturn(q)
    expect(takes('handed')).toBe(true)
    expect(takes('taken')).toBe(false)
    expect(takes('since')).toBe(false)
    cut.back(q)
    expect(cut.owesGivenUp('handed')).toBe(false)
  })
})
