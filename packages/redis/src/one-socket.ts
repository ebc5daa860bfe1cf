// A question asked of one socket alone (a socket whose count waits, see tail-questions.ts and
// unread-takeovers.ts) reaches it only if the question's rooms do. Found by walking those rooms
// with a test that passes it alone, each such ask would cost the whole room: during a drain every
// session of the node waits so, and one question to a room of N sockets would cost N² tests. So
// the test names its socket, and an ask finds that one by its own rooms instead, with the same
// answer: reached by the rooms, not by `except`, then passing the test. A broadcast or a question
// given to one socket on its own (held behind its takeover's tail, kept for its seal) is found the
// same way (`reachedAlone`).
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSocket,
  LocalSockets,
  MemoryAdapter,
  Room,
} from '@parley/server'

/** A test of the sockets an ask reaches (`only`), as `MemoryAdapter.broadcast` takes it. */
export type Only = (id: string) => boolean

/** An `only` that passes socket `socket` alone, so that an ask can find it without a walk. */
export interface OneSocket extends Only {
  readonly socket: string
}

/** The test that passes socket `id` alone, and only when `test` (if given) passes it too. */
export function oneSocket(id: string, test?: Only): OneSocket {
  return Object.assign((other: string) => other === id && (test === undefined || test(other)), { socket: id })
}

/** The one socket `only` can pass, when it is such a test (see `oneSocket`). */
export function socketAlone(only: Only | undefined): string | undefined {
  return only !== undefined && 'socket' in only && typeof only.socket === 'string' ? only.socket : undefined
}

/**
 * `only`, then `test`, as one test: one that passes a single socket still names it, so that the
 * ask below finds it without a walk.
 */
export function narrowed(only: Only | undefined, test: Only): Only {
  const alone = socketAlone(only)
  if (alone !== undefined) return oneSocket(alone, (id) => only?.(id) === true && test(id))
  return (id) => (only === undefined || only(id)) && test(id)
}

/** Whether a socket in `rooms` is one `options` reach (as `MemoryAdapter` matches its sockets). */
export function matches(rooms: ReadonlySet<Room>, options: BroadcastOptions): boolean {
  for (const room of options.except) if (rooms.has(room)) return false
  if (options.rooms.size === 0) return true
  for (const room of options.rooms) if (rooms.has(room)) return true
  return false
}

/**
 * Socket `id` when `options` reach it on this node: the one a walk of the rooms with a test that
 * passes it alone would find, found by its own rooms instead.
 */
export function reachedAlone(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  id: string,
  options: BroadcastOptions,
): LocalSocket | undefined {
  const rooms = memory.socketRooms(id)
  return rooms !== undefined && matches(rooms, options) ? sockets.get(id) : undefined
}

/** As `memory.broadcast(message, options, (other) => other === id)`, without the walk. */
export function deliverAlone(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  message: BroadcastMessage,
  options: BroadcastOptions,
  id: string,
): void {
  reachedAlone(memory, sockets, id, options)?.deliver(message.prepared(), options.volatile)
}

/**
 * As `memory.broadcastWithAck(message, options, timeout, expect, reply, (other) => other === id)`,
 * without the walk: `expect` hears 1 or 0 before the socket is asked.
 */
export function askAlone(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
  id: string,
): void {
  const socket = reachedAlone(memory, sockets, id, options)
  expect(socket ? 1 : 0)
  socket?.deliverWithAck(message.prepared(), timeout, reply, options.volatile)
}
