// The adoption's batches (in-batches.ts): started in order, a batch at a time, the next once
// there is room for it among those under way, and none past the deadline.
import { describe, expect, it } from 'vitest'
import { inBatches } from '../src/in-batches.js'

/** Items whose work each test settles by hand, and the batches started, in order. */
function byHand() {
  const settle = new Map<number, (ok: boolean) => void>()
  const batches: number[][] = []
  const start = (batch: number[]) => {
    batches.push(batch)
    return batch.map((item) => new Promise<boolean>((resolve) => settle.set(item, resolve)))
  }
  return { settle, batches, start }
}

/** A few turns of the event loop: what settling an item sets going has run. */
const turns = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('inBatches', () => {
  it('starts the next batch once there is room for it, not once the batch before is over', async () => {
    const { settle, batches, start } = byHand()
    const items = Array.from({ length: 10 }, (_, i) => i + 1)
    const all = inBatches(items, 3, 6, Number.POSITIVE_INFINITY, start)
    await turns()
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ])
    // Five under way: no room for three more.
    settle.get(1)?.(true)
    await turns()
    expect(batches).toHaveLength(2)
    // Three under way, one of each batch still among them.
    settle.get(2)?.(true)
    settle.get(4)?.(false)
    await turns()
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ])
    for (const item of [3, 5, 6, 7, 8, 9]) settle.get(item)?.(true)
    await turns()
    expect(batches.at(-1)).toEqual([10])
    settle.get(10)?.(true)
    // Every one true but 4.
    expect(await all).toBe(9)
  })

  it('starts nothing past its deadline', async () => {
    const { batches, start } = byHand()
    expect(await inBatches([1, 2, 3], 2, 4, performance.now() - 1, start)).toBe(0)
    expect(batches).toEqual([])
  })

  it('counts none for an item that rejects or a batch whose start throws, and goes on', async () => {
    let calls = 0
    const done = await inBatches([1, 2, 3, 4], 2, 2, Number.POSITIVE_INFINITY, (batch) => {
      if (calls++ === 0) throw new Error('the first batch fails')
      return batch.map((item) =>
        item === 4 ? Promise.reject(new Error('one fails')) : Promise.resolve(true),
      )
    })
    expect(calls).toBe(2)
    expect(done).toBe(1)
  })

  it('resolves at once with nothing to start, or only empty batches', async () => {
    expect(await inBatches([], 2, 4, Number.POSITIVE_INFINITY, () => [])).toBe(0)
    expect(await inBatches([1, 2, 3], 2, 4, Number.POSITIVE_INFINITY, () => [])).toBe(0)
  })
})
