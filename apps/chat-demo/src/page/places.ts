/**
 * Where a message heard goes among the `count` drawn in a room's list (`seqAt(i)`: the place in
 * the store of the i-th, see `ChatMessage.seq`; undefined for one of the page's own, drawn as it
 * was written): after the last one the store holds before it. Most often that is the last one; but
 * two nodes' broadcasts may cross on their way, so that a message stored later arrives first. So
 * the walk goes back from the end over the drawn messages stored after it, and stops at one of the
 * page's own: those stay where they were written. The index to insert it at.
 */
export function placeOf(count: number, seqAt: (index: number) => number | undefined, seq: number): number {
  let index = count
  while (index > 0) {
    const before = seqAt(index - 1)
    if (before === undefined || before <= seq) break
    index--
  }
  return index
}
