// Work over a list, in its order, a bounded number at a time: a burst of claims that would
// otherwise all reach the adapter at once, past what its command queue takes.

/**
 * Runs `work` on each of `items` in order, at most `atOnce` at a time, starting none once
 * `performance.now()` reaches `until`; resolves with each result in the order of `items`,
 * `skipped` for one not started or whose work threw.
 */
export async function inTurn<T, R, S>(
  items: readonly T[],
  atOnce: number,
  until: number,
  skipped: S,
  work: (item: T) => Promise<R>,
): Promise<(R | S)[]> {
  const results: (R | S)[] = items.map(() => skipped)
  let next = 0
  // Each runner takes the next item as the one before settles: never more than `atOnce` run.
  const runner = async () => {
    while (next < items.length && performance.now() < until) {
      const index = next++
      try {
        results[index] = await work(items[index] as T)
      } catch {
        // One item's failure (an entry whose getters throw) is its own: the others go on.
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(atOnce, items.length)) }, runner))
  return results
}
