import type { BroadcastMessage, BroadcastOptions } from '@parley/server'
import { MAX_QUEUED_TAIL_APPENDS } from './tail-writes.js'

/**
 * The most own broadcasts awaited at once (see `AwaitedBroadcasts`): an outage gives up every
 * broadcast, and nothing settles them until Redis answers again. The tails they would go to hold
 * no more appends while Redis is away (see tail-writes.ts). Past it, every one awaited reaches
 * the sockets at once, in order: one that Redis may still run may then reach a session twice,
 * rather than be kept without bound.
 */
export const MAX_AWAITED = MAX_QUEUED_TAIL_APPENDS

/** One of `AwaitedBroadcasts`. */
interface Given {
  message: BroadcastMessage
  options: BroadcastOptions
  /** Sent and unanswered: Redis may still run it. Else never sent, or refused: it never runs. */
  mayRun: boolean
  /**
   * A broadcast with acks that never runs, given up behind them: asked of the sockets then, in
   * place of a delivery (see `question`).
   */
  ask?: AskAwaited
  onItsWay?: undefined
}

/**
 * One not given up: on its way back, where it reaches the sockets as any own broadcast does (see
 * `AwaitedBroadcasts.onItsWay`). Only those behind it wait for it here; nothing delivers it from here.
 */
interface OnItsWay {
  mayRun: true
  onItsWay: true
  ask?: undefined
}

type Awaited = Given | OnItsWay

/**
 * Asks a question awaited (see `AwaitedBroadcasts.question`): of socket `only` alone, its tail
 * about to be sealed while the others still wait; without it, of every socket that waited for
 * it and was not asked so.
 */
export type AskAwaited = (only?: string) => void

/** Delivers own broadcast `q` to the positioned sockets that take it now (see `Cut.atReturn`). */
export type DeliverAwaited = (q: number, message: BroadcastMessage, options: BroadcastOptions) => void

/**
 * This node's own broadcasts given up while sockets were positioned for a handover (see cut.ts),
 * which those sockets wait for, in the order they were emitted.
 *
 * One whose PUBLISH was sent and not answered may still be run by Redis, after a claim marker
 * too: the claimer then delivers it, and the old node cannot take back what it put into the
 * tail. So it is not delivered at give-up: it reaches the positioned sockets when it comes back,
 * on the side of the marker it comes back on; or once a later own message comes back first
 * (own messages come back in the order they were PUBLISHed: it never ran), or the note this
 * node sends itself behind it does (`neverRan`). One given up after
 * it (never sent while Redis is silent, as a rule) waits behind it, so that they keep their
 * order, and reaches them as soon as nothing before it waits any more.
 */
export class AwaitedBroadcasts {
  /** By count, in the order they were given up (about the order they were sent). */
  readonly #awaited = new Map<number, Awaited>()

  get empty(): boolean {
    return this.#awaited.size === 0
  }

  /**
   * Own broadcast `q` was given up while sockets were positioned: they wait for it. Past
   * `MAX_AWAITED`, they wait no more: every one is delivered.
   */
  add(
    q: number,
    message: BroadcastMessage,
    options: BroadcastOptions,
    mayRun: boolean,
    deliver: DeliverAwaited,
  ): void {
    this.#awaited.set(q, { message, options, mayRun })
    if (this.#awaited.size <= MAX_AWAITED) return
    for (const [given, awaited] of this.#ordered()) {
      this.#awaited.delete(given)
      reach(given, awaited, deliver)
    }
  }

  /**
   * Own broadcast `q` is on its way back to the sockets being handed over (sent, not back yet),
   * and one emitted after it will never run (refused, or never sent): that one must not reach
   * them first. `q` holds those behind it here until it comes back (`overtaken`), or is
   * settled otherwise; it reaches the sockets by its own way back, or never (lost with the
   * subscriber), not from here. One given up meanwhile takes its place (see `add`).
   */
  onItsWay(q: number): void {
    if (!this.#awaited.has(q)) this.#awaited.set(q, { mayRun: true, onItsWay: true })
  }

  /**
   * Own broadcast with acks `q`, never sent or refused, is given up while the sockets being
   * handed over wait for earlier ones: asked of them (`ask`) behind those, as a broadcast given
   * up then reaches them. False when none waits: the caller asks now.
   */
  question(q: number, message: BroadcastMessage, options: BroadcastOptions, ask: AskAwaited): boolean {
    if (this.empty) return false
    this.#awaited.set(q, { message, options, mayRun: false, ask })
    return true
  }

  /**
   * Own broadcast with acks `q`, sent and unanswered, is given up while sockets are handed over:
   * Redis may still run it, after a claim marker too, where the claimer asks it. So it waits
   * here as a broadcast given up then does: run, it is asked when it comes back (the caller's,
   * as for any own one); proved never run, it is asked (`ask`) of the sockets left out of it,
   * at its turn; run or not while this node's subscriber was away (`gap`), they miss it.
   */
  awaitQuestion(q: number, message: BroadcastMessage, options: BroadcastOptions, ask: AskAwaited): void {
    this.#awaited.set(q, { message, options, mayRun: true, ask })
  }

  /**
   * An own message of count `q` came back: those before it still awaited never ran, and reach
   * the positioned sockets now, in order; `q` itself, when awaited, is delivered by the caller.
   */
  overtaken(q: number, deliver: DeliverAwaited): void {
    for (const [given, awaited] of this.#ordered()) {
      if (given > q) break
      this.#awaited.delete(given)
      if (given < q) reach(given, awaited, deliver)
    }
  }

  /**
   * The note this node sent itself behind them (a probe) came back, its subscriber connected
   * throughout: those up to `q` not back by now never ran, and reach the positioned sockets now,
   * in order, as when a later own message comes back (see `overtaken`).
   */
  neverRan(q: number, deliver: DeliverAwaited): void {
    for (const [given, awaited] of this.#ordered()) {
      if (given > q) break
      this.#awaited.delete(given)
      reach(given, awaited, deliver)
    }
  }

  /** Delivers those that never run and wait behind nothing that may still come back. */
  flush(deliver: DeliverAwaited): void {
    for (const [given, awaited] of this.#ordered()) {
      if (awaited.mayRun) break
      this.#awaited.delete(given)
      reach(given, awaited, deliver)
    }
  }

  /**
   * The note after a resubscribe came back: those up to `q` not back by now are settled. One
   * that may have run did so, if at all, while this node's subscriber was away, after a claim
   * marker maybe: like the other nodes' broadcasts of that gap, the sockets miss it. One that
   * never ran reaches them now.
   */
  gap(q: number, deliver: DeliverAwaited): void {
    for (const [given, awaited] of this.#ordered()) {
      if (given > q) break
      this.#awaited.delete(given)
      if (!awaited.mayRun) reach(given, awaited, deliver)
    }
  }

  /**
   * Those that never ran, for socket `id` leaving the positioned ones (its tail sealed): they
   * reach it now, or never, though one that may still run waits before them (run after the
   * marker, the claimer delivers that one behind the tail, out of their order but once). A
   * question among them is asked of that socket alone: the others still wait for what is before
   * it, and are asked at its turn. Only those after `after` and up to `until` when given (past
   * its claim marker: see `HandingOff.claimMarker`).
   */
  leaving(id: string, deliver: DeliverAwaited, until = Number.POSITIVE_INFINITY, after = 0): void {
    for (const [given, awaited] of this.#ordered()) {
      if (given > until) break
      if (given <= after || awaited.mayRun) continue
      if (awaited.ask) awaited.ask(id)
      else deliver(given, awaited.message, awaited.options)
    }
  }

  #ordered(): [number, Awaited][] {
    return [...this.#awaited].sort(([x], [y]) => x - y)
  }
}

/** Delivers `awaited`, or asks it when it is a question; one on its way back reaches them by that way. */
function reach(q: number, awaited: Awaited, deliver: DeliverAwaited): void {
  if (awaited.onItsWay) return
  if (awaited.ask) awaited.ask()
  else deliver(q, awaited.message, awaited.options)
}
