import type { Adapter } from './adapter/adapter.js'
import {
  askHandOff,
  handOffTtl,
  notStoredOnRejection,
  safely,
  sealUnclaimed,
  withdrawOnceStored,
  within,
} from './drain.js'
import type { Metrics } from './metrics.js'
import type { Session, SessionState } from './session.js'
import type { ServerSocket } from './socket.js'
import { Storing } from './storing.js'

/** What moves run on. */
export interface MoveContext {
  adapter: Adapter
  /** `handoff.timeout`: the longest a store may take, and a stored session waits for its claim. */
  timeout: number
  /** How long a stored session may wait to be claimed: the recovery window, in ms. */
  ttl: number
  /** Counts each session's outcome (as the drain does). */
  metrics: Metrics
  /** Withdraws `sid`'s snapshot through the adapter (see `withdrawOnceStored`); never rejects. */
  withdraw: (sid: string) => Promise<void>
  /** True while this node is still taking `sid` over (see `DrainContext.arriving`). */
  arriving: (sid: string) => boolean
}

// A socket of any event maps: a move only freezes, hands off and ends.
// biome-ignore lint/suspicious/noExplicitAny: the event maps do not matter here.
type AnySocket = ServerSocket<any, any, any>

const stateOf = (session: Session): SessionState => session.state

interface Moving {
  socket: AnySocket
  timer: NodeJS.Timeout
  /** Resolves `settled`: claimed, or sealed unclaimed. */
  done: () => void
  settled: Promise<void>
}

/**
 * Sessions handed off one at a time, each because another node asked for it: its client resumed
 * there over WebSocket. What the drain does for every session of the node, for one: freeze,
 * store the snapshot, and only then let the old transport go (MOVED: the client is already
 * elsewhere); the session stays, feeding its tail, until the asking node claims it (`claimed`),
 * or until `timeout` passes, when its tail is sealed for a later claim. A session whose snapshot
 * could not be stored thaws and goes on here, nothing lost.
 */
export class Moves {
  readonly #context: MoveContext
  readonly #moving = new Map<string, Moving>()
  /** Frozen, their stores not answered yet: a claim may come first. */
  readonly #storing = new Storing()
  /** Moves started and not yet stored or given up (see `start`), until each is. */
  readonly #starting = new Set<Promise<boolean>>()
  /** By sid, withdrawals still to come: `handOff`s the server did not go on with (see `#withdrawOnceStored`). */
  readonly #late = new Map<string, Promise<void>>()

  constructor(context: MoveContext) {
    this.#context = context
  }

  /** Hands `socket`'s session off; true once stored (see `LocalSockets.handOff`). */
  start(socket: AnySocket): Promise<boolean> {
    const started = this.#start(socket)
    this.#starting.add(started)
    void started.finally(() => this.#starting.delete(started)).catch(() => {})
    return started
  }

  async #start(socket: AnySocket): Promise<boolean> {
    const { adapter, metrics, timeout, ttl } = this.#context
    const session = socket.session
    if (!adapter.handOff || ttl <= 0) return false
    // A session being taken over here has no complete books yet, or no claim that surely
    // stands; a frozen one is moving.
    const sid = session.sid
    if ((session.state !== 'attached' && session.state !== 'detached') || session.restoring) return false
    if (this.#context.arriving(sid)) return false
    // A withdraw still to come would take back the snapshot of this move.
    if (this.withdrawing(sid)) return false
    // A client away until its resume reached the asking node (its transport gone here, its
    // window running since) is promised what is left of that window, as in a drain: should the
    // claim never come (the asking node dies, the resume is dropped), the snapshot must not stay
    // claimable past it. Nothing left (the window's verdict due, its turns under way): not moved;
    // the session's own verdict ends it, unless the resume reaches this node first and wins.
    if (handOffTtl(session, ttl) === 0) return false
    const snapshot = socket.freeze()
    // Read again once frozen: the window may be spent by now, and no verdict runs while frozen.
    const left = handOffTtl(session, ttl)
    if (left === 0) {
      session.endIfWindowSpent()
      return false
    }
    this.#storing.add(socket)
    const answer = askHandOff(adapter, snapshot, left)
    const stored = await within(notStoredOnRejection(answer), timeout, false)
    // Claimed already (see `Storing`), its copy here ended: no claim to await, no snapshot to
    // withdraw.
    if (this.#storing.answered(sid)) {
      metrics.handoff('stored')
      return true
    }
    // It may have ended meanwhile (a tail past maxBufferedBytes, the node closing, the
    // application's `disconnect()`: the server withdrew its snapshot then, perhaps before it
    // was written); read again after the await.
    if (stateOf(session) !== 'frozen') {
      this.#withdrawOnceStored(sid, answer)
      return false
    }
    // Its client away, and its window spent while the store waited: it ends now as that window's
    // end would (its reason, its `disconnect`, its record), as when spent before the store. Thawed,
    // it would wait out the verdict's turns, and a resume read in them would find it kept.
    if (!stored && session.endIfWindowSpent()) {
      this.#withdrawOnceStored(sid, answer)
      return false
    }
    if (!stored) {
      metrics.handoff('failed')
      socket.thaw(snapshot)
      // The session goes on here: a write that stores its snapshot late (or that the store made
      // before its reply was lost) must not let another node claim it too.
      this.#withdrawOnceStored(sid, answer, socket)
      return false
    }
    metrics.handoff('stored')
    let done: () => void = () => {}
    const settled = new Promise<void>((resolve) => {
      done = resolve
    })
    const timer = setTimeout(() => void this.#seal(sid), timeout)
    this.#moving.set(sid, { socket, timer, done, settled })
    socket.handOff(0, true)
    return true
  }

  /**
   * The asking node claimed `sid`: the socket answers its open requests into the tail and ends
   * here. Returns those last packets; undefined for a sid no move holds.
   */
  claimed(sid: string): string[] | undefined {
    const early = this.#storing.claimed(sid)
    if (early) return early
    const entry = this.#moving.get(sid)
    if (!entry) return undefined
    this.#moving.delete(sid)
    clearTimeout(entry.timer)
    entry.done()
    return entry.socket.claimed()
  }

  /**
   * `sid`, frozen for a move, ended here instead (its snapshot is withdrawn, see
   * `Adapter.withdrawHandOff`): its claim is no longer awaited, nor its tail sealed.
   */
  ended(sid: string): void {
    const entry = this.#moving.get(sid)
    if (!entry) return
    this.#moving.delete(sid)
    clearTimeout(entry.timer)
    entry.done()
  }

  /** True while a withdraw may still come for `sid`'s given-up move (see `#withdrawOnceStored`). */
  withdrawing(sid: string): boolean {
    return this.#late.has(sid)
  }

  /**
   * Resolves once every move under way is claimed or sealed, and every withdraw still to come
   * is done (at most `timeout` from now): the adapter closes after this. A move whose store has
   * not answered yet is waited for too (its store is bounded by `timeout`), then as any other:
   * the drain leaves its frozen session to the move, and the server's close would otherwise end
   * it ('server shutdown', on the transport its client is leaving) while its snapshot is being
   * stored, its client resuming on the node that asked for it.
   */
  async settled(): Promise<unknown> {
    await Promise.allSettled([...this.#starting])
    return Promise.allSettled([
      ...[...this.#moving.values()].map((entry) => entry.settled),
      within(Promise.all(this.#late.values()), this.#context.timeout, undefined),
    ])
  }

  /**
   * See `withdrawOnceStored`. Until `answer` comes and the withdraw is done, `sid` is not moved
   * again (that withdraw would take back the next move's snapshot). `thawed`, the session went
   * on here, holding what its client sends until then (see `ServerSocket.thaw`): a withdrawal
   * of a snapshot known stored is counted (no end of the session did; a rejected `handOff`
   * counted `failed` only), and, the session still live, this node records again that it owns
   * it (a stored handoff makes the adapter's owner record name the handoff, which the withdraw
   * removes). An answer that has not come within
   * `ttl` (how long a snapshot is stored: the recovery window) is awaited no longer, and `sid`
   * may move again: a write that has not answered by then is taken for lost. Without that bound,
   * an adapter whose promise never settles would keep `sid` here, never moved again, for the
   * life of the process.
   */
  #withdrawOnceStored(sid: string, answer: Promise<boolean | undefined>, thawed?: AnySocket): void {
    const { adapter, metrics, ttl, withdraw } = this.#context
    // Gone on here: withdrawn at once too, the write still under way. Once it runs, another node
    // could claim its snapshot, older than the session, before a withdraw sent after its answer
    // came; told now, an adapter takes it back right behind it (see `Adapter.withdrawHandOff`).
    const early = thawed ? withdraw(sid) : undefined
    const late = withdrawOnceStored(atMost(answer, ttl), async (stored) => {
      if (thawed && stored) metrics.handoff('withdrawn')
      await withdraw(sid)
      if (thawed && stateOf(thawed.session) !== 'closed')
        await safely(() => adapter.sessionOpened?.(sid, thawed.params))
    })
      .then(() => early)
      .finally(() => this.#late.delete(sid))
    this.#late.set(sid, late)
    // Taken back, the session stayed here (a claim that stood ended it meanwhile): what its
    // client sent since runs now. After `ttl` the snapshot has expired, and no claim can come.
    if (thawed) void atMost(late, ttl).then(() => thawed.keptAfterAll())
  }

  /**
   * Nobody claimed `sid` in time: its tail is sealed, so that a later claim needs not wait. The
   * move stays listed while the adapter settles what it owes the session (see `sealUnclaimed`):
   * a claim that comes meanwhile takes it as any claim does (`claimed`), and nothing is sealed.
   */
  async #seal(sid: string): Promise<void> {
    const entry = this.#moving.get(sid)
    if (!entry) return
    await sealUnclaimed(
      this.#context.adapter,
      sid,
      undefined,
      () => {
        if (this.#moving.get(sid) !== entry) return undefined
        this.#moving.delete(sid)
        // Counted only now: one claimed as the adapter settled it was claimed.
        this.#context.metrics.handoff('unclaimed')
        return entry.socket.claimed()
      },
      this.#context.timeout,
    )
    entry.done()
  }
}

/**
 * `answer`, or undefined once `ms` have passed. The timer does not hold the process open: a
 * node that closes waits for withdrawals at most `timeout` (see `Moves.settled`), not `ttl`.
 */
function atMost<T>(answer: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
    timer.unref()
  })
  return Promise.race([answer, expired]).finally(() => clearTimeout(timer))
}
