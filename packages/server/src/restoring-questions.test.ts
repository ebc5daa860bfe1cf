import { AckTable, awaitedReplies, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { RestoringQuestions } from './restoring-questions.js'

afterEach(() => {
  vi.useRealTimers()
})

function setup() {
  const acks = new AckTable(100)
  const questions = new RestoringQuestions()
  const outcomes: string[] = []
  const ask = (what: string, timeout?: number) =>
    questions.ask(
      (error: ParleyError<string> | null, reply) =>
        outcomes.push(`${what}: ${error?.code ?? String(reply[0])}`),
      timeout,
      (settle) => acks.register(settle, timeout),
    )
  const renumber = (ids: number[]) =>
    questions.renumber(
      ids,
      (id) => acks.forget(id),
      (settle, timeout) => acks.register(settle, timeout),
    )
  return { acks, questions, outcomes, ask, renumber }
}

describe('questions asked while a session is restored', () => {
  it('gives a question under an id the tail uses another id, which its reply then settles', () => {
    const { acks, outcomes, ask, renumber } = setup()
    const first = ask('first')
    const second = ask('second')
    expect([first.id, second.id]).toEqual([1, 2])
    renumber([2, 9])
    expect(first.id).toBe(1)
    expect(second.id).toBe(3)
    expect(acks.settle(2, null, ['stale'])).toBe(false)
    acks.settle(3, null, ['ok'])
    acks.settle(1, null, ['ok'])
    expect(outcomes).toEqual(['second: ok', 'first: ok'])
  })

  it('leaves a question already settled, or forgotten, as it is', () => {
    const { acks, questions, outcomes, ask, renumber } = setup()
    const settled = ask('settled')
    const dropped = ask('dropped')
    acks.settle(settled.id, null, ['ok'])
    questions.forget(dropped)
    acks.forget(dropped.id)
    renumber([settled.id, dropped.id])
    expect(awaitedReplies(acks)).toBe(0)
    expect(outcomes).toEqual(['settled: ok'])
  })

  it('keeps the time left of a wait it renumbers, not the whole timeout again', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const { outcomes, ask, renumber } = setup()
    const question = ask('late', 1000)
    vi.advanceTimersByTime(600)
    renumber([question.id])
    expect(question.id).toBe(2)
    vi.advanceTimersByTime(399)
    expect(outcomes).toEqual([])
    vi.advanceTimersByTime(1)
    expect(outcomes).toEqual(['late: PARLEY_ACK_TIMEOUT'])
  })
})
