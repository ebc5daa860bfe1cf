import { GivenUp } from './given-up.js'
import { holds } from './places.js'
import type { Place } from './wire.js'

/** A positioned socket. */
interface Position {
  /** The count of own broadcasts sent before it was positioned. */
  from: number
  /** Its place among positionings (`Cut.#positionings`): whether it took a given-up one then. */
  at: number
  /**
   * Being handed over (`position`), rather than taken over here (`positionUntilBack`): it waits
   * for an own broadcast given up that Redis may still run (see awaited.ts).
   */
  handingOff: boolean
  /**
   * Awaited own broadcasts that reached it ahead of their turn, its session kept on this node
   * past its claim marker (see `reachedEarly`): not again at their turn.
   */
  early?: Set<number>
  /**
   * Taken over here, joined before its claim marker came back, and its tail not known sealed
   * when claimed: the count of this node's own broadcasts PUBLISHed before that marker. Those
   * are the old node's, unless the tail comes unsealed and lacks them (see `tailRead`).
   */
  marked?: number
  /**
   * Its tail read without the seal, with the old node's place for this node (`null`: that node
   * read none of this node's): those up to `marked` that it does not hold reach it when they come
   * back (see `atReturn`).
   */
  lacking?: Place | null
}

/**
 * The sockets of this node that take broadcasts by their position on `<prefix>:broadcast`
 * rather than when they are emitted: a session being handed over.
 *
 * Every node reads the broadcast channel in one order, and a claim marker on it is the cut
 * point: the old node delivers what comes before it, the claimer what comes after. Other nodes'
 * broadcasts already arrive in that order. A node's own broadcasts do not: they reach its
 * sockets when emitted (before any PUBLISH), and are skipped when they come back. For a
 * positioned socket that would be wrong on both sides of the cut, so those sockets are left out
 * when the broadcast is emitted and served when it comes back (only those emitted after it was
 * positioned: the old node's socket got the earlier ones when they were emitted, before its
 * snapshot):
 *
 * ```
 *  old node:  handOff ─ positioned ──────────── marker seen: claimed(), sealed, forgotten
 *  claimer:                  claim ─ PUBLISH marker ─ marker seen: join() ─ positioned ─ released
 *                                                                              (own ones back)
 * ```
 *
 * The claimer releases its socket once none of its own broadcasts is on its way (its own messages
 * come back in the order they were sent, each with its count `q`): from then on, delivery when
 * emitted keeps their order. Under a steady stream of its own broadcasts that may take a while;
 * the socket meanwhile gets them one Redis round trip later, in order.
 *
 * A claimer that joins before its marker came back (its wait ran out while its subscriber was slow
 * to read, or while Redis had not run a marker it gave up on) positions the socket past its own
 * broadcasts PUBLISHed before the marker (`positionUntilBack` with `after`): they are before the
 * cut, the old node's. Once the marker is back, every own broadcast that comes back is after it
 * (`markerBack`). A tail the old node had not sealed when it was read may lack some of them (the
 * old node, slow to read the channel, had not read them as of its last write): the old node's
 * place for this node says which, and those reach the socket when they come back (`tailRead`).
 * While one of them may still come back to it, a later own broadcast given up waits for it
 * (`waitsBeforeCut`): given at once, it would pass it. A sealed tail says what the session has:
 * they stay the old node's.
 *
 * Redis delivers at most once: an own broadcast PUBLISHed while this node's subscriber was
 * reconnecting is taken by Redis and never comes back. After it resubscribed, the node
 * PUBLISHes a note to itself on the same connection as its broadcasts; when that comes back,
 * those sent before it that did not are settled as lost (`back` with the count the note
 * carries), as this node's sockets lost the other nodes' broadcasts of that gap.
 *
 * An own broadcast whose PUBLISH was sent and given up unanswered (`givenUp`) may still be run
 * by Redis, and come back late. The sockets positioned then take it at once; the ones
 * positioned later (a session taken over since, which was in no room here when it was emitted)
 * take it when it comes back, as they take every own broadcast still on its way: they stay
 * positioned until it did, or one sent after it did (see `GivenUp`). The sockets that took it
 * owe it nothing more: released, they take no own broadcast when it comes back, so they are
 * released as soon as nothing else is on its way, rather than one round trip late at the next
 * own broadcast back (of a PUBLISH that never runs, Redis says nothing). A socket being handed
 * over is the exception: it waits for such a one (`awaits`), and for those given up behind it,
 * since Redis may run it after the claim marker, where the claimer delivers it (see awaited.ts).
 */
export class Cut {
  readonly #positioned = new Map<string, Position>()
  /** How many times a socket was positioned anew so far. */
  #positionings = 0
  /** Sockets to release once none of this node's own broadcasts is on its way. */
  readonly #releases = new Set<string>()
  /** The count of this node's own PUBLISHed broadcasts. */
  #sent = 0
  /**
   * The count up to which none of its own broadcasts is on its way any more: each came back on
   * the channel, or was given up as lost (see `lost`).
   */
  #back = 0
  /** Own broadcasts given up as lost above `#back`, which still waits for an earlier one. */
  readonly #lost = new Set<number>()
  /** Own broadcasts given up unanswered that may still come back. */
  readonly #givenUp = new GivenUp()
  /** Own broadcasts given up that the sockets being handed over wait for (see awaited.ts). */
  readonly #awaited = new Map<number, { mayRun: boolean }>()
  /** See `onSettle`. */
  #onSettle: (() => void) | undefined

  /** True when no socket is positioned (the usual case: nothing to filter). */
  get empty(): boolean {
    return this.#positioned.size === 0
  }

  /** How many sockets are positioned (see `RedisAdapter.handingOver`). */
  get size(): number {
    return this.#positioned.size
  }

  has(id: string): boolean {
    return this.#positioned.has(id)
  }

  /** The count of this node's own broadcasts PUBLISHed so far (the last one's `q`). */
  get count(): number {
    return this.#sent
  }

  /**
   * Whether `id` is positioned since an own broadcast was given up that may still come back: it
   * did not take that one then, and takes it only if it comes back, so it stays positioned
   * until then (see `#settle`).
   */
  owesGivenUp(id: string): boolean {
    const position = this.#positioned.get(id)
    return (
      position !== undefined &&
      (this.#givenUp.owes(position.at) || this.#firstAwaited(position) !== undefined)
    )
  }

  /** Whether a socket being handed over is positioned (see `Position.handingOff`). */
  get handingOff(): boolean {
    for (const position of this.#positioned.values()) if (position.handingOff) return true
    return false
  }

  /** Whether `id` is positioned and being handed over. */
  isHandingOff(id: string): boolean {
    return this.#positioned.get(id)?.handingOff === true
  }

  /**
   * Whether `id`, being handed over, waits for an own broadcast given up that Redis may still
   * run (see awaited.ts): until that one comes back, or a later own message proves it never
   * ran, neither it nor those given up behind it can go into its tail. Only those up to
   * `until` when given (the count at its claim marker).
   */
  awaitsMayRun(id: string, until = Number.POSITIVE_INFINITY): boolean {
    const position = this.#positioned.get(id)
    if (!position?.handingOff) return false
    for (const [q, { mayRun }] of this.#awaited) if (mayRun && q > position.from && q <= until) return true
    return false
  }

  /**
   * Whether an own broadcast up to `until` that `id` takes when it comes back (one emitted since
   * it was positioned, which it was left out of) is still on its way: neither back nor lost.
   */
  onItsWayTo(id: string, until: number): boolean {
    const position = this.#positioned.get(id)
    if (!position) return false
    for (let q = Math.max(this.#back, position.from) + 1; q <= Math.min(until, this.#sent); q++)
      if (!this.#lost.has(q)) return true
    return false
  }

  /**
   * The last own broadcast before `q` still on its way (neither back nor lost) to a socket being
   * handed over, which takes it when it comes back (it was left out of it when emitted);
   * undefined when none is.
   */
  lastOnItsWayToHandingOff(q: number): number | undefined {
    for (let before = Math.min(q - 1, this.#sent); before > this.#back; before--) {
      if (this.#lost.has(before)) continue
      for (const position of this.#positioned.values())
        if (position.handingOff && before > position.from) return before
    }
    return undefined
  }

  /** The first own broadcast awaited that the socket at `position` waits for. */
  #firstAwaited(position: Position): number | undefined {
    if (!position.handingOff) return undefined
    let first: number | undefined
    for (const q of this.#awaited.keys())
      if (q > position.from && (first === undefined || q < first)) first = q
    return first
  }

  /**
   * The first own broadcast given up that `id` owes (see `owesGivenUp`), whatever the count it
   * is positioned past (it takes none of those when they come back, and never had them either);
   * undefined when it owes none.
   */
  firstOwedGivenUp(id: string): number | undefined {
    const position = this.#positioned.get(id)
    if (position === undefined) return undefined
    const owed = this.#givenUp.firstOwed(position.at)
    const awaited = this.#firstAwaited(position)
    return owed === undefined || awaited === undefined ? (owed ?? awaited) : Math.min(owed, awaited)
  }

  /** Is not positioned: delivered when a broadcast is emitted here. */
  readonly atEmit = (id: string): boolean => !this.#positioned.has(id)

  /** The sockets that take this node's own broadcast `q` now that it came back. */
  atReturn(q: number): (id: string) => boolean {
    // Given up, it went to the sockets positioned then: not to them again.
    const takenBy = this.#givenUp.takenBy(q) ?? 0
    // Unless the sockets being handed over waited for it (see awaited.ts). Never sent, it
    // reaches no other: those positioned since were elsewhere when it was emitted.
    const awaited = this.#awaited.get(q)
    return (id) => {
      const position = this.#positioned.get(id)
      if (position === undefined || position.early?.has(q)) return false
      if (q <= position.from && !lacks(position, q)) return false
      if (!awaited) return position.at > takenBy
      return position.handingOff || (awaited.mayRun && position.at > takenBy)
    }
  }

  /**
   * Positions `id` for the own broadcasts sent from now on (the old node, from
   * `HandingOff.handOff`). One still positioned since this node took it over
   * (`positionUntilBack`) keeps its earlier count: it was left out of the own broadcasts emitted
   * since, and those still on their way reach it only when they come back, before the marker of
   * the next claim (into its tail).
   * Returns the count up to which it takes none of them when they come back: those it took
   * when they were emitted (or, taken over here, those before its cut).
   */
  position(id: string): number {
    this.#releases.delete(id)
    const position = this.#positioned.get(id)
    if (position) {
      position.from = Math.min(position.from, this.#sent)
      position.handingOff = true
    } else this.#positioned.set(id, { from: this.#sent, at: ++this.#positionings, handingOff: true })
    return position?.from ?? this.#sent
  }

  unposition(id: string): void {
    this.#releases.delete(id)
    this.#positioned.delete(id)
  }

  /**
   * Positions `id` until none of this node's own broadcasts is on its way: those sent so far
   * reach it when they come back (it was in no room when they were emitted), and so do those
   * sent until then; later ones when emitted (the claimer, from `join`). Releasing it earlier
   * would lose the broadcasts emitted while it was positioned that are still on their way.
   * With `after`, those up to that count do not reach it: the claimer joined before its marker
   * came back, and they are before the marker on the channel, the old node's to deliver. With
   * `mayLack` too (the tail was not sealed when claimed), unless that tail, read unsealed, lacks
   * them (see `tailRead`).
   */
  positionUntilBack(id: string, after = 0, mayLack = false): void {
    const position: Position = { from: after, at: ++this.#positionings, handingOff: false }
    if (mayLack && after > 0) position.marked = after
    this.#positioned.set(id, position)
    this.release(id)
  }

  /**
   * Whether own broadcast `q`, back now, is one PUBLISHed before the marker of `id`, joined
   * before that marker came back, whose tail may lack it: held with what it holds until that
   * tail is read (see `UncutSockets.only`; a broadcast with acks, `askHolding`).
   */
  beforeCut(id: string, q: number): boolean {
    const position = this.#positioned.get(id)
    return position?.marked !== undefined && position.lacking === undefined && q <= position.marked
  }

  /**
   * Whether an own broadcast before `q` PUBLISHed before the marker of `id` (see `beforeCut`) may
   * still come back to it: neither back nor lost. An own broadcast `q` given up then waits for
   * it, so that `id` takes them in the order they were emitted.
   */
  waitsBeforeCut(id: string, q: number): boolean {
    const position = this.#positioned.get(id)
    if (position?.marked === undefined) return false
    for (let before = this.#back + 1; before <= Math.min(q - 1, position.marked); before++)
      if (!this.#lost.has(before)) return true
    return false
  }

  /**
   * The tail of `id`'s session was read: `unsealed`, with the old node's place for this node
   * (undefined when it read none of this node's) among its `places` (undefined when it wrote
   * none). Unsealed with places, those own broadcasts before its marker that the place does not
   * hold reach `id` when they come back; sealed, or without places (an old node of an earlier
   * version), they stay the old node's, as before.
   */
  tailRead(
    id: string,
    unsealed: boolean,
    places: ReadonlyMap<string, Place> | undefined,
    node: string,
  ): void {
    const position = this.#positioned.get(id)
    if (position?.marked === undefined) return
    if (unsealed && places !== undefined) position.lacking = places.get(node) ?? null
    else position.marked = undefined
    this.#settle()
  }

  /**
   * Runs `listener` each time own broadcasts are settled (back, lost, or no longer waited for):
   * what waits for them may go (see `Broadcasts`).
   */
  onSettle(listener: () => void): void {
    this.#onSettle = listener
  }

  /**
   * The claim marker of `id`'s takeover came back after `id` was positioned past the start
   * (`positionUntilBack` with `after`): every own broadcast that comes back from now on is on
   * the claimer's side of the cut, one given up and run late included.
   */
  markerBack(id: string): void {
    const position = this.#positioned.get(id)
    if (!position) return
    position.from = 0
    position.marked = undefined
    position.lacking = undefined
    this.#settle()
  }

  /**
   * Ends the positioning of `id` once none of this node's own broadcasts is on its way to it (at
   * once when none is): those it was left out of when emitted still reach it when they come back.
   */
  release(id: string): void {
    if (!this.#positioned.has(id)) return
    this.#releases.add(id)
    this.#settle()
  }

  /** Counts an own broadcast about to be PUBLISHed; its `q`. */
  sent(): number {
    return ++this.#sent
  }

  /**
   * An own broadcast came back (after it was delivered to the positioned sockets), or a note
   * sent after `q` did (every earlier one is back or lost).
   */
  back(q: number | undefined): void {
    if (q === undefined) return
    let forgot = false
    for (const awaited of this.#awaited.keys()) {
      if (awaited > q) continue
      this.#awaited.delete(awaited)
      forgot = true
    }
    forgot = this.#givenUp.back(q) || forgot
    if (q <= this.#back) {
      if (forgot) this.#settle()
      return
    }
    this.#back = q
    this.#settle()
  }

  /**
   * An own broadcast was lost (its PUBLISH was refused, or never sent: Redis was away): it is
   * not to come back, so nothing waits for it. Without this, a socket to release would stay positioned
   * until the next own broadcast came back, and take that one a Redis round trip late.
   */
  lost(q: number): void {
    if (q <= this.#back) return
    this.#lost.add(q)
    this.#settle()
  }

  /**
   * An own broadcast's PUBLISH was sent and given up unanswered (after `atReturn(q)` served the
   * sockets positioned now): nothing waits for it in order, but Redis may still run it, and the
   * sockets positioned from now on take it if it comes back (see `GivenUp`).
   */
  givenUp(q: number): void {
    this.#givenUp.add(q, this.#positionings)
    this.lost(q)
  }

  /**
   * Own broadcast `q` was given up (sent and unanswered, or behind one that was) while sockets
   * were being handed over: they did not take it, and take it when it comes back or once it is
   * settled (`awaitedDone`), those positioned now included (see awaited.ts). A released one
   * stays positioned until then.
   */
  awaits(q: number, mayRun: boolean): void {
    this.#awaited.set(q, { mayRun })
  }

  /**
   * Awaited own broadcast `q` reached `id` alone, ahead of its turn (it never ran, and waits
   * behind one that may): `id` does not take it again at its turn (see `atReturn`).
   */
  reachedEarly(id: string, q: number): void {
    const position = this.#positioned.get(id)
    if (!position) return
    position.early ??= new Set()
    position.early.add(q)
  }

  /** Own broadcast `q`, awaited, reached the sockets that waited for it, or never will. */
  awaitedDone(q: number): void {
    if (this.#awaited.delete(q)) this.#settle()
  }

  /**
   * Counts the lost broadcasts right after `#back` as settled (an earlier one still on its way
   * keeps later ones waiting: own broadcasts come back in order), then releases the sockets
   * waiting for none to be on its way to them. One given up that Redis may still run is not on
   * its way to the sockets positioned when it was given up: they took it then, and released,
   * they take no own broadcast when it comes back. Only a socket positioned since waits for it.
   */
  #settle(): void {
    for (const q of this.#lost) if (q <= this.#back) this.#lost.delete(q)
    while (this.#lost.delete(this.#back + 1)) this.#back++
    if (this.#back >= this.#sent) {
      for (const id of this.#releases) {
        if (this.owesGivenUp(id)) continue
        this.#positioned.delete(id)
        this.#releases.delete(id)
      }
    }
    this.#onSettle?.()
  }
}

/** Whether the tail of the socket at `position`, read unsealed, lacks own broadcast `q` before its marker. */
function lacks(position: Position, q: number): boolean {
  const { marked, lacking } = position
  if (marked === undefined || lacking === undefined || q > marked) return false
  return lacking === null || !holds(lacking, q)
}
