// Own broadcasts with acks that never run, given up behind broadcasts a session being handed over
// waits for (see src/awaited.ts): asked once, at their turn.
import { describe, expect, it } from 'vitest'
import { AwaitedBroadcasts } from '../src/awaited.js'
import { message, to } from './handoff-support.js'

/**
 * Awaited broadcasts and questions, what reaches the sockets written down by count (a question
 * asked of one socket alone as `<count>@<socket>`).
 */
function awaited() {
  const reached: (number | string)[] = []
  const list = new AwaitedBroadcasts()
  const deliver = (q: number) => {
    reached.push(q)
  }
  const add = (q: number, mayRun: boolean) => list.add(q, message('news', [q]), to(['r']), mayRun, deliver)
  const question = (q: number) =>
    list.question(q, message('ask', [q]), to(['r']), (only) =>
      reached.push(only === undefined ? q : `${q}@${only}`),
    )
  return { list, add, question, deliver, reached }
}

describe('questions behind own broadcasts awaited by a session being handed over', () => {
  it('are asked now when nothing is awaited', () => {
    const { question, reached } = awaited()
    expect(question(1)).toBe(false)
    expect(reached).toEqual([])
  })

  it('are asked in order once what is before them came back or never ran', () => {
    const { list, add, question, deliver, reached } = awaited()
    add(1, true)
    expect(question(2)).toBe(true)
    add(3, false)
    list.flush(deliver)
    expect(reached).toEqual([])
    // 1 came back: the caller delivered it; the question, then 3, follow.
    list.overtaken(1, deliver)
    list.flush(deliver)
    expect(reached).toEqual([2, 3])
    expect(list.empty).toBe(true)
  })

  it('are asked of a socket that leaves alone, and of the others at their turn', () => {
    const { list, add, question, deliver, reached } = awaited()
    add(1, true)
    question(2)
    add(3, false)
    list.leaving('s1', deliver)
    list.leaving('s2', deliver)
    // Each socket that leaves takes what never ran, the question asked of it alone.
    expect(reached).toEqual(['2@s1', 3, '2@s2', 3])
    // 1 never ran: the sockets still positioned take it, then the question, then 3.
    list.overtaken(4, deliver)
    expect(reached).toEqual(['2@s1', 3, '2@s2', 3, 1, 2, 3])
    expect(list.empty).toBe(true)
  })
})
