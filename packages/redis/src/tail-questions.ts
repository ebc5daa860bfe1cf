// A broadcast with acks asked of a session this node hands off goes into its tail, for the
// claimer's client. A tail the claimer read without its seal takes nothing more: what this node
// reads on the channel after that read (slow to read, it had not read it as of its last write
// that landed) is refused there, and the claimer asks the session itself, the tail's places
// saying that the tail lacks it (see uncut-sockets.ts). Counted here too, the session would be
// counted twice: once by the claimer, which asks its client, and once here, for a copy that no
// client answers. So such a socket is asked at once, but its count, and its replies, wait for
// Redis' answer to what the question appended: taken, it counts as any socket; refused, it is
// not counted here, its replies dropped.
import type { BroadcastReply } from '@parley/server'
import { askApart, HeldCount } from './held-count.js'
import type { AskWithAck } from './held-questions.js'
import { oneSocket } from './one-socket.js'

/** The sockets of the sessions this node hands off whose tails take appends. */
export interface TailsTaking {
  /** True when no socket is (the usual case: nothing to watch). */
  empty(): boolean
  /** Whether socket `id` is one (see `Cut.isHandingOff`). */
  has(id: string): boolean
  /** See `HandOffStore.watchAppends`. */
  watchAppends(id: string, ask: () => void, then: (took: boolean) => void): boolean
}

/**
 * `ask`, the sockets of `tails` it reaches asked each on its own, what each appends to its tail
 * watched: its count, and its replies, wait for Redis' answer to that (one round trip, as a
 * rule), and the count given to `expect` waits for them; replies made meanwhile by the others
 * wait for it too (the count comes first). A socket whose tail refused its question is left out
 * of the count, its replies dropped. One that appended nothing (held while its handoff's write
 * waits for Redis, which keeps it for the session either way) counts at once. At the question's
 * timeout (its sender's), or when the caller gives the count now, a socket whose answer has not
 * come counts, as before any answer could say otherwise: a slow Redis delays its tail, it does
 * not lose it. With no session handed off here, as `ask` alone.
 */
export function askCountingTails(ask: AskWithAck, tails: TailsTaking): AskWithAck {
  return (message, options, timeout, expect, reply, only, ran, own) => {
    if (tails.empty()) return ask(message, options, timeout, expect, reply, only, ran, own)
    // Open until each is counted: the others' count, and each held socket's count and answer.
    const total = new HeldCount(expect, reply)
    const held = askApart(
      total,
      only,
      (id) => tails.has(id),
      (count, replied, others) => ask(message, options, timeout, count, replied, others, ran, own),
    )
    for (const id of held) {
      total.open()
      const mine = heldUntilTaken(total)
      const watched = tails.watchAppends(
        id,
        () => total.holds(ask(message, options, timeout, mine.counted, mine.reply, oneSocket(id), ran, own)),
        mine.taken,
      )
      if (!watched) mine.taken(true)
      // After what the ask holds, which gives its count first (a socket past its claim marker).
      total.holds(mine.now)
    }
    total.opened(timeout)
    return total.give
  }
}

/**
 * One socket's part of `total` (opened by the caller): its count (`counted`) and what became of
 * its question's appends (`taken`), the part settled once both are in, with its count when the
 * tail took them, none when refused; its replies held until then, passed on when counted,
 * dropped otherwise. `now` counts it at once with what it has (its answer not in: counted), for
 * a count given before it settled.
 */
function heldUntilTaken(total: HeldCount): {
  counted: (count: number) => void
  reply: (reply: BroadcastReply) => void
  taken: (took: boolean) => void
  now: () => void
} {
  let asked: number | undefined
  let took: boolean | undefined
  /** Its replies until it settled; undefined after. */
  let mine: BroadcastReply[] | undefined = []
  /** Whether its count joined the count given. */
  let inCount = false
  const settle = (count: number, joined: boolean, then: () => void) => {
    const replies = mine ?? []
    mine = undefined
    inCount = joined && total.add(count)
    then()
    // After the count, which may just have been given.
    if (inCount) for (const made of replies) total.reply(made)
  }
  const settleOnceBoth = () => {
    if (mine === undefined || asked === undefined || took === undefined) return
    settle(asked, took, () => total.settle())
  }
  return {
    counted: (count) => {
      asked = count
      settleOnceBoth()
    },
    reply: (made) => {
      if (mine) mine.push(made)
      else if (inCount) total.reply(made)
    },
    taken: (itsTailTookIt) => {
      took = itsTailTookIt
      settleOnceBoth()
    },
    // The count is being given (`HeldCount.give`): it needs no settle of this part.
    now: () => {
      if (mine === undefined) return
      settle(asked ?? 0, took !== false, () => {})
    },
  }
}
