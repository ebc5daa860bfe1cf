// What became of one append to a handed-off tail, as its caller is told once Redis answered its
// batch (see `AppendTaken`): a question counted by the old node only when its tail took it
// (see src/tail-questions.ts). `TailWrites` over a write given by hand, no Redis.
import { describe, expect, it } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { RedisUnreachableError } from '../src/send.js'
import { type TailGroup, type TailOf, TailWrites } from '../src/tail-writes.js'

/** A batch written, answered by hand. */
interface Sent {
  groups: TailGroup<TailOf>[]
  went: () => void
  answer: (took: boolean[]) => void
  fail: (err: unknown) => void
}

const tail = (): TailOf => ({ gap: false, landed: 0 })

/**
 * A queue whose batches wait in `sent` for their answer; `append` adds `data` to a tail, and what
 * each append is told goes to `told`, in order.
 */
function byHand() {
  const sent: Sent[] = []
  const told: (boolean | undefined)[] = []
  const writes = new TailWrites<TailOf>(
    'redis://127.0.0.1:1',
    () => true,
    (groups, went) =>
      new Promise<boolean[]>((answer, fail) => {
        sent.push({ groups, went, answer, fail })
      }),
    () => {},
  )
  const append = (data: string) => writes.append(tail(), data, '', (answer) => told.push(answer))
  /** Until the first append was told what became of it. */
  const toldFirst = (what: string) => until(() => told.length > 0, 2000, what)
  return { writes, sent, told, append, toldFirst }
}

/** The `i`th batch, once sent. */
async function batch(sent: Sent[], i: number): Promise<Sent> {
  await until(() => sent.length > i, 2000, `batch ${i} sent`)
  const it = sent[i]
  if (!it) throw new Error(`no batch ${i}`)
  return it
}

describe('an append to a handed-off tail, told what became of it', () => {
  it.each([
    ['took', true],
    ['refused', false],
  ] as const)('is told so once Redis answered that its tail %s it', async (_, took) => {
    const { sent, told, append, toldFirst } = byHand()
    expect(append('x')).toBe(true)
    const first = await batch(sent, 0)
    expect(told).toEqual([])
    first.went()
    first.answer([took])
    await toldFirst('the answer told')
    expect(told).toEqual([took])
  })

  it('is told nothing sure when a copy sent again is refused: the first, unanswered, may have run before the tail was read', async () => {
    const { sent, told, append, toldFirst } = byHand()
    append('x')
    const first = await batch(sent, 0)
    first.went()
    first.fail(new RedisUnreachableError('no answer', { at: 'redis://127.0.0.1:1' }))
    const again = await batch(sent, 1)
    again.went()
    again.answer([false])
    await toldFirst('the answer told')
    expect(told).toEqual([undefined])
  })

  it('is told nothing sure when Redis refused its batch, nor when the queue stops first', async () => {
    const { writes, sent, told, append, toldFirst } = byHand()
    append('x')
    const first = await batch(sent, 0)
    first.went()
    first.fail(new Error('ERR refused'))
    await toldFirst('the refusal told')
    append('y')
    await batch(sent, 1)
    writes.stop()
    expect(told).toEqual([undefined, undefined])
  })
})
