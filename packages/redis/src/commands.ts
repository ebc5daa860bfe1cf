import { AnswersFirstTimer } from './answers-first-timer.js'
import { Fifo } from './fifo.js'
import { argsNow, type MadeArgs } from './made-args.js'
import { type RedisClient, redisAddress } from './options.js'
import { RedisBusyError, RedisRefusedError, RedisUnreachableError, send } from './send.js'
import { Undos } from './undos.js'

/**
 * The most commands left unanswered at once: past that, Redis is connected but not answering,
 * and more would only pile up in the connection (memory, then a late burst).
 */
export const MAX_UNANSWERED_COMMANDS = 1000

/**
 * @deprecated The bound holds for every command the adapter sends, not PUBLISHes only: use
 * `MAX_UNANSWERED_COMMANDS`, the same number.
 */
export const MAX_UNANSWERED_PUBLISHES = MAX_UNANSWERED_COMMANDS

/**
 * The most commands waiting behind `MAX_UNANSWERED_COMMANDS` unanswered ones at once (see
 * `Commands.sendInTurn`): a burst of sessions opening on one node waits its turn, bounded; past
 * this, one more is refused with a `RedisBusyError`.
 */
export const MAX_QUEUED_COMMANDS = 10_000

/** A command waiting for its turn behind the unanswered ones (see `Commands.sendInTurn`). */
interface InTurn {
  /** Made when it goes, or is refused, when made as it goes (see `MadeArgs`). */
  readonly args: MadeArgs
  /** Told when it goes on the connection (see `Commands.sendInTurn`). */
  readonly went: (() => void) | undefined
  readonly resolve: (reply: unknown) => void
  readonly reject: (err: unknown) => void
}

/**
 * While Redis cannot be asked (see `Commands.unavailable`), how often a step that waits for it
 * looks again: `whenInTurn` (one look for every step that waits), and the queue of a node's
 * tail appends (tail-writes.ts). Nothing tells when Redis answers again but its answers.
 */
export const LOOK_AGAIN_MS = 20

/** A step that waits for Redis to take its turn again (see `Commands.whenInTurn`). */
interface TurnWait {
  /** Given up past this time (`performance.now()`: a step of the wall clock must not end the wait). */
  readonly until: number
  readonly done: (available: boolean) => void
}

/**
 * Every command the adapter sends on the application's client, with one bound for all of them.
 * node-redis never gives up a command by itself: while Redis is away it queues them offline,
 * and while Redis is connected but answers nothing (stopped, blocked, cut off without a reset)
 * it holds every command written to the connection until Redis answers. Here a command is not
 * sent at all while Redis is not connected, or has left a command unanswered for `timeout`
 * (or `MAX_UNANSWERED_COMMANDS` of them); one that is sent is waited for at most `timeout`.
 * Either way the caller hears a `RedisUnreachableError` and decides: skip and catch up later,
 * count a broadcast as lost, or answer without Redis.
 */
export class Commands {
  /** Commands sent and not answered yet: each marked overdue by its own timer (see `#tracked`). */
  readonly #unanswered = new Set<{ overdue: boolean }>()
  /** How many of `#unanswered` have waited `timeout` or more. */
  #overdue = 0
  readonly #undos: Undos
  /** Steps waiting for Redis (see `whenInTurn`), and the one timer that looks for all of them. */
  readonly #waiting = new Set<TurnWait>()
  #lookAgain: NodeJS.Timeout | undefined
  /** Commands waiting for their turn behind `MAX_UNANSWERED_COMMANDS` unanswered ones, in order. */
  readonly #inTurn = new Fifo<InTurn>()
  /** True once `stop` ran: no step waits for Redis any more. */
  #stopped = false
  /**
   * The errors of commands refused before they went on the connection (see `neverSent`): weakly
   * held, each forgotten with its error.
   */
  readonly #unsent = new WeakSet<object>()
  /** Where the client connects (no credentials): every warning of an unreachable Redis names it. */
  readonly address: string

  constructor(
    readonly client: RedisClient,
    /** `requestTimeout`: the longest wait for any one answer. */
    readonly timeout: number,
    /** An undo was given up before it went through (see `undo`). */
    undoGivenUp: (why: string, err?: unknown) => void = () => {},
  ) {
    this.#undos = new Undos(client, (args) => this.#tracked(args), undoGivenUp)
    this.address = redisAddress(client)
  }

  /** Why a command would not be answered now, or undefined when one may go. */
  unavailable(): string | undefined {
    if (!this.client.isReady) return 'not connected'
    const count = this.#unanswered.size
    if (this.#overdue > 0) return `it has left ${count} command(s) unanswered for ${this.timeout} ms or more`
    // Once stopped, what still goes is the close's own, bounded: the commands that waited their
    // turn (at most MAX_QUEUED_COMMANDS, see `stop`) and the goodbye's few. Refused for the count
    // alone, behind a burst (a drain's thousands of sessions ending), the sessions' end records
    // and owner records, and the goodbye, would be lost though Redis answers.
    if (count >= MAX_UNANSWERED_COMMANDS && !this.#stopped)
      return `it has left ${count} command(s) unanswered`
    return undefined
  }

  /**
   * Sends `args` and resolves with Redis' answer, or rejects with a `RedisRefusedError` when Redis
   * answered with an error (its `cause` what node-redis gave). Rejects
   * with `RedisUnreachableError` at once when `unavailable()`, when no answer came within
   * `timeout`, and when the connection dropped before the answer. A
   * command given up may have run, or still run later, once Redis answers again: callers send
   * this way only what is harmless late, or undo it. Undos that wait go first. `went` is told,
   * before this returns, when the command goes on the connection (see `sendInTurn`).
   */
  send(args: string[], went?: () => void): Promise<unknown> {
    const why = this.unavailable()
    if (why !== undefined)
      return Promise.reject(this.#refused(new RedisUnreachableError(why, { at: this.address })))
    this.#undos.flush()
    const sent = this.#sent(args)
    went?.()
    return sent
  }

  /**
   * Whether `err`, what `send` or `sendInTurn` rejected with, refused the command before it went
   * on the connection: Redis never runs it. Any other rejection may come from a command that
   * ran, or still runs later (given up unanswered), which a caller that must not leave its
   * effect behind takes back (a claim: see `HandOffStore.claim`).
   */
  neverSent(err: unknown): boolean {
    return typeof err === 'object' && err !== null && this.#unsent.has(err)
  }

  /** `err`, marked as the refusal of a command never sent (see `neverSent`). */
  #refused<E extends Error>(err: E): E {
    this.#unsent.add(err)
    return err
  }

  /**
   * As `send`, for a command that must not be given up only because a burst filled the
   * connection (an owner record: given up, the session could not be found from another node
   * until the next heartbeat wrote it again). While Redis answers and none of its commands is
   * overdue, and `MAX_UNANSWERED_COMMANDS` are unanswered, it waits for its turn, in order
   * with the others waiting, and goes as soon as an answer frees a place: Redis answering,
   * that is within `timeout`, else it is refused as `send` would be then. At most
   * `MAX_QUEUED_COMMANDS` wait: past that, one more rejects at once with a `RedisBusyError`.
   * `went` is told when it goes on the connection, at once or at its turn, and never for one
   * refused: a caller that counts what Redis may still run (a close saying what may still land)
   * counts it from then on, and hears of a refusal only a few microtasks later. `args` may be
   * made as it goes (see `MadeArgs`): made when it goes, or is refused, not when it is queued,
   * so that what depends on the time (a PX) counts the wait; made with nothing left to do, it is
   * neither sent nor refused, and resolves undefined (no reply of Redis is).
   */
  sendInTurn(args: MadeArgs, went?: () => void): Promise<unknown> {
    if (this.#inTurn.length === 0 && this.unavailable() === undefined) return this.#sendNow(args, went)
    if (!this.#waitsForTurn()) return this.#sendNow(args, went)
    if (this.#inTurn.length >= MAX_QUEUED_COMMANDS) {
      const now = argsNow(args)
      if (now === undefined) return Promise.resolve(undefined)
      return Promise.reject(
        this.#refused(
          new RedisBusyError(this.#unanswered.size, this.#inTurn.length, {
            command: now[0] ?? '',
            at: this.address,
          }),
        ),
      )
    }
    return new Promise((resolve, reject) => {
      this.#inTurn.push({ args, went, resolve, reject })
    })
  }

  /** `args` made now and given to `send`; made with nothing left to do, resolves undefined unsent. */
  #sendNow(args: MadeArgs, went: (() => void) | undefined): Promise<unknown> {
    const now = argsNow(args)
    return now === undefined ? Promise.resolve(undefined) : this.send(now, went)
  }

  /** Whether the one reason Redis may not be asked now is the number of commands unanswered. */
  #waitsForTurn(): boolean {
    return this.client.isReady && this.#overdue === 0 && !this.#stopped
  }

  /**
   * Whether a command given to `sendInTurn` now would go, or wait its turn while Redis answers,
   * rather than be refused: Redis takes commands, or the one reason it may not be asked is the
   * number unanswered (a burst on this node).
   */
  takesTurns(): boolean {
    return this.unavailable() === undefined || this.#waitsForTurn()
  }

  /**
   * An answer came, or a command went overdue: the commands waiting for their turn go while
   * places are free, in order. Once the count is not the one reason any more, all of them go to
   * `send` at once, which refuses them as it refuses any command then (not connected, a command
   * overdue), or sends them (the adapter stopped: nothing waits for a turn any more).
   */
  #nextInTurn(): void {
    while (this.#inTurn.length > 0) {
      if (this.#waitsForTurn() && this.#unanswered.size >= MAX_UNANSWERED_COMMANDS) return
      const next = this.#inTurn.shift()
      if (!next) return
      this.#sendNow(next.args, next.went).then(next.resolve, next.reject)
    }
  }

  /**
   * For a step that then takes its turn (`sendInTurn`, or `publishInTurn` of publish.ts): whether
   * it would now (see `takesTurns`: Redis takes commands, or the one reason it may not be asked
   * is the number of commands unanswered, a burst on this node while Redis answers), or once it
   * would: looks again every `LOOK_AGAIN_MS`, at most `timeout`; false when it still would not
   * then. A wait for the burst to end instead would starve the step while a burst goes on past
   * `timeout` (sessions opening on and on, broadcasts coming), though Redis answers every
   * command in time. Every step that waits shares one look: at close a drain stores up to
   * `handoff.batchSize` sessions at once, and a Redis away then would otherwise cost a timer
   * for each of them every few milliseconds.
   */
  whenInTurn(): Promise<boolean> {
    if (this.takesTurns()) return Promise.resolve(true)
    // Stopped: nothing looks for Redis any more (see `stop`).
    if (this.#stopped) return Promise.resolve(false)
    return new Promise((done) => {
      this.#waiting.add({ until: performance.now() + this.timeout, done })
      if (this.#lookAgain) return
      this.#lookAgain = setInterval(() => this.#look(), LOOK_AGAIN_MS)
      // It must not hold the process open: each wait is bounded, and the application closes.
      this.#lookAgain.unref()
    })
  }

  /** One look for every step waiting for Redis: all go once it takes commands, each past its time. */
  #look(): void {
    const now = performance.now()
    for (const wait of this.#waiting) {
      const goesOn = this.takesTurns()
      if (!goesOn && now < wait.until) continue
      this.#waiting.delete(wait)
      wait.done(goesOn)
    }
    if (this.#waiting.size > 0) return
    clearInterval(this.#lookAgain)
    this.#lookAgain = undefined
  }

  /**
   * `sendInTurn` once Redis takes commands again: for a step that must not be refused only
   * because Redis is slow, away a moment, or busy (the read-back of a claimed session's tail:
   * refused, the tail would be lost though Redis holds it). Redis slow or away: waits for it at
   * most `timeout` (see `whenInTurn`). Then, or at once behind a burst on this node, it takes its
   * turn, in order behind the commands queued before it, however long the burst lasts while
   * Redis answers; and waits for the answer at most `timeout`. Rejects as `sendInTurn` (with a
   * `RedisBusyError` too, past `MAX_QUEUED_COMMANDS` waiting).
   */
  async sendInTurnWhenAvailable(args: string[]): Promise<unknown> {
    await this.whenInTurn()
    return this.sendInTurn(args)
  }

  /**
   * Takes back a command given up on (see `send`), which may have run: `args` goes on the
   * connection right behind it while Redis is connected, answering or not, else first once the
   * connection is back, and again should that one drop before Redis answers it (see `Undos`).
   * Kept for at most `keepMs`: what it takes back has expired by then. `args` may be made as it
   * goes (see `MadeArgs`). `answered` hears Redis' answer, once it came. Resolves after that, or
   * once the undo is given up. Undos given one `place` take one of the `MAX_KEPT_UNDOS` places
   * between them (see `Undos.add`).
   */
  undo(args: MadeArgs, keepMs: number, answered?: (reply: unknown) => void, place?: string): Promise<void> {
    return this.#undos.add(args, keepMs, answered, place)
  }

  /**
   * Stops listening to the client for its connection coming back (see `Undos`), and ends the
   * steps still waiting for Redis (see `whenInTurn`) with false: the adapter closes, and would
   * use no answer of theirs, while each would wait, and the look for Redis go on, up to `timeout`.
   */
  stop(): void {
    this.#stopped = true
    this.#nextInTurn()
    this.#undos.stop()
    clearInterval(this.#lookAgain)
    this.#lookAgain = undefined
    const waiting = [...this.#waiting]
    this.#waiting.clear()
    for (const wait of waiting) wait.done(false)
  }

  /** Waits at most `ms` for the undos still kept (see `Undos.settle`); resolves with how many are left. */
  settleUndos(ms: number): Promise<number> {
    return this.#undos.settle(ms)
  }

  #sent(args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const wait = this.timeout
      const overdue = () =>
        reject(new RedisUnreachableError(`no answer to ${args[0]} within ${wait} ms`, { at: this.address }))
      this.#tracked(args, overdue).then(
        (value) => resolve(value),
        (err: unknown) => {
          // Not connected any more: the connection dropped before the answer (node-redis
          // rejects what it wrote and had no answer to), and the command may or may not have run.
          // Connected: Redis answered with an error, coded and said with the command's key (one
          // coded already, from a client that gives up by itself, stays as it is).
          reject(
            this.client.isReady
              ? err instanceof RedisUnreachableError || err instanceof RedisRefusedError
                ? err
                : new RedisRefusedError(args, err, this.address)
              : new RedisUnreachableError(`the connection dropped before the answer to ${args[0]}`, {
                  cause: err,
                  at: this.address,
                }),
          )
        },
      )
    })
  }

  /**
   * Sends `args`, counted as unanswered until Redis answers or node-redis gives it up, and as
   * overdue once it waited `timeout`: then `overdue` hears it. One timer judges both, for the
   * bound and the give-up: a clock read beside a timer (`Date.now()`, or even
   * `performance.now()`, against the event loop's cached time the timer started from) can say
   * a millisecond less passed when it fires, and let a command go, a probe say, that the bound
   * must hold back.
   */
  #tracked(args: string[], overdue?: () => void): Promise<unknown> {
    const entry = { overdue: false }
    this.#unanswered.add(entry)
    // The verdict waits one turn of the event loop once the timer ran (see `AnswersFirstTimer`):
    // after a stall of this thread past `timeout`, an answer that came in time, waiting in the
    // socket, would lose to its own bound: the command given up (an append, a heartbeat
    // refused), Redis taken for unreachable, the commands waiting for their turn refused. It
    // must not hold the process open: the application closes as it sees fit.
    const bound = new AnswersFirstTimer(
      this.timeout,
      () => {
        entry.overdue = true
        this.#overdue++
        overdue?.()
        // Redis does not answer: those waiting for their turn are refused now, not at theirs.
        this.#nextInTurn()
      },
      true,
    )
    return send(this.client, args).finally(() => {
      bound.clear()
      this.#unanswered.delete(entry)
      if (entry.overdue) this.#overdue--
      this.#nextInTurn()
    })
  }
}
