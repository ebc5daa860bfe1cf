import {
  type AckTable,
  awaitedReplies,
  ErrorCode,
  type ErrorPacket,
  PacketType,
  ParleyError,
  type ReplyPacket,
} from '@parley/protocol'
import { InputFirstTimer } from './input-first-timer.js'

/** Why a question of a session that moved got no reply here: none came back (or could). */
export const movedBeforeReply = (): ParleyError<string> =>
  new ParleyError(ErrorCode.SESSION_MOVED, 'the session moved to another node before the client replied')

/**
 * The questions of the node before this one that the client had not answered when the session
 * moved on from here (it came from that node, and moved again): their replies, sent back here by
 * the next node, go on there, to the node that asked and awaits them, once each.
 */
export interface Relay {
  ids: Set<number>
  forward: (reply: ReplyPacket | ErrorPacket) => void
}

interface Awaiting {
  table: AckTable | undefined
  relay: Relay | undefined
  timer: InputFirstTimer
}

/**
 * The questions this node asked sessions that moved to another node, and still awaits: the
 * client replies to the node that took the session over, whose adapter sends each reply back
 * here (`LocalSockets.forwardedReply`). By socket id, each socket's own table of waits, taken
 * at the cut (see `ServerSocket.claimed`). A wait ends at its reply, at its own timeout, or
 * `bound` ms after the cut, or when the server closes, whichever comes first: those two with
 * PARLEY_SESSION_MOVED, as every such wait ended before replies were forwarded. Nothing here
 * holds the drain or the process. A socket that came here from another node and moved on also
 * leaves that node's unanswered questions here, whose replies go on to it (see `Relay`), within
 * the same bounds.
 */
export class ForwardedReplies {
  readonly #bound: number
  readonly #awaiting = new Map<string, Awaiting>()

  constructor(bound: number) {
    this.#bound = bound
  }

  /**
   * Socket `id` moved with `table`'s waits still open: they wait here for forwarded replies.
   * Those of an earlier move of the same socket (it came back, and moved again) end first: an
   * ack id may be in both tables, and a reply must never settle the other one's question.
   */
  keep(id: string, table: AckTable | undefined, relay?: Relay): void {
    this.#end(id)
    const waits = table !== undefined && awaitedReplies(table) > 0
    const relays = relay !== undefined && relay.ids.size > 0
    if (!waits && !relays) return
    // Its verdict waits two turns (see `InputFirstTimer`): a reply sent back in time, read only
    // after a stall of this thread past the bound, settles its wait rather than losing to it.
    const timer = new InputFirstTimer(this.#bound, () => this.#end(id), true)
    this.#awaiting.set(id, { table: waits ? table : undefined, relay: relays ? relay : undefined, timer })
  }

  /**
   * A reply the client made on the session's new node. Settles the wait it answers, once, or
   * sends it on to the node before this one that awaits it (see `Relay`), once; a reply to a
   * wait that ended already (timed out here), or to a socket this node awaits nothing from, is
   * dropped: false. The relayed ids are never this node's own (it skipped them when numbering).
   */
  settle(id: string, reply: ReplyPacket | ErrorPacket): boolean {
    const awaiting = this.#awaiting.get(id)
    if (!awaiting) return false
    const { table, relay } = awaiting
    let settled = false
    if (relay?.ids.delete(reply.ackId)) {
      relay.forward(reply)
      settled = true
    } else if (table) {
      settled =
        reply.type === PacketType.REPLY
          ? table.settle(reply.ackId, null, reply.args)
          : table.settle(reply.ackId, new ParleyError(reply.code, reply.message), [])
    }
    if ((table ? awaitedReplies(table) : 0) === 0 && (relay?.ids.size ?? 0) === 0) this.#end(id)
    return settled
  }

  /** The server closes: the waits left end with PARLEY_SESSION_MOVED. */
  close(): void {
    for (const id of [...this.#awaiting.keys()]) this.#end(id)
  }

  #end(id: string): void {
    const awaiting = this.#awaiting.get(id)
    if (!awaiting) return
    this.#awaiting.delete(id)
    awaiting.timer.clear()
    awaiting.table?.rejectAll(movedBeforeReply())
  }
}
