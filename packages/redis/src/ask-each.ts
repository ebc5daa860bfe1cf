// A broadcast with acks asked of this node's sockets inside a read of the channel (a question
// proved never run, one back on the channel, another node's): more follows it in the same turn
// (the other sockets, the awaited queue's pass, the count given to its sender). So each socket
// is asked on its own: one that throws at it loses it alone (logged), and, counted already
// (the count comes before the deliveries), its reply, never to come, fails: once, should it
// have registered the question before it threw.
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSocket,
  LocalSockets,
  MemoryAdapter,
} from '@parley/server'
import { matches, type Only, socketAlone } from './one-socket.js'
import { disconnected, replyOnce } from './reply-once.js'
import type { Warnings } from './warnings.js'

/** As `MemoryAdapter.broadcastWithAck`, each socket asked on its own. */
export function askEach(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
  only?: Only,
): void {
  // The sockets it reaches (its rooms, `except`, then `only`, once each), as the memory adapter
  // finds them; collected there and asked here, where a throw ends no loop. As there, an id
  // still in a room whose socket is no longer on this node is not counted: its sender would
  // count a socket the message never reached, and hear it failed. One that leaves while the
  // others are asked is counted, and its own `deliverWithAck` fails its reply, as there too.
  const found: LocalSocket[] = []
  const take = (id: string) => {
    if (only && !only(id)) return false
    const socket = sockets.get(id)
    if (socket) found.push(socket)
    return false
  }
  const alone = socketAlone(only)
  if (alone === undefined) memory.broadcast(message, options, take)
  else {
    // One socket: found by its own rooms, not by walking those the question reaches (see one-socket.ts).
    const rooms = memory.socketRooms(alone)
    if (rooms !== undefined && matches(rooms, options)) take(alone)
  }
  expect(found.length)
  if (found.length === 0) return
  const event = message.prepared()
  for (const socket of found) {
    // Its question may be registered before it throws, and settled there too (see reply-once.ts).
    const once = replyOnce(reply)
    try {
      socket.deliverWithAck(event, timeout, once, options.volatile)
    } catch (err) {
      warnings.warn(
        'ask-delivery',
        'a broadcast with acks failed at its delivery to a socket, and is lost to its session',
        { err, event: message.name, socket: socket.id },
      )
      once(disconnected())
    }
  }
}
