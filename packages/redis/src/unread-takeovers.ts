// The sockets this node's takeovers joined whose tail is not read yet: until it is, whether the
// session is this node's is not known. Its old node may keep it (the server gave its write up,
// and the claim is revoked), and then asks it, and counts it, whatever its rooms got past the
// claim marker (see `HandingOff.claimMarker`); the server here drops its copy, whose replies
// fail. So a broadcast with acks asked of such a socket asks it at once, but its count and
// replies wait for the read: kept elsewhere, it is not counted here, the old node answering
// for it; taken over, it counts as any socket.
import type { BroadcastReply } from '@parley/server'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { askApart, HeldCount } from './held-count.js'
import type { AskWithAck } from './held-questions.js'
import { oneSocket } from './one-socket.js'

/** The sockets joined by a takeover whose tail is not read yet, by id (see the top of this file). */
export class UnreadTakeovers {
  /** By socket id: what waits for its tail to be read. */
  readonly #waiting = new Map<string, ((kept: boolean) => void)[]>()
  /** By socket id: the bound on the wait for the confirm of a tail read unsealed (see `unconfirmed`). */
  readonly #unconfirmed = new Map<string, AnswersFirstTimer>()
  /**
   * Set by `close`: a takeover still under way then joins its socket after it, and nothing would
   * read or confirm its tail any more, nor end the bound of that wait.
   */
  #closed = false

  get empty(): boolean {
    return this.#waiting.size === 0
  }

  has(id: string): boolean {
    return this.#waiting.has(id)
  }

  /** A takeover joins socket `id`, its tail still to be read. */
  joined(id: string): void {
    // After the close, the socket counts as any at once (see `close`).
    if (this.#closed) return
    if (!this.#waiting.has(id)) this.#waiting.set(id, [])
  }

  /** The tail of socket `id`'s takeover is read (or will not be): `kept` when its old node kept the session. */
  read(id: string, kept: boolean): void {
    const waiting = this.#waiting.get(id)
    if (!waiting) return
    this.#waiting.delete(id)
    const bound = this.#unconfirmed.get(id)
    if (bound) {
      bound.clear()
      this.#unconfirmed.delete(id)
    }
    for (const then of waiting) then(kept)
  }

  /**
   * The tail of socket `id`'s takeover was read without its old node's seal: that node may
   * still keep the session (a write it gave up on, taken back late), which only the claim's
   * confirm tells (see `Takeover.confirm`). What waits on it waits for `read` then, at most
   * `ms`: should no confirm come (the server gave the claim back, or ended the session before
   * it asked), the socket counts as any.
   */
  unconfirmed(id: string, ms: number): void {
    if (!this.#waiting.has(id) || this.#unconfirmed.has(id)) return
    // The verdict waits a turn (see `AnswersFirstTimer`): a confirm that came in time, read only
    // after a stall of this thread past `ms`, says first that the old node kept the session.
    this.#unconfirmed.set(id, new AnswersFirstTimer(ms, () => this.read(id, false), true))
  }

  /**
   * The adapter closes: nothing more is read or confirmed, and every socket counts as any, those
   * joined later too; no bound outlives it.
   */
  close(): void {
    this.#closed = true
    for (const id of [...this.#waiting.keys()]) this.read(id, false)
  }

  /** Runs `then` once socket `id`'s tail is read; at once (not kept) when it is not waited for. */
  whenRead(id: string, then: (kept: boolean) => void): void {
    const waiting = this.#waiting.get(id)
    if (waiting) waiting.push(then)
    else then(false)
  }
}

/**
 * `ask`, the sockets of `unread` it reaches asked each on its own: their count, and their
 * replies, wait for their tail to be read, and the count given to `expect` with them; replies
 * made meanwhile by the others wait for it too (the count comes first). A socket whose session
 * its old node kept is left out of the count, its replies dropped. At the question's timeout
 * (its sender's) the count is given with the sockets counted by then: the sender's wait ends
 * there, and a held read (up to four requestTimeouts) must not outlast it; a socket whose tail
 * is read later is left out, its replies dropped. With no takeover unread, as `ask` alone.
 */
export function askCountingTakeovers(ask: AskWithAck, unread: UnreadTakeovers): AskWithAck {
  return (message, options, timeout, expect, reply, only, ran, own) => {
    if (unread.empty) return ask(message, options, timeout, expect, reply, only, ran, own)
    // Open until each is counted: the others' count, and each held socket's count and read.
    const total = new HeldCount(expect, reply)
    const held = askApart(
      total,
      only,
      (id) => unread.has(id),
      (count, replied, others) => ask(message, options, timeout, count, replied, others, ran, own),
    )
    for (const id of held) {
      total.open()
      /** Whether its count joined the others' before they were given. */
      let inCount = false
      const mine = heldUntilRead(unread, id, (made) => {
        if (inCount || !total.given) total.reply(made)
      })
      total.holds(
        ask(
          message,
          options,
          timeout,
          (asked) =>
            mine.counted(asked, (count) => {
              inCount = total.add(count)
              total.settle()
            }),
          mine.reply,
          oneSocket(id),
          ran,
          own,
        ),
      )
    }
    total.opened(timeout)
    return total.give
  }
}

/**
 * Socket `id`'s count and replies of one question asked of it alone, held until its tail is read
 * (see `askCountingTakeovers`): `reply` takes its replies (dropped when its old node kept the
 * session, given after its count otherwise), and `counted(asked, give)` gives `give` its count
 * once both it and the read are in, 0 when kept. At once when its tail is not waited for. Made
 * as the socket is asked, so that a read that comes before its count is not missed.
 */
export function heldUntilRead(
  unread: UnreadTakeovers,
  id: string,
  reply: (reply: BroadcastReply) => void,
): { reply: (reply: BroadcastReply) => void; counted(asked: number, give: (count: number) => void): void } {
  let read = false
  let kept = false
  /** Its count and where it goes, until given. */
  let asked: { count: number; give: (count: number) => void } | undefined
  /** Its replies until its tail is read; undefined after. */
  let mine: BroadcastReply[] | undefined = []
  const giveOnceBoth = () => {
    if (!read || !asked) return
    const { count, give } = asked
    asked = undefined
    give(kept ? 0 : count)
  }
  unread.whenRead(id, (itsOldNodeKeptIt) => {
    read = true
    kept = itsOldNodeKeptIt
    const replies = kept ? [] : (mine ?? [])
    mine = undefined
    giveOnceBoth()
    // After the count, which may just have been given.
    for (const made of replies) reply(made)
  })
  return {
    reply: (made) => {
      if (kept) return
      if (mine) mine.push(made)
      else reply(made)
    },
    counted: (count, give) => {
      asked = { count, give }
      giveOnceBoth()
    },
  }
}
