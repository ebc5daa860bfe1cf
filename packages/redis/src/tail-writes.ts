import { AnswersFirstTimer } from './answers-first-timer.js'
import { LOOK_AGAIN_MS } from './commands.js'
import { RedisBusyError, RedisUnreachableError } from './send.js'

/**
 * The most appends a node keeps queued for the tails of the sessions it handed off, all
 * sessions together, while Redis does not take them (slow, paused, away). Past it (or past
 * `MAX_QUEUED_TAIL_BYTES`) an append is dropped and its tail is incomplete.
 */
export const MAX_QUEUED_TAIL_APPENDS = 10_000

/** The most bytes of packet text (UTF-8) a node keeps queued for its handed-off tails. */
export const MAX_QUEUED_TAIL_BYTES = 8 * 1024 * 1024

/**
 * What one batch carries at most: it is one script, and Redis runs nothing else while a
 * script runs, so a long one would hold every other client of Redis.
 */
const BATCH_TEXTS = 1000
const BATCH_BYTES = 1024 * 1024

const NOTHING_BESIDE = { count: 0, bytes: 0 }

/** What a tail's writes need of its handoff (see `HandedOff`). */
export interface TailOf {
  /** An append of this node's never reached the tail: the next write marks it incomplete. */
  gap: boolean
  /**
   * How many texts of this node's the tail holds, as its answered writes tell; -1 once that is
   * not known (Redis answered a batch with an error, after which it may have run in part).
   */
  landed: number
}

/** One session's part of a batch: its texts in order, and whether it seals the tail. */
export interface TailGroup<T extends TailOf> {
  tail: T
  texts: string[]
  /** '0' an append; '1' the seal; '2' the seal of a drain with no other node live. */
  seal: '0' | '1' | '2'
  /**
   * Where the node was on the broadcast channel when it queued the last of `texts` (see
   * `ReadPlaces`), written with them; '' for none.
   */
  places: string
}

/**
 * What became of one append, once Redis answered its batch: `true` the tail took it, `false` the
 * tail refused it (sealed, read back, another write's: it reaches no client from there), and
 * `undefined` when that is not known (Redis refused the batch, which may have run in part; a
 * refusal of a copy sent again, whose first copy may have run before the tail was read; the
 * queue stopped at the close).
 */
export type AppendTaken = (took: boolean | undefined) => void

interface Queued<T extends TailOf> extends TailGroup<T> {
  bytes: number
  /** A seal's caller, told once it is written (or refused, or dropped). */
  settle?: (err?: unknown) => void
  /** An append's caller, told what became of it (see `AppendTaken`). */
  taken?: AppendTaken
  /**
   * Sent in a batch that got no answer: it may have run then, so that a refusal of the copy
   * sent again says nothing of it.
   */
  mayHaveRun?: boolean
}

/**
 * The appends of one node to the tails of the sessions it handed off, queued here and written
 * in batches, one command at a time: many sessions' appends go in one script, so a drain that
 * numbers a broadcast for a thousand sessions sends one command, not a thousand. While Redis
 * does not take them (a failover, a fork for a snapshot, a loaded box: it has left a command
 * unanswered for `requestTimeout`, or `MAX_UNANSWERED_COMMANDS`), they wait, in order, and go
 * once it answers again: a slow Redis delays a tail, it does not lose it. The queue is bounded,
 * by count and by bytes, for the node: past that an append is dropped, and its tail is marked
 * incomplete by the session's next write (the claimer reads `complete: false`).
 *
 * A batch given up on (no answer within `requestTimeout`, the connection dropped) may have run,
 * or still run: it is sent again, as it was, once Redis answers. Each session's part says how
 * many of its texts the tail held before it (`landed`), so the script skips those it finds there
 * already, and a copy that runs twice appends once.
 */
export class TailWrites<T extends TailOf> {
  readonly #queue: Queued<T>[] = []
  #bytes = 0
  #sending = false
  #flushing = false
  #retry: NodeJS.Timeout | undefined
  #stopped = false
  /**
   * How many writes at the head of the queue were sent at least once and not answered yet (a
   * batch on its way, or one given up on, to be sent again): Redis may still run them.
   */
  #sent = 0
  /** Called once the queue is empty (see `settle`). */
  #emptied: (() => void)[] = []
  /** How many batches Redis answered (took, refused or failed): progress, for `settle`. */
  #answered = 0

  constructor(
    /** Where the client connects (see `Commands.address`): the errors of a stopped queue name it. */
    private readonly address: string,
    /** Whether a command may go now (see `Commands.unavailable`). */
    private readonly available: () => boolean,
    /**
     * Writes a batch: for each group, true when the tail took it, false when refused (sealed,
     * read back, another write's). Calls `went` when the batch goes on the connection (at once,
     * or once its turn came: see `Commands.sendInTurn`), never for a try refused before that.
     * Rejects with `RedisUnreachableError` when given up on (it may have run) or refused before
     * it went, with `RedisBusyError` when refused for the commands waiting their turn, with
     * another error when Redis refused the command.
     */
    private readonly write: (groups: TailGroup<T>[], went: () => void) => Promise<boolean[]>,
    /** A batch Redis answered with an error: its tails are incomplete. */
    private readonly failed: (err: unknown) => void,
    /**
     * What the node keeps elsewhere for its tails, to be queued here later (see `HeldAppends`):
     * counted against the same bounds, which are the node's, not this queue's alone.
     */
    private readonly beside: () => { count: number; bytes: number } = () => NOTHING_BESIDE,
  ) {}

  /** Appends queued and not written yet. */
  get size(): number {
    return this.#queue.length
  }

  /** Bytes of packet text (UTF-8) queued and not written yet. */
  get bytes(): number {
    return this.#bytes
  }

  /**
   * Queues `text` for `tail`, behind what is queued for it already; `taken` is told what became
   * of it once Redis answered (never at once). False, and the tail marked as having a hole, when
   * the queue, with what is kept `beside` it, is full (`MAX_QUEUED_TAIL_APPENDS`,
   * `MAX_QUEUED_TAIL_BYTES`): `taken` is not called then.
   */
  append(tail: T, text: string, places = '', taken?: AppendTaken): boolean {
    if (this.#stopped) return false
    const bytes = Buffer.byteLength(text)
    const beside = this.beside()
    if (
      this.#queue.length + beside.count >= MAX_QUEUED_TAIL_APPENDS ||
      this.#bytes + beside.bytes + bytes > MAX_QUEUED_TAIL_BYTES
    ) {
      tail.gap = true
      return false
    }
    this.#push({ tail, texts: [text], seal: '0', places, bytes, ...(taken && { taken }) })
    return true
  }

  /**
   * Queues the seal of `tail`, with its last texts, behind its appends, whatever the bounds (one
   * per session: the claimer waits for it). Resolves once written or refused; rejects with the
   * error Redis answered, or when the queue stops first.
   */
  seal(tail: T, texts: string[], seal: '1' | '2', places = ''): Promise<void> {
    if (this.#stopped)
      return Promise.reject(new RedisUnreachableError('the adapter closed', { at: this.address }))
    const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0)
    return new Promise((resolve, reject) => {
      this.#push({
        tail,
        texts,
        seal,
        places,
        bytes,
        settle: (err) => (err === undefined ? resolve() : reject(err)),
      })
    })
  }

  /**
   * Waits for the queue to empty, at most `ms`, or twice that when Redis answered meanwhile;
   * resolves with how many appends are left.
   *
   * The verdict waits a turn (see `AnswersFirstTimer`): after a stall of this node's thread past
   * `ms`, the answer of the batch on its way, there in the socket, is read first. That is not
   * enough when more wait behind it: the next batch goes only as that answer is read, and needs
   * its own round trip. So a bound that finds the queue not empty, Redis having answered a batch
   * since the wait began, waits `ms` once more: a Redis that answers gets the tails' last
   * appends written, where giving up would leave them short (the claimer reads them incomplete,
   * and the client misses the packets dropped). A Redis that answers nothing (paused, away)
   * gives no more time: the wait still ends, after `ms`.
   */
  settle(ms: number): Promise<number> {
    if (this.#queue.length === 0) return Promise.resolve(0)
    return new Promise((resolve) => {
      const answered = this.#answered
      let extended = false
      const done = () => {
        bound.clear()
        this.#emptied = this.#emptied.filter((call) => call !== done)
        resolve(this.#queue.length)
      }
      const due = () => {
        if (extended || this.#answered === answered || this.#queue.length === 0) return done()
        extended = true
        bound = new AnswersFirstTimer(ms, due, true)
      }
      let bound = new AnswersFirstTimer(ms, due, true)
      this.#emptied.push(done)
    })
  }

  /**
   * Drops what is queued (its seals rejected) and takes no more. Returns how many of the writes
   * dropped were `sent` (Redis got them, unanswered: it may still run them) and how many were
   * `unsent` (never sent: their tails stay without them).
   */
  stop(): { sent: number; unsent: number } {
    this.#stopped = true
    clearTimeout(this.#retry)
    const dropped = this.#queue.splice(0)
    const sent = Math.min(this.#sent, dropped.length)
    this.#sent = 0
    this.#bytes = 0
    for (const [i, queued] of dropped.entries()) {
      const why =
        i < sent
          ? 'the adapter closed before Redis answered the seal; it may still write it'
          : 'the adapter closed'
      queued.settle?.(new RedisUnreachableError(why, { at: this.address }))
      queued.taken?.(undefined)
    }
    for (const done of [...this.#emptied]) done()
    return { sent, unsent: dropped.length - sent }
  }

  #push(queued: Queued<T>): void {
    this.#queue.push(queued)
    this.#bytes += queued.bytes
    // The appends of one tick (a broadcast to many handed-off sessions) go in one batch.
    if (!this.#flushing && !this.#sending) {
      this.#flushing = true
      queueMicrotask(() => {
        this.#flushing = false
        this.#flush()
      })
    }
  }

  #flush(): void {
    if (this.#sending || this.#stopped || this.#queue.length === 0) return
    if (!this.available()) {
      // Nothing tells when Redis answers again but its answers: look again shortly.
      this.#lookAgain()
      return
    }
    const batch = this.#batch()
    const groups = this.#groups(batch)
    this.#sending = true
    // Counted as sent from the moment it goes on the connection, not when it starts to wait its
    // turn: one refused while it waits (as busy, a command gone overdue, the close's stop of
    // the commands) never left, and a close then says that Redis never got it. Told at once,
    // before the close's count, where the refusal reaches `#notWritten` only a few microtasks on.
    let wentOut = false
    const went = () => {
      wentOut = true
      this.#sent = Math.max(this.#sent, batch.length)
    }
    this.write(groups, went).then(
      (took) => {
        const tookByTail = new Map<T, boolean>()
        groups.forEach((group, i) => {
          tookByTail.set(group.tail, took[i] === true)
          if (took[i] && group.tail.landed >= 0) group.tail.landed += group.texts.length
        })
        // Stopped meanwhile: the queue was dropped, and each told then.
        if (this.#stopped) return
        this.#answered++
        this.#done(batch)
        for (const queued of batch) {
          const taken = tookByTail.get(queued.tail) === true
          queued.taken?.(taken || !queued.mayHaveRun ? taken : undefined)
        }
      },
      (err: unknown) => {
        if (wentOut) for (const queued of batch) queued.mayHaveRun = true
        this.#notWritten(batch, err)
      },
    )
  }

  /** Flushes again after `LOOK_AGAIN_MS`, once however often it is asked meanwhile. */
  #lookAgain(): void {
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined
      this.#flush()
    }, LOOK_AGAIN_MS)
    this.#retry.unref()
  }

  /** The oldest queued writes, as many as one batch carries (one at least). */
  #batch(): Queued<T>[] {
    let texts = 0
    let bytes = 0
    let count = 0
    for (const queued of this.#queue) {
      if (count > 0 && (texts + queued.texts.length > BATCH_TEXTS || bytes + queued.bytes > BATCH_BYTES))
        break
      texts += queued.texts.length
      bytes += queued.bytes
      count++
    }
    return this.#queue.slice(0, count)
  }

  /** A batch as one group per tail, each tail's texts in order, its seal last. */
  #groups(batch: Queued<T>[]): TailGroup<T>[] {
    const byTail = new Map<T, TailGroup<T>>()
    for (const { tail, texts, seal, places } of batch) {
      const group = byTail.get(tail)
      if (!group) byTail.set(tail, { tail, texts: [...texts], seal, places })
      else {
        group.texts.push(...texts)
        if (seal !== '0') group.seal = seal
        // The places of its last write: every broadcast read before it is in the texts above.
        if (places !== '') group.places = places
      }
    }
    return [...byTail.values()]
  }

  #notWritten(batch: Queued<T>[], err: unknown): void {
    if (err instanceof RedisBusyError && !this.#stopped) {
      // Never sent: `MAX_QUEUED_COMMANDS` wait their turn already (nor counted as sent: see
      // `#flush`). Tried again shortly, not at once, which would be refused again as fast as it
      // is tried.
      this.#sending = false
      this.#lookAgain()
      return
    }
    if (err instanceof RedisUnreachableError || this.#stopped) {
      // Given up unanswered, it may have run, or run later; refused before it went, it did not
      // run: either way sent again as it is once Redis answers (see the class).
      this.#sending = false
      this.#flush()
      return
    }
    // Redis refused it, and may have run part of the script: what each tail holds is not known
    // now. Its later writes mark it incomplete and append nothing (the claimer would find the
    // texts out of order), and its seal still goes, so that the claimer need not wait for it.
    for (const { tail } of batch) {
      tail.gap = true
      tail.landed = -1
    }
    if (!this.#stopped) this.#answered++
    this.failed(err)
    this.#done(batch, err)
    for (const queued of batch) queued.taken?.(undefined)
  }

  /** Takes `batch`, the head of the queue, out of it, and sends what came behind. */
  #done(batch: Queued<T>[], err?: unknown): void {
    // Stopped meanwhile: the queue and its seals were dropped then.
    if (this.#stopped) return
    this.#queue.splice(0, batch.length)
    this.#sent = Math.max(0, this.#sent - batch.length)
    for (const queued of batch) {
      this.#bytes -= queued.bytes
      queued.settle?.(err)
    }
    this.#sending = false
    if (this.#queue.length === 0) for (const done of [...this.#emptied]) done()
    this.#flush()
  }
}
