// What a socket being handed off gets into its tail as that tail is sealed (at its claim marker,
// or at the end of a drain nobody claimed it in): this node's own broadcasts, and broadcasts
// with acks, given up that never ran, which it waited for (see `AwaitedBroadcasts.leaving`).
// Each is given on its own: a socket that throws at one loses that one alone (logged, and a
// question counted with a failed reply), never the rest, the seal or the claim's answer.
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSockets,
  MemoryAdapter,
} from '@parley/server'
import { askAlone, deliverAlone } from './one-socket.js'
import { disconnected, replyOnce } from './reply-once.js'
import type { Warnings } from './warnings.js'

/**
 * Gives `message` to socket `id`, if it still matches `options`, into its tail. Found by its own
 * rooms, not by walking the room (see one-socket.ts): a drain seals a room's sockets one by one.
 */
export function deliverAtSeal(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  id: string,
): void {
  try {
    deliverAlone(memory, sockets, message, options, id)
  } catch (err) {
    lostAtSeal(warnings, message, err)
  }
}

/**
 * Asks `message` of socket `id`, if it still matches `options`, into its tail; found by its own
 * rooms, as in `deliverAtSeal`. A socket that throws at it was counted already (`expect` comes
 * before the delivery): its reply, never to come, fails.
 */
export function askAtSeal(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
  id: string,
): void {
  let counted: number | undefined
  // Its question may be registered before it throws, and settled there too (see reply-once.ts).
  const once = replyOnce(reply)
  try {
    askAlone(
      memory,
      sockets,
      message,
      options,
      timeout,
      (count) => {
        counted = count
        expect(count)
      },
      once,
      id,
    )
  } catch (err) {
    lostAtSeal(warnings, message, err)
    if (counted === undefined) expect(0)
    else if (counted > 0) once(disconnected())
  }
}

/** Logs `message`, lost to its session: the socket threw at it (see the file's head). */
export function lostAtSeal(warnings: Warnings, message: BroadcastMessage, err: unknown): void {
  warnings.warn(
    'at-seal-delivery',
    "a broadcast of this node's that never ran failed at its delivery into a handed-off session's tail as that tail was sealed, and is lost to its session",
    { err, event: message.name },
  )
}
