// One count of a broadcast with acks gathered from parts that give theirs at different times:
// the sockets asked now, and each socket whose count waits (joined without a cut, its tail not
// read; joined by a takeover whose tail is not read). Given once every part gave its own, or at
// the question's timeout (its sender's) with what is in by then: a part that comes later is left
// out, its replies dropped, so that the sender hears no more replies than it counted. Replies
// made before the count wait for it: the count comes first.
import { MAX_TIMER_MS } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { EarlyReplies } from './early-replies.js'
import type { GiveNow } from './held-questions.js'
import { narrowed, type Only } from './one-socket.js'

export class HeldCount {
  #count = 0
  /**
   * Parts whose count is to come, and the gathering itself until `opened`, so that none gives
   * the count before every part is open.
   */
  #open = 1
  readonly #early: EarlyReplies
  readonly #expect: (count: number) => void
  /** The question's timeout, while a part is open (see `opened`). */
  #bound: AnswersFirstTimer | undefined
  /** What gives the counts the parts hold at once, with what they have (see `holds`). */
  readonly #gives: GiveNow[] = []

  constructor(expect: (count: number) => void, reply: (reply: BroadcastReply) => void) {
    this.#expect = expect
    this.#early = new EarlyReplies(reply)
  }

  /** True once the count is given: what a part adds after it is left out. */
  get given(): boolean {
    return this.#early.released
  }

  /** One more part whose count is to come (see `settle`). */
  open(): void {
    this.#open++
  }

  /**
   * One more part whose count is to come (`open`), as two callbacks: `count` adds its count and
   * settles it; `reply` takes a reply of it, unless the count was given without its own (the
   * count comes first: a reply after a count given without it is not counted).
   */
  part(): { count: (count: number) => void; reply: (made: BroadcastReply) => void } {
    this.open()
    /** Whether this part's count joined the count given. */
    let counted = false
    return {
      count: (count) => {
        counted = this.add(count)
        this.settle()
      },
      reply: (made) => {
        if (counted || !this.given) this.reply(made)
      },
    }
  }

  /** Adds `count` of a part, unless the count was given already: whether it joined. */
  add(count: number): boolean {
    if (this.given) return false
    this.#count += count
    return true
  }

  /** A part is done (its count added, or none): the count is given once none is open. */
  settle(): void {
    if (--this.#open > 0) return
    this.give()
  }

  /** What gives the count a part holds at once, with what it has: run first by `give`. */
  holds(give: GiveNow | undefined): void {
    if (give) this.#gives.push(give)
  }

  /** Takes a reply: held until the count is given, passed on at once after. */
  readonly reply = (made: BroadcastReply): void => {
    this.#early.take(made)
  }

  /** Gives the count now with what is in (the parts' own held counts first); once. */
  readonly give: GiveNow = () => {
    this.#bound?.clear()
    if (!this.given) for (const give of this.#gives) give()
    this.#early.release(() => this.#expect(this.#count))
  }

  /**
   * Every part is open: the gathering's own hold ends, and while a part is still open the count
   * is bounded by `timeout` (past MAX_TIMER_MS no timer, as for one socket: the wait ends with
   * the last part). None once the count is given. Its verdict waits a turn (see
   * `AnswersFirstTimer`): a part's count whose answer (a tail read, a claim's confirm) came in
   * time is read first, after a stall of this thread past the timeout too. Set before the
   * sender's own bound at that timeout, it gives the count before that one's verdict.
   */
  opened(timeout: number): void {
    if (this.#open > 1 && !this.given && timeout <= MAX_TIMER_MS)
      this.#bound = new AnswersFirstTimer(timeout, this.give, true)
    this.settle()
  }
}

/**
 * Asks, through `ask` and as `total`'s first part, the sockets `only` passes that `aside` does not
 * name; returns those `aside` named, in the order met, for the caller to ask each on its own as
 * a part of its own (see tail-questions.ts, unread-takeovers.ts).
 */
export function askApart(
  total: HeldCount,
  only: Only | undefined,
  aside: (id: string) => boolean,
  ask: (
    count: (count: number) => void,
    reply: (made: BroadcastReply) => void,
    only: Only,
  ) => GiveNow | undefined,
): string[] {
  const held: string[] = []
  const others = total.part()
  total.holds(
    ask(
      others.count,
      others.reply,
      narrowed(only, (id) => {
        if (!aside(id)) return true
        held.push(id)
        return false
      }),
    ),
  )
  return held
}
