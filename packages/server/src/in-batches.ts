// Work over a list, in its order, started a batch at a time and a bounded number under way: a
// drain's adoption claimed through an adapter that takes several claims in one call.

/**
 * Starts `start` on `items` in order, `size` at a time, whenever no more than `atOnce - size` of
 * the items started are still under way (so never more than `atOnce`), starting none once
 * `performance.now()` reaches `until`. `start(batch)` starts each item of `batch` and gives
 * its promise, true for an item done: a batch waits for no straggler of the one before, only
 * for room. Resolves, once every item started has settled, with how many were true; one that
 * rejects, or a `start` that throws, counts none.
 */
export function inBatches<T>(
  items: readonly T[],
  size: number,
  atOnce: number,
  until: number,
  start: (batch: T[]) => readonly Promise<boolean>[],
): Promise<number> {
  const step = Math.max(1, Math.floor(size))
  const room = Math.max(step, Math.floor(atOnce)) - step
  let next = 0
  let underWay = 0
  let done = 0
  return new Promise((resolve) => {
    const fill = () => {
      while (next < items.length && underWay <= room && performance.now() < until) {
        const batch = items.slice(next, next + step)
        next += batch.length
        let started: readonly Promise<boolean>[] = []
        try {
          started = start(batch)
        } catch {
          // One batch's failure is its own: the next goes on.
        }
        underWay += started.length
        for (const item of started)
          void item
            .then(
              (ok) => {
                if (ok === true) done++
              },
              () => {},
            )
            .finally(() => {
              underWay--
              fill()
            })
      }
      if (underWay === 0) resolve(done)
    }
    fill()
  })
}
