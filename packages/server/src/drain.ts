import { CloseReason, decodeText, PacketType } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { Adapter } from './adapter/adapter.js'
import type { Adoption, SessionSnapshot } from './adapter/handoff.js'
import { askToAdopt } from './adoption.js'
import { InputFirstTimer } from './input-first-timer.js'
import type { Metrics } from './metrics.js'
import { sameParams } from './route-params.js'
import type { ServerSocket } from './socket.js'
import { Storing } from './storing.js'

/** The longest the drain waits for the store to seal the tails nobody claimed. */
export const SEAL_WAIT_MS = 2000

/**
 * The longest the server waits for `Adapter.settleHandOff` before it takes a session's last
 * packets and seals its tail: within `SEAL_WAIT_MS`, so that every session nobody claimed is
 * sealed before the drain ends (the server's close would end one still frozen here).
 */
export const SETTLE_WAIT_MS = 1000

/**
 * The part of the drain's wait for claims (its end: half of `handoff.timeout` at most) spent
 * asking live nodes to adopt the sessions nobody claimed (see `Adapter.askAdoption`), as long as
 * `settleHandOff` may take: within the wait, the drain ends no later than without it. Longer for
 * many sessions (see `ADOPT_MS_PER_SESSION`), never past half of the timeout.
 */
export const ADOPT_WAIT_MS = 1000

/**
 * The adoption's wait for each session of the largest share asked of one node, past what
 * `ADOPT_WAIT_MS` holds: an adopter claims them `ADOPT_CLAIMS_AT_ONCE` at a time, each a few
 * round trips through the store and a seal of the draining node's, and one second held a few
 * hundred to some 1 400 (3 000 asked of one node, both nodes in one process on two cores: 440
 * to 1 250 claims a second); the rest were sealed, their clients to miss what was broadcast
 * after. 3 ms covers the slowest of those rates; the wait never grows past half of
 * `handoff.timeout` (see `adoptionWait`).
 */
export const ADOPT_MS_PER_SESSION = 3

/**
 * The longest share of `handoff.timeout` the claims and takeovers under way (sessions this node
 * is taking over from another node) hold the hand-off of the node's own sessions. After the
 * wait come, for those, their stores (each batch waited for out of all that is left: against the
 * slow store that holds the arrivals back, long too), their clients' resumes, spread over
 * `handoff.retrySpread` (1 s by default, a fifth of the default timeout), and their claims,
 * before the adoption's share at the end (`ADOPT_WAIT_MS`, at most half). Waited for the whole
 * timeout, slow arrivals left the node no time to hand on anything: every session of its own
 * ended 'server shutdown'. A quarter leaves them 3.75 of the default 5 s (2.75 before the
 * adoption's last second), and a quarter of any timeout before the adoption; an arrival that
 * completes in a few round trips, as most do, is handed on with them all the same.
 */
export const ARRIVALS_AHEAD_SHARE = 0.25

/**
 * The longest share of `handoff.timeout` the drain waits for the arrivals in all: one that
 * completes after the node's own sessions were listed, but by then, joins the drain, handed on
 * as they are (see `Drain.run`). Half, so that it is handed on before the adoption's share
 * begins (the last second, at most half), with the rest for its store and its client's resume.
 * A session one still under way then takes over here ends at close, or, its claim answered only
 * after the close, is given back, as before (its client starts anew): the drain warns how many.
 */
export const ARRIVALS_SHARE = 0.5

/** What a drain runs on. */
export interface DrainContext {
  adapter: Adapter
  options: { timeout: number; batchSize: number; retrySpread: number }
  /**
   * The recovery window, in ms: how long a stored session may wait to be claimed when its client
   * is told to resume elsewhere now (see `handOffTtl` for one whose client was away already).
   */
  ttl: number
  log: FastifyBaseLogger
  /** The `retryAfter` of a CLOSE 'server shutdown', for a session that could not be handed off. */
  shutdownRetryAfter: () => number
  /** Counts each session's outcome. */
  metrics: Metrics
  /** Withdraws `sid`'s snapshot through the adapter (see `withdrawOnceStored`); never rejects. */
  withdraw: (sid: string) => Promise<void>
  /**
   * True while this node is still taking `sid` over, its claim not yet confirmed (see
   * `SessionClaim.confirm`): past the old node's tail too, the claim may still turn out 'kept'
   * or 'ended', and the takeover drop the session while its snapshot, handed on, stays
   * claimable elsewhere.
   */
  arriving: (sid: string) => boolean
}

// A socket of any event maps: the drain only freezes, hands off and ends.
// biome-ignore lint/suspicious/noExplicitAny: the event maps do not matter here.
type AnySocket = ServerSocket<any, any, any>

/**
 * A node's drain with handoff. In batches of `batchSize`, each live session is frozen (nothing
 * more is read from its client), its snapshot stored through the adapter, and only then its
 * client told to resume elsewhere (CLOSE 'server handoff', `retryAfter` spread over
 * `retrySpread`); a session whose snapshot could not be stored in time ends as without handoff
 * ('server shutdown'). Handed-off sessions stay here, feeding their tails, until another node
 * claims them (`claimed`) or the timeout passes; the tails of those nobody claimed are sealed.
 * Sessions the timeout leaves untouched are ended by the server's `close`, as before.
 */
export class Drain {
  readonly #context: DrainContext
  /** Handed off and not claimed yet, by sid. */
  readonly #handedOff = new Map<string, AnySocket>()
  /**
   * Not claimed before the timeout, their tails about to be sealed, by sid: a claim may still
   * come while the adapter settles what it owes them (see `sealUnclaimed`).
   */
  readonly #sealing = new Map<string, AnySocket>()
  /** The batch under way, its stores not answered yet: a claim may come first. */
  readonly #storing = new Storing()
  /** Resumes of those sent on to a live node, until their answers went (see `sendingOn`). */
  readonly #sentOn = new Set<Promise<unknown>>()
  /** Withdrawals that wait for a `handOff` the drain did not go on with (see `withdrawOnceStored`). */
  readonly #late = new Set<Promise<void>>()
  /** Sessions not stored in time that finish here, until their held events run (see `#finishHere`). */
  readonly #finishing = new Set<Promise<void>>()
  /** Events that ran here before their snapshot was known taken back (see `#finishHere`). */
  #unsure = { events: 0, sessions: 0 }
  #allClaimed: (() => void) | undefined
  /** The sid the drain is ending itself (see `givingUp`). */
  #givingUp: string | undefined
  #done: Promise<void> = Promise.resolve()

  constructor(context: DrainContext) {
    this.#context = context
  }

  /** Resolves when the drain is over. */
  get done(): Promise<void> {
    return this.#done
  }

  /**
   * Starts the drain of the sockets `sockets()` lists. `arrivals()` lists the claims and
   * takeovers under way (sessions this node is taking over from another node's drain: frozen
   * half-way, before their rooms are joined and their tail is in, they would be handed on without
   * them). They are waited for first, but no longer than `ARRIVALS_AHEAD_SHARE` of the timeout:
   * slow ones (a claim or a tail read against a slow store) must not leave the node no time to
   * hand on its own sessions. Those still under way then are skipped, and waited for again once
   * the others are handed on, until `ARRIVALS_SHARE` of the timeout: a session one of them left
   * live here meanwhile joins the drain, handed on as the others. One still under way after that
   * is said in a warning, with how many: a session it takes over here ends at close.
   */
  run(
    sockets: () => readonly AnySocket[],
    arrivals: () => readonly Promise<unknown>[] = () => [],
  ): Promise<void> {
    this.#done = this.#run(sockets, arrivals)
    return this.#done
  }

  /**
   * True while `sid` is handed off (stored for another node to claim) and not claimed yet; with
   * `params`, only when the session opened under them (a resume under others is not its client's).
   */
  holds(sid: string, params?: Readonly<Record<string, string>>): boolean {
    const socket = this.#handedOff.get(sid)
    return socket !== undefined && (params === undefined || sameParams(socket.params, params))
  }

  /**
   * A resume of a session handed off here, sent on to a live node (which claims it): the drain
   * ends only once `answered` settles (the answer went back to the client), within the
   * timeout. The claim ends the wait for claims at once; without this one, the node would
   * close under the answer on its way back, and the client would have to resume once more.
   */
  sendingOn(answered: Promise<unknown>): void {
    this.#sentOn.add(answered)
    void answered.finally(() => this.#sentOn.delete(answered)).catch(() => {})
  }

  /**
   * Another node claimed `sid`: the socket answers its open requests into the tail and ends
   * here. Returns those last packets (for `LocalSockets.claimed`); empty for a sid this drain
   * does not hold.
   */
  claimed(sid: string): string[] {
    const early = this.#storing.claimed(sid)
    if (early) return early
    const sealing = this.#sealing.get(sid)
    if (sealing) {
      this.#sealing.delete(sid)
      return sealing.claimed()
    }
    const socket = this.#handedOff.get(sid)
    if (!socket) return []
    this.#handedOff.delete(sid)
    const last = socket.claimed()
    if (this.#handedOff.size === 0) this.#allClaimed?.()
    return last
  }

  /**
   * True while the drain ends `sid` itself: its snapshot not stored in time (counted `failed`
   * here), or unclaimed once its client's window ran out (counted `unclaimed`, see `#endSpent`).
   * That end is not also counted `withdrawn`.
   */
  givingUp(sid: string): boolean {
    return this.#givingUp === sid
  }

  /**
   * `sid`, frozen here, ended instead of moving (its snapshot is withdrawn, see
   * `Adapter.withdrawHandOff`): no claim is awaited for it, nor its tail sealed.
   */
  ended(sid: string): void {
    this.#sealing.delete(sid)
    if (!this.#handedOff.delete(sid)) return
    if (this.#handedOff.size === 0) this.#allClaimed?.()
  }

  async #run(list: () => readonly AnySocket[], arrivals: () => readonly Promise<unknown>[]): Promise<void> {
    const { adapter, options, log } = this.#context
    const start = performance.now()
    const deadline = start + options.timeout
    const arrived = () => Promise.allSettled(arrivals())
    await within(arrived(), options.timeout * ARRIVALS_AHEAD_SHARE, undefined)
    const counts = { handedOff: 0, failed: 0 }
    // The sids frozen for a handoff: one not stored in time may be live again (its events
    // finishing here, see `#finishHere`), and is not frozen twice.
    const tried = new Set<string>()
    // Read before the list: one that ends while the node's own sessions are stored is late too.
    const arrivingAtList = arrivals().length > 0
    await this.#handOn(list(), deadline, counts, tried)
    if (arrivingAtList) {
      await within(arrived(), start + options.timeout * ARRIVALS_SHARE - performance.now(), undefined)
      await this.#handOn(
        list().filter(({ session }) => !tried.has(session.sid)),
        deadline,
        counts,
        tried,
      )
      const arriving = arrivals().length
      if (arriving > 0)
        log.warn(
          { arriving },
          'parley: drain: claims or takeovers of sessions from other nodes were still under way when the drain stopped waiting for them; a session they take over here ends at close',
        )
    }
    // Every client told to resume elsewhere by now: each does within `retrySpread` of this.
    const handedOnAt = performance.now()
    if (tried.size === 0) return
    const { handedOff, failed } = counts
    if (failed > 0) {
      log.warn({ failed }, 'parley: drain: sessions could not be stored for handoff and ended')
    }
    // Alone, nothing can claim them before the timeout: sealed at once (see `Adapter.otherNodes`).
    const alone = this.#handedOff.size > 0 && (await safely(() => adapter.otherNodes?.())) === 0
    if (this.#handedOff.size > 0 && !alone) {
      const claimed = new Promise<void>((resolve) => {
        this.#allClaimed = resolve
      })
      const adoptWait = adapter.askAdoption
        ? await this.#adoptWait(deadline, handedOnAt + options.retrySpread)
        : 0
      await within(claimed, deadline - adoptWait - performance.now(), undefined)
      if (this.#handedOff.size > 0 && adoptWait > 0) await this.#adopt(handedOff, deadline, adoptWait)
      await within(claimed, deadline - performance.now(), undefined)
    }
    if (this.#sentOn.size > 0)
      await within(Promise.allSettled([...this.#sentOn]), deadline - performance.now(), undefined)
    this.#endSpent()
    const unclaimed = [...this.#handedOff]
    this.#handedOff.clear()
    let settledCount = 0
    let sealed = 0
    // Said once the adapter settled every one of them (`sealUnclaimed` calls `last` once each,
    // within SETTLE_WAIT_MS): one claimed or ended meanwhile is not counted.
    const settledOne = () => {
      if (++settledCount < unclaimed.length || sealed === 0) return
      if (alone) {
        log.info(
          { unclaimed: sealed, handedOff },
          'parley: drain: no other node is alive to claim the sessions; their tails are sealed for a node that starts later',
        )
      } else {
        log.warn(
          { unclaimed: sealed, handedOff },
          'parley: drain: sessions were not claimed before the timeout; their tails are sealed',
        )
      }
    }
    const seals = unclaimed.map(([sid, socket]) => {
      this.#sealing.set(sid, socket)
      return sealUnclaimed(adapter, sid, alone, () => {
        try {
          // Claimed meanwhile, or ended: that claim took its last packets; nothing is sealed.
          if (!this.#sealing.delete(sid)) return undefined
          // Counted only now: one claimed as the adapter settled it was claimed, one ended
          // then was withdrawn.
          sealed++
          this.#context.metrics.handoff('unclaimed')
          return socket.claimed()
        } finally {
          settledOne()
        }
      })
    })
    // Late withdrawals too: the adapter closes after the drain, and one made then may be lost.
    // The sessions that finish here are bounded each (see `#finishHere`): by the deadline and
    // SEAL_WAIT_MS, which this wait is too, at the latest.
    const ends = [...seals, ...this.#late]
    await Promise.all([
      ends.length > 0 ? within(Promise.all(ends), SEAL_WAIT_MS, undefined) : undefined,
      ...this.#finishing,
    ])
    const unsure = this.#unsure
    if (unsure.events > 0) {
      log.warn(
        { events: unsure.events, sessions: unsure.sessions },
        'parley: drain: sessions could not be stored for handoff, and the store did not confirm in time that their snapshots were taken back; the events their socket middleware held (acknowledged to their clients) ran here all the same: a node that claimed such a snapshot would run them once more',
      )
    }
  }

  /**
   * Hands on `sockets` in batches of `batchSize`, within `deadline`, counting each outcome in
   * `counts`, and the sid of each one frozen in `tried`. A session still being taken over here
   * is skipped (see below).
   */
  async #handOn(
    sockets: readonly AnySocket[],
    deadline: number,
    counts: { handedOff: number; failed: number },
    tried: Set<string>,
  ): Promise<void> {
    const { adapter, options, ttl } = this.#context
    for (let i = 0; i < sockets.length; i += options.batchSize) {
      const left = deadline - performance.now()
      if (left <= 0) break
      const batch = sockets
        .slice(i, i + options.batchSize)
        // A session still being taken over here has no complete books to hand on, or no claim
        // that surely stands: skipped, and listed again once the arrivals are over (see `#run`);
        // one still arriving then ends at close, as without handoff.
        .filter(
          ({ session }) =>
            (session.state === 'attached' || session.state === 'detached') &&
            !session.restoring &&
            !this.#context.arriving(session.sid),
        )
        // A client away whose window is spent: no resume can come for its session, which ends
        // now as that window's end would, rather than be stored for a claim that cannot come
        // and sealed at the drain's end.
        .filter(({ session }) => !session.endIfWindowSpent())
      const snapshots = batch.map((socket) => socket.freeze())
      for (const socket of batch) {
        tried.add(socket.session.sid)
        this.#storing.add(socket)
      }
      // Each for what is left of its client's window: an away client's has been running. One
      // spent since the check above (the batch's freezes, a stall of the thread) ends as that
      // window's end would, as there: stored for nothing, the session would be lost with no end
      // said anywhere (no `disconnect`, no record of how it ended).
      const answers = snapshots.map((snapshot, k) => {
        const session = batch[k]?.session
        const left = handOffTtl(session, ttl)
        if (left > 0) return askHandOff(adapter, snapshot, left)
        session?.endIfWindowSpent()
        return Promise.resolve(false)
      })
      // A rejection counts as not stored (see `withdrawOnceStored` for what follows it).
      const stored = await Promise.all(
        answers.map((answer) => within(notStoredOnRejection(answer), left, false)),
      )
      batch.forEach((socket, k) => {
        const sid = socket.session.sid
        const answer = answers[k] ?? Promise.resolve(undefined)
        // Claimed already (see `Storing`), its copy here ended: no claim to await, no snapshot
        // to withdraw.
        if (this.#storing.answered(sid)) {
          counts.handedOff++
          this.#context.metrics.handoff('stored')
          return
        }
        // It may have ended meanwhile (a tail past maxBufferedBytes, the application's
        // `disconnect()`): the server withdrew its snapshot then, perhaps before it was written.
        if (socket.session.state !== 'frozen') {
          this.#withdrawOnceStored(sid, answer)
          return
        }
        if (stored[k]) {
          this.#handedOff.set(socket.session.sid, socket)
          socket.handOff(Math.floor(Math.random() * (options.retrySpread + 1)))
          counts.handedOff++
          this.#context.metrics.handoff('stored')
        } else {
          counts.failed++
          this.#context.metrics.handoff('failed')
          // Its client away, and its window spent while the store waited (for Redis, or its
          // turn: the adapter then writes nothing): it ends as that window's end would, the
          // events its middleware held with it, as on a node that never drains (its pipeline
          // drops what waits). Finishing here, it would end so only after its verdict's turns,
          // its snapshot's take-back under way.
          if (socket.session.endIfWindowSpent()) {
            this.#withdrawOnceStored(sid, answer)
            return
          }
          const snapshot = snapshots[k]
          if (snapshot && snapshot.waiting.length > 0) {
            this.#finishHere(socket, snapshot, answer, deadline)
            return
          }
          // Its end withdraws the snapshot at once; a write still under way may store it after
          // (and answer true, or reject): it is withdrawn again then.
          this.#givingUp = sid
          try {
            socket.session.end(CloseReason.SERVER_SHUTDOWN, {
              retryAfter: this.#context.shutdownRetryAfter(),
              kind: 'shutdown',
            })
          } finally {
            this.#givingUp = undefined
          }
          this.#withdrawOnceStored(sid, answer)
        }
      })
    }
  }

  /**
   * How long before `deadline` the adoption begins (see `#adopt`): `ADOPT_WAIT_MS` (at most half
   * of the timeout), as before, for a few hundred sessions; longer for more, by the largest share
   * one adopter gets (see `adoptionWait`), though never before `spreadEnd`, when the last client
   * told to resume elsewhere has had its turn (`retrySpread` after the last was told): a session
   * adopted sooner may be one its client was about to claim, and would move twice.
   */
  async #adoptWait(deadline: number, spreadEnd: number): Promise<number> {
    const { adapter, options } = this.#context
    const least = Math.min(ADOPT_WAIT_MS, options.timeout / 2)
    const given = await safely(() => adapter.adopters?.())
    const nodes = Array.isArray(given) ? given.length : 0
    const sized = adoptionWait(this.#handedOff.size, nodes, options.timeout)
    return Math.max(least, Math.min(sized, deadline - spreadEnd))
  }

  /**
   * The end of the wait for claims, sessions still unclaimed: their clients are away (asleep, in
   * a tunnel) and would come back to a sealed tail, missing what was sent to them from the seal
   * on. Each is asked of a live node in turn (round-robin over `Adapter.adopters`, one request
   * per node), which claims it through the store as a resume would, and keeps it for its client
   * until its recovery window ends; the share of a node that does not say it took the request
   * soon (dead or stuck, still in the live set) is asked of another, and what a node that took
   * fewer than asked left (it began to close since it was listed) is asked of one that adopted,
   * once more at most (see `askToAdopt`). The
   * claims reach this drain as any claim does (`claimed`); the wait ends when every node that
   * took its share answered, or at the drain's deadline. What is left is sealed as before. Said
   * once, at info, with how many were adopted; the silent nodes' shares asked again, once, at
   * warn; the sessions of short answers asked again, once, at info.
   */
  async #adopt(handedOff: number, deadline: number, wait: number): Promise<void> {
    const { adapter, log } = this.#context
    const given = await safely(() => adapter.adopters?.())
    // Only ids: an adapter that answers anything else is asked nothing.
    const nodes = Array.isArray(given) ? given.filter((node): node is string => typeof node === 'string') : []
    if (nodes.length === 0 || this.#handedOff.size === 0) return
    const sessions: Adoption[] = []
    for (const [sid, socket] of this.#handedOff) {
      const left = socket.session.recoveryLeft()
      // Its client's window is over: no resume can come for it (it ends before the seal: see
      // `#endSpent`).
      if (left > 0) sessions.push({ sid, params: { ...socket.params }, left })
    }
    const { adopted, silent, reasked, short, reaskedShort } = await askToAdopt({
      adapter,
      nodes,
      sessions,
      unclaimed: (sid) => this.#handedOff.has(sid),
      deadline,
      wait,
    })
    if (silent.length > 0)
      log.warn(
        { silent: silent.length, reasked },
        'parley: drain: nodes asked to adopt sessions did not say they took the request; the sessions still unclaimed were asked of other live nodes',
      )
    // Not a warning: in a rolling deploy, a node listed when asked may have begun to close since
    // (it adopts none); asked again, nothing is lost. What is left is sealed, and warned of then.
    if (short > 0)
      log.info(
        { short, reasked: reaskedShort },
        'parley: drain: nodes asked to adopt sessions took fewer than asked (closing too, say); the sessions still unclaimed were asked of a node that adopted',
      )
    if (adopted > 0)
      log.info(
        { adopted, handedOff },
        'parley: drain: live nodes adopted sessions nobody claimed; each waits there for its client to resume',
      )
  }

  /**
   * Ends the sessions handed off here, unclaimed, whose client's window ran out: stored for what
   * was left of it, their snapshots expired with it, and no resume, claim or adoption can take
   * them. Sealed, each would end here 'server handoff', as if it went on elsewhere, and no node
   * would ever say how it ended: no `disconnect` with its window's reason, no record for a late
   * resume. Each ends as its window's end would on a node that never drains (the reason its
   * transport's loss gave, 'transport close' for one told to resume elsewhere), its snapshot
   * withdrawn (see `ended`).
   */
  #endSpent(): void {
    for (const socket of [...this.#handedOff.values()]) {
      const session = socket.session
      if (session.recoveryLeft() > 0) continue
      // Nobody took it: counted `unclaimed`, as a sealed one is, not also `withdrawn`.
      this.#context.metrics.handoff('unclaimed')
      this.#givingUp = session.sid
      try {
        if (!session.endIfWindowSpent()) session.end(CloseReason.TRANSPORT_CLOSE)
      } finally {
        this.#givingUp = undefined
      }
    }
  }

  /**
   * `socket`'s snapshot was not stored in time, and the freeze took events out of its middleware
   * that the session had acknowledged: they are in the snapshot alone. Ended now, the session
   * would lose them; run now, they could run twice, should the write land late and another node
   * claim it. So the session goes back on its transport refusing new events (see
   * `ServerSocket.stayToFinish`), its snapshot is withdrawn at once, the write still under way
   * (an adapter that can takes it back right behind it, and revokes a claim that won meanwhile),
   * and again once the answer says stored; once both are done, the events run here, and the
   * session ends with the ACK it owes and CLOSE 'server shutdown' (at `close`, when the middleware
   * still holds events then: see `ParleyServer.finishEvents`). A claim that stood after all (taken
   * over before the take-back ran, see `LocalSockets.takenOver`) ends the session here instead,
   * its events left to the claimer. A take-back that does not land by the deadline and
   * SEAL_WAIT_MS (the store unreachable) is given up on: the events run here all the same,
   * rather than be lost for sure, and the drain warns how many.
   */
  #finishHere(
    socket: AnySocket,
    snapshot: SessionSnapshot,
    answer: Promise<boolean | undefined>,
    deadline: number,
  ): void {
    const { sid } = socket.session
    socket.stayToFinish(snapshot)
    const withdraw = () => this.#context.withdraw(sid)
    const takenBack = Promise.all([withdraw(), withdrawOnceStored(answer, withdraw)]).then(() => true)
    const finished = within(takenBack, deadline - performance.now() + SEAL_WAIT_MS, false).then((landed) => {
      if (!socket.connected) return
      if (!landed) {
        this.#unsure.events += snapshot.waiting.length
        this.#unsure.sessions++
      }
      socket.keptAfterAll()
      if (socket.connected && socket.eventsInMiddleware === 0)
        socket.session.end(CloseReason.SERVER_SHUTDOWN, {
          retryAfter: this.#context.shutdownRetryAfter(),
          kind: 'shutdown',
        })
    })
    this.#finishing.add(finished)
  }

  /** See `withdrawOnceStored`: the wait for it is bounded by the end of the drain. */
  #withdrawOnceStored(sid: string, answer: Promise<boolean | undefined>): void {
    const late = withdrawOnceStored(answer, () => this.#context.withdraw(sid))
    this.#late.add(late)
    void late.finally(() => this.#late.delete(late))
  }
}

/**
 * The adoption's wait for `sessions` dealt over `adopters` nodes, in ms: `ADOPT_MS_PER_SESSION`
 * for each of the largest share, at least `ADOPT_WAIT_MS`, at most half of `timeout` (the other
 * half is the stores' and the clients' resumes').
 */
export function adoptionWait(sessions: number, adopters: number, timeout: number): number {
  const share = Math.ceil(sessions / Math.max(1, adopters))
  return Math.min(timeout / 2, Math.max(ADOPT_WAIT_MS, share * ADOPT_MS_PER_SESSION))
}

/**
 * The ack ids of the questions the tail's packets ask the client (EVENTs with an ack id): the old
 * node's emits with a reply made after its snapshot, whose ids no snapshot holds.
 */
export function askedIn(tail: readonly string[]): number[] {
  const asked: number[] = []
  for (const text of tail) {
    const decoded = decodeText(text, { maxPayload: Number.MAX_SAFE_INTEGER })
    if (decoded.ok && decoded.packet.type === PacketType.EVENT && decoded.packet.ackId > 0)
      asked.push(decoded.packet.ackId)
  }
  return asked
}

/** The ack ids of the client requests the tail's packets answer (REPLY, or ERROR with an ack id). */
export function answeredIn(tail: readonly string[]): Set<number> {
  const answered = new Set<number>()
  for (const text of tail) {
    const decoded = decodeText(text, { maxPayload: Number.MAX_SAFE_INTEGER })
    if (!decoded.ok) continue
    const packet = decoded.packet
    if (packet.type === PacketType.REPLY || packet.type === PacketType.ERROR) answered.add(packet.ackId)
  }
  return answered
}

/**
 * How long the snapshot of `session`, frozen for a handoff, is stored for a claim, in ms: the whole
 * recovery window `ttl` when its client is still connected (its window starts as it is told to
 * resume elsewhere), and what is left of it when its client was away already (its transport gone
 * before the drain, its window running since: see `Session.recoveryLeft`). Stored for a whole new
 * window, such a session would be claimable, and kept by the node that takes it over without its
 * client (see `SessionClaim.recoveryLeft`), past the end of its client's. 0 when that window is
 * spent: nothing is stored, and the session ends as the window's end would (see
 * `Session.endIfWindowSpent`); stored for the shortest life a store takes, it would expire with
 * no end said anywhere.
 */
export function handOffTtl(session: { recoveryLeft(): number } | undefined, ttl: number): number {
  const left = session?.recoveryLeft() ?? ttl
  return Math.max(0, Math.min(ttl, left))
}

/**
 * `adapter.handOff(snapshot, ttl)`'s answer, a throw turned into a rejection: like a rejection,
 * it does not prove that nothing was written (see `withdrawOnceStored`).
 */
export function askHandOff(
  adapter: Adapter,
  snapshot: SessionSnapshot,
  ttl: number,
): Promise<boolean | undefined> {
  try {
    return Promise.resolve(adapter.handOff?.(snapshot, ttl))
  } catch (err) {
    return Promise.reject(err)
  }
}

/** `answer`, with a rejection read as "not stored": what the server waits on. */
export function notStoredOnRejection(answer: Promise<boolean | undefined>): Promise<boolean | undefined> {
  return answer.catch(() => false)
}

/**
 * For a handoff the server does not go on with (`handOff` answered after the server stopped
 * waiting, or rejected, or the session ended while it was under way): once `answer` says the
 * snapshot was stored (`withdraw(true)`), or rejects (`withdraw(false)`), the snapshot is taken
 * back. A rejection is no proof that nothing was written: a store whose reply was lost (a
 * timeout after the write reached it, a dropped connection) may hold a claimable snapshot of a
 * session that ended here or goes on here, and a withdraw of a snapshot that is not stored does
 * nothing (see `Adapter.withdrawHandOff`). A withdraw made before may have reached the store
 * before the write did, and an adapter need not undo a write it finishes late; a withdraw made
 * after the write answered comes after it. Never rejects (nor does `withdraw`).
 */
export async function withdrawOnceStored(
  answer: Promise<boolean | undefined>,
  withdraw: (stored: boolean) => Promise<void>,
): Promise<void> {
  const outcome = await answer.then(
    (stored) => (stored === true ? 'stored' : 'not stored'),
    () => 'rejected',
  )
  if (outcome !== 'not stored') await withdraw(outcome === 'stored')
}

/**
 * Seals the tail of `sid`, which nobody claimed: once the adapter gave the session what it still
 * owes it (`Adapter.settleHandOff`, waited for at most `SETTLE_WAIT_MS`), `last()` takes its
 * last packets (undefined: a claim came meanwhile and took them, or the session ended), and
 * `sealHandOff` appends them and seals. Taken before the settle, the last packets would leave
 * out what the adapter delivers then, and the session would get it nowhere. Never rejects.
 */
export async function sealUnclaimed(
  adapter: Adapter,
  sid: string,
  /** `sealHandOff`'s `alone`; left out for a move. */
  alone: boolean | undefined,
  last: () => string[] | undefined,
  /** The longest wait for `sealHandOff` once called; unbounded here when left out. */
  sealWait?: number,
): Promise<void> {
  // The bound's verdict waits for the input that came meanwhile (see `withinAfterInput`): what
  // ends the settle comes on the adapter's connections, and the packets it delivers then must go
  // before the last ones, not after the seal, where the session would miss them.
  if (adapter.settleHandOff)
    await withinAfterInput(
      safely(() => adapter.settleHandOff?.(sid, SETTLE_WAIT_MS)),
      SETTLE_WAIT_MS,
      undefined,
    )
  const packets = last()
  if (packets === undefined) return
  const sealed = safely(() =>
    alone === undefined ? adapter.sealHandOff?.(sid, packets) : adapter.sealHandOff?.(sid, packets, alone),
  )
  await (sealWait === undefined ? sealed : within(sealed, sealWait, undefined))
}

/** `work()`'s promise, with a throw or a rejection turned into undefined. */
export async function safely<T>(work: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await work()
  } catch {
    return undefined
  }
}

/**
 * `within`, its verdict given two turns of the event loop after its timer (see
 * `InputFirstTimer`): after a stall of the thread past `ms`, a `promise` that input read
 * meanwhile settles wins over the bound that ran out only because the thread did not look.
 */
export function withinAfterInput<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: InputFirstTimer | undefined
  const timeout = new Promise<F>((resolve) => {
    timer = new InputFirstTimer(ms, () => resolve(fallback))
  })
  return Promise.race([promise, timeout]).finally(() => timer?.clear())
}

/** `promise`, or `fallback` after `ms` (at least 0). */
export function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), Math.max(0, ms))
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
