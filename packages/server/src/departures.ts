import type { EventsMap } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { Adapter } from './adapter/adapter.js'
import type { AdapterFailures } from './adapter-failures.js'
import { Drain } from './drain.js'
import type { Metrics } from './metrics.js'
import { Moves } from './move.js'
import type { ResolvedOptions } from './options.js'
import { sameParams } from './route-params.js'
import type { ServerSocket } from './socket.js'

/** What sessions leaving this node need from the server. */
export interface DeparturesContext<L extends EventsMap, E extends EventsMap, D> {
  adapter: Adapter
  /** The `handoff` option: false, none leaves. */
  handoff: ResolvedOptions['handoff']
  /** The recovery window, in ms: how long a stored session waits to be claimed. */
  recoveryWindow: number
  log: FastifyBaseLogger
  metrics: Metrics
  adapterFailures: AdapterFailures
  /** The `retryAfter` of one session's CLOSE 'server shutdown' (see `Shutdown.retryAfter`). */
  shutdownRetryAfter: () => number
  /** The socket of `sid`'s session, if it is alive here. */
  socketOf: (sid: string) => ServerSocket<L, E, D> | undefined
  /** Every socket whose session is alive here, at the moment of the call. */
  sockets: () => ServerSocket<L, E, D>[]
  /** True while this node is still taking `sid` over (see `Arrivals.arriving`). */
  arriving: (sid: string) => boolean
  /** The claims and takeovers under way (see `Arrivals.underWay`). */
  arrivalsUnderWay: () => Promise<unknown>[]
  /** True once `drain()` or `close()` has begun. */
  closing: () => boolean
}

/**
 * Sessions leaving this node for another one: one at a time when another node asks for one
 * (see `Moves`), every one when the node drains (see `Drain`), and the snapshots taken back when
 * a session ends here while handed off. Apart from the server, which only says when the node
 * drains and when a session ends, so that both kinds of handoff, and what the adapter asks of
 * them (`LocalSockets.claimed`, `handOff`, `takenOver`), live together.
 */
export class Departures<L extends EventsMap, E extends EventsMap, D> {
  readonly #context: DeparturesContext<L, E, D>
  /** Sessions handed off one at a time, on another node's request; none with `handoff: false`. */
  readonly #moves: Moves | undefined
  /** The drain under way (see `drain`), once the node has begun to close. */
  #drain: Drain | undefined
  /** The drain and the moves under way when it began, both over. */
  #drained: Promise<void> | undefined

  constructor(context: DeparturesContext<L, E, D>) {
    this.#context = context
    const { handoff } = context
    this.#moves =
      handoff === false
        ? undefined
        : new Moves({
            adapter: context.adapter,
            timeout: handoff.timeout,
            ttl: context.recoveryWindow,
            metrics: context.metrics,
            withdraw: (sid) => this.#withdrawSnapshot(sid),
            arriving: (sid) => context.arriving(sid),
          })
  }

  /** What another node's claim of `sid` takes from this node (see `LocalSockets.claimed`). */
  claimed(sid: string): string[] {
    return this.#moves?.claimed(sid) ?? this.#drain?.claimed(sid) ?? []
  }

  /**
   * Drains the node (see `ParleyServer.drain`); the caller has begun closing. Calling it again
   * returns the same promise.
   */
  drain(): Promise<void> {
    if (this.#drained) return this.#drained
    const context = this.#context
    const { adapter, handoff } = context
    const canHandOff = handoff !== false && !!adapter.handOff && !!adapter.claimSession
    this.#drain = new Drain({
      adapter,
      options: handoff || { timeout: 0, batchSize: 1, retrySpread: 0 },
      ttl: context.recoveryWindow,
      log: context.log,
      shutdownRetryAfter: context.shutdownRetryAfter,
      metrics: context.metrics,
      withdraw: (sid) => this.#withdrawSnapshot(sid),
      arriving: (sid) => context.arriving(sid),
    })
    // A session this node is still claiming or taking over joins the drain once it is live here
    // (a claim that loses, or a takeover that drops the session, leaves nothing), within a share
    // of the timeout (see `Drain.run`). One whose given-up move may still be withdrawn is not
    // handed off: that withdraw would take back the drain's snapshot (it ends at close, as
    // without handoff).
    const drained = this.#drain.run(
      () =>
        canHandOff ? context.sockets().filter(({ session }) => !this.#moves?.withdrawing(session.sid)) : [],
      () => (canHandOff ? context.arrivalsUnderWay() : []),
    )
    // Sessions another node asked for just before are claimed there, or sealed, before close.
    this.#drained = Promise.all([drained, this.#moves?.settled()]).then(() => {})
    return this.#drained
  }

  /** See `ParleyServer.handedOff`. */
  handedOff(sid: string, params?: Readonly<Record<string, string>>): boolean {
    return this.#drain?.holds(sid, params) ?? false
  }

  /** See `ParleyServer.sendingOn`. */
  sendingOn(answered: Promise<unknown>): void {
    this.#drain?.sendingOn(answered)
  }

  /**
   * Another node asks for `sid` (see `LocalSockets.handOff`) for a resume under the route
   * parameters `params` (undefined: a node of an earlier version, which does not say): false
   * unless this node holds the session, opened under the same parameters, is not closing, and
   * can hand off.
   */
  async moveOut(sid: string, params?: Record<string, string>): Promise<boolean> {
    const socket = this.#context.socketOf(sid)
    if (!socket || !this.#moves || this.#context.closing() || !this.#context.adapter.claimSession)
      return false
    // Asked for a resume under other route parameters (another tenant of `/:tenant`): not its
    // client's. Moved, the session would be cut from its own client for a claim that takes it
    // nowhere; kept, the asking node relays that resume here, which gets a new session.
    if (params !== undefined && !sameParams(socket.params, params)) return false
    return this.#moves.start(socket)
  }

  /**
   * A session frozen for a handoff ended here instead (see `Adapter.withdrawHandOff`): the
   * application saw it end, so no node may claim it now. The drain or move stops waiting for
   * its claim. A store that cannot be reached keeps the snapshot until its ttl. Counted
   * `withdrawn`, unless the drain ends it itself (see `Drain.givingUp`): one session, one outcome,
   * and that one is `failed` (a snapshot it could not store in time) or `unclaimed` (its client's
   * window ran out unclaimed).
   */
  withdraw(sid: string): void {
    if (!this.#drain?.givingUp(sid)) this.#context.metrics.handoff('withdrawn')
    this.#drain?.ended(sid)
    this.#moves?.ended(sid)
    void this.#withdrawSnapshot(sid)
  }

  /**
   * Takes `sid`'s snapshot back (`Adapter.withdrawHandOff`): its session ended here while handed
   * off, or a store the server gave up waiting for wrote it late. A store that cannot be reached
   * keeps the snapshot until its ttl. Never rejects.
   */
  async #withdrawSnapshot(sid: string): Promise<void> {
    try {
      await this.#context.adapter.withdrawHandOff?.(sid)
    } catch (err) {
      this.#context.adapterFailures.withdraw.record({ err })
    }
  }

  /**
   * Another node took `sid` over from a snapshot this node gave up on (see
   * `LocalSockets.takenOver`): the copy here ends as a claimed one does, without a CLOSE kept
   * for a resume, which another node answers now.
   */
  takenOver(sid: string): void {
    const socket = this.#context.socketOf(sid)
    if (!socket || socket.session.state === 'frozen' || socket.session.state === 'closed') return
    socket.claimed()
  }
}
