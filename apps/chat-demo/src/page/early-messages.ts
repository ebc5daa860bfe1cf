import type { ChatMessage, HeardMessage } from '../shared.js'
import { latestPlace } from './places.js'

/**
 * Messages of a room the page is on its way to, heard before the server's answer to the join.
 * The server puts the page in the room before it reads the room's history, so that nothing sent
 * meanwhile is lost: a message sent then may reach the page before the answer (and be in the
 * history as well). Each waits here for the answer to its room's join, then goes after the
 * history (or before it, see `merged`), unless the history has it. A join that is refused takes
 * its room's with it.
 */
export class EarlyMessages {
  /** The rooms joins are on their way to: how many joins, and the messages heard for it so far. */
  readonly #rooms = new Map<string, { joins: number; heard: HeardMessage[] }>()

  /** A join of `room` is sent. */
  expect(room: string): void {
    const name = roomName(room)
    const entry = this.#rooms.get(name)
    if (entry) entry.joins++
    else this.#rooms.set(name, { joins: 1, heard: [] })
  }

  /** Keeps `message` for the answer to its room's join; false when no join of its room is on its way. */
  keep(message: HeardMessage): boolean {
    const entry = this.#rooms.get(message.room)
    entry?.heard.push(message)
    return entry !== undefined
  }

  /**
   * A join of `room` was answered: with `history` when it was taken, without when it was not.
   * What to draw: the history, then what was heard meanwhile that it does not have.
   */
  answered(room: string, history?: readonly HeardMessage[]): ChatMessage[] {
    const name = roomName(room)
    const entry = this.#rooms.get(name)
    const heard = entry?.heard.splice(0) ?? []
    if (entry && --entry.joins === 0) this.#rooms.delete(name)
    return history ? merged(history, heard) : []
  }
}

/**
 * The history, and the messages heard that it does not have (by id), in the store's order
 * (`ChatMessage.seq`). Most were stored after the history was read, and go after it. But a full
 * history (`Limits.history`) may lack one stored before the read, whose broadcast was still on its
 * way while more than that many were stored: it goes before the history. By its place in the
 * store, never by its time (`at`): that is the clock of the node that took it, and two nodes'
 * clocks may be apart. One without a place (see `latestPlace`) stays where it arrived.
 */
export function merged(history: readonly HeardMessage[], heard: readonly HeardMessage[]): ChatMessage[] {
  const ids = new Set(history.map((m) => m.id))
  const missing = heard.filter((m) => !ids.has(m.id) && ids.add(m.id))
  // One without a place (an older node's) takes that of the latest before it, history first, then
  // in the order heard: it stays where it arrived, and the sort keeps it there.
  const placed: ChatMessage[] = []
  for (const m of [...history, ...missing]) {
    placed.push({ ...m, seq: m.seq ?? latestPlace(placed.length, (i) => placed[i]?.seq) })
  }
  return placed.sort((a, b) => a.seq - b.seq)
}

/** The room a join asks for, as the server names it (and its messages): trimmed, in lower case. */
function roomName(asked: string): string {
  return asked.trim().toLowerCase()
}
