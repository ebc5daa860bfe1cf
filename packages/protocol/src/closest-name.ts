/** The most edits a name may be from the one given to be offered in its place. */
const MAX_EDITS = 2

/**
 * The name of `names` closest to `given`, for a "did you mean" in the error of an unknown option:
 * within two edits (a character added, dropped or changed, or two neighbours swapped), letter case
 * aside (`PingInterval` is `pingInterval`); within one for a name given in under five characters,
 * where two edits make most short words alike (`foo` and `log`). The first of the closest wins.
 * Undefined when none is that close (or `given` is one of `names`).
 *
 * ```ts
 * closestName('heartbeatIntervl', ['requestTimeout', 'heartbeatInterval']) // 'heartbeatInterval'
 * closestName('tiemout', ['timeout']) // 'timeout': two neighbours swapped is one edit
 * ```
 */
export function closestName(given: string, names: Iterable<string>): string | undefined {
  const most = given.length < 5 ? 1 : MAX_EDITS
  let best: string | undefined
  let bestEdits = most + 1
  for (const name of names) {
    if (name === given) return undefined
    const edits = editDistance(given.toLowerCase(), name.toLowerCase(), bestEdits)
    if (edits < bestEdits) {
      best = name
      bestEdits = edits
    }
  }
  return best
}

/**
 * The edits from `a` to `b` (optimal string alignment: insertions, deletions, substitutions and
 * swaps of neighbours), or `bound` when there are at least that many: a long name given, which
 * no option is near, costs no table.
 */
function editDistance(a: string, b: string, bound: number): number {
  if (Math.abs(a.length - b.length) >= bound) return bound
  // Three rows of the table: the one before the last, the last, and the one being filled.
  let before: number[] = []
  let last = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    let smallest = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let edits = Math.min((last[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (last[j - 1] ?? 0) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        edits = Math.min(edits, (before[j - 2] ?? 0) + 1)
      }
      row.push(edits)
      smallest = Math.min(smallest, edits)
    }
    // Every later row is at least this row's smallest: past the bound, no need to go on.
    if (smallest >= bound) return bound
    before = last
    last = row
  }
  return Math.min(last[b.length] ?? bound, bound)
}
