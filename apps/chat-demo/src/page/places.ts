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

/**
 * The place of a message heard without one, after the `count` places before it (`seqAt`;
 * undefined for one of the page's own not stored yet): that of the latest message among them (0
 * when there is none). A node of an older version of the chat, from before messages had places,
 * sends a message without one during a rolling upgrade, live or in a join's history: so it shows
 * where it arrives, after what the page holds, as the server puts such a message of the history
 * after the one stored before it. A message stored later comes after it, and one stored earlier
 * whose broadcast comes late still goes before it.
 */
export function latestPlace(count: number, seqAt: (index: number) => number | undefined): number {
  let latest = 0
  for (let index = 0; index < count; index++) latest = Math.max(latest, seqAt(index) ?? 0)
  return latest
}
