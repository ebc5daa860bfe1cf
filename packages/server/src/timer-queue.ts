import { MAX_TIMER_MS } from '@parley/protocol'

/**
 * A place in a `TimerQueue`, as a base class: the owner of the deadline (a session, for its
 * heartbeat) is its own entry, reused from one deadline to the next, so that a deadline costs
 * no new object and no closure, and an idle connection no object of its own for it.
 */
export class Timed {
  /**
   * When it falls due, on the `performance.now()` clock, rounded up to a whole millisecond: a
   * whole number stays a small integer in the entry itself, where a fraction would take an
   * object of its own (16 bytes per session) for the process's first 24 days.
   */
  due = 0
  prev: Timed | null = null
  next: Timed | null = null
  /** The queue it is in, if any. */
  queue: { remove(entry: Timed): void } | null = null

  /** Takes it out of its queue, if it is in one. */
  leaveQueue(): void {
    this.queue?.remove(this)
  }
}

/**
 * Deadlines that all share one delay, under one Node timer. Since the delay is the same for
 * all, the order in which they are set is the order in which they fall due: the queue is a
 * linked list, adding and removing cost O(1), and the timer is set for the first one only.
 * A server with 20 000 idle sessions holds five of these for their heartbeats instead of
 * 20 000 `Timeout` objects (and their closures), renewed at every PING.
 *
 * A delay may be longer than a Node timer holds (`handshakeTimeout + pingTimeout` of the
 * first GET's last call, each up to 2^31-1 ms): Node would run such a timer after 1 ms, again
 * and again until the deadline, so the timer waits at most MAX_TIMER_MS and is set again.
 *
 * The entries due fire two turns of the event loop after the timer ran (`setImmediate` twice,
 * per run, however many fall due). Most deadlines here wait on a client's input (a PONG, a GET,
 * the next chunk of a body, an answer read; two turns later cost a PING nothing), and after a
 * stall of the event loop (a long synchronous task, a major GC, a CPU-starved container, a
 * debugger's pause) Node runs the timers that ran out meanwhile before it reads the input that
 * came meanwhile: every client whose answer waited unread would lose to its own deadline at once.
 * `setImmediate` runs in the check phase, right after the poll phase that reads sockets: the
 * first turn reads what came on open connections, and accepts the connections opened meanwhile,
 * whose requests the second reads (a polling GET or an SSE POST through a proxy that opens a
 * connection per request, as nginx does without `keepalive`). That input comes first and moves
 * its entry (or sets what its `fire` reads): only the entries still due then fire. One with no
 * input still fires, those turns (well under a millisecond) later.
 */
export class TimerQueue<T extends Timed> {
  readonly delay: number
  readonly #fire: (entry: T) => void
  readonly #late: ((ms: number) => void) | undefined
  #head: Timed | null = null
  #tail: Timed | null = null
  #timer: NodeJS.Timeout | undefined
  /** The turns after the timer ran, the second firing the entries still due (see the class's comment). */
  #turn: NodeJS.Immediate | undefined

  /**
   * `fire` is called with each entry when it falls due, `delay` ms after `add`. `late`, if
   * given, is told at each run of the timer how many milliseconds after the first entry's
   * deadline it ran: how long the event loop kept it waiting.
   */
  constructor(delay: number, fire: (entry: T) => void, late?: (ms: number) => void) {
    this.delay = delay
    this.#fire = fire
    this.#late = late
  }

  /**
   * Sets `entry` to fall due `delay` ms from now, taking it out of any queue it was in; with
   * `from` (a moment past, on the `performance.now()` clock), `delay` ms from then: a deadline
   * that follows another one which fired late (the heartbeat's next PING after a check the event
   * loop held up) keeps its place in time rather than moving by the delay, and falls due at once
   * when that place is past. Never before an entry already in (the queue stays in order): at the
   * same time as the last, at the earliest.
   */
  add(entry: T, from?: number): void {
    entry.leaveQueue()
    const now = performance.now()
    let due = Math.ceil((from ?? now) + this.delay)
    if (from !== undefined && this.#tail && due < this.#tail.due) due = this.#tail.due
    entry.due = due
    entry.queue = this
    entry.prev = this.#tail
    entry.next = null
    if (this.#tail) this.#tail.next = entry
    else this.#head = entry
    this.#tail = entry
    // While the turns are pending, the second sets the timer for whatever is left when it has fired.
    if (!this.#turn) {
      const wait = from === undefined ? this.delay : Math.max(0, due - now)
      this.#timer ??= setTimeout(this.#run, Math.min(wait, MAX_TIMER_MS))
    }
  }

  /** Takes `entry` out; the timer goes when nothing is left. */
  remove(entry: Timed): void {
    if (entry.queue !== this) return
    if (entry.prev) entry.prev.next = entry.next
    else this.#head = entry.next
    if (entry.next) entry.next.prev = entry.prev
    else this.#tail = entry.prev
    entry.prev = null
    entry.next = null
    entry.queue = null
    if (!this.#head && (this.#timer || this.#turn)) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      clearImmediate(this.#turn)
      this.#turn = undefined
    }
  }

  readonly #run = (): void => {
    this.#timer = undefined
    const head = this.#head
    if (!head) return
    this.#late?.(Math.max(0, performance.now() - head.due))
    this.#turn = setImmediate(this.#nextTurn)
  }

  readonly #nextTurn = (): void => {
    this.#turn = setImmediate(this.#fireDue)
  }

  readonly #fireDue = (): void => {
    this.#turn = undefined
    const now = performance.now()
    // Entries added while these fire (with a delay of 0, they would be due at once) wait for
    // the next run.
    const last = this.#tail
    try {
      let entry = this.#head
      // Node's timers count whole milliseconds: one may run a fraction of a millisecond before
      // the deadline it was set for.
      while (entry && entry.due - now < 1) {
        this.remove(entry)
        // Only entries of type T are ever added (see `add`).
        this.#fire(entry as T)
        if (entry === last) break
        entry = this.#head
      }
    } finally {
      const head = this.#head
      if (head) {
        // An entry added while these fired (a frozen session's next PING) set the timer for its
        // own deadline, a whole delay away; one moved by input in the turn before, for its new
        // one: the head's comes first.
        clearTimeout(this.#timer)
        this.#timer = setTimeout(this.#run, Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(head.due - now))))
      }
    }
  }
}
