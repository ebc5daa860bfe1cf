// The sockets a takeover joined before its claim marker came back, and which broadcasts the
// tail they were restored from holds already (by the old node's places, see places.ts).
import type { BroadcastMessage, BroadcastOptions, LocalSockets, MemoryAdapter } from '@parley/server'
import { deliverAlone } from './one-socket.js'
import { holds, reached } from './places.js'
import type { Warnings } from './warnings.js'
import type { Place } from './wire.js'

/** A broadcast read while a socket waits for the tail's places. */
interface Held {
  node: string
  q: number | undefined
  message: BroadcastMessage
  options: BroadcastOptions
  /**
   * This node's own, PUBLISHed before the marker (see `Cut.beforeCut`): the old node's, unless
   * the tail comes unsealed and its places do not hold it (see `read`).
   */
  beforeCut?: boolean
}

/**
 * A broadcast with acks that reached a socket while it waits for the tail's places: asked in
 * order with what is held, unless the tail holds it (see `holdQuestion`).
 */
export interface HeldQuestion {
  /** The node that sent it, and its count there (undefined from a node of an earlier version). */
  node: string
  q: number | undefined
  /**
   * This node's own, PUBLISHed before the marker (see `Cut.beforeCut`): the old node's to ask,
   * unless the tail comes unsealed and its places do not hold it (see `read`), as for a
   * broadcast held so.
   */
  beforeCut?: boolean
  /** The tail is read: the socket is asked now (`ask`), or not, the tail having asked it. */
  settle(ask: boolean): void
  /** The socket left before the tail was read: not asked. */
  drop(): void
  /**
   * The adapter closes: the question's count is given now with what it has, as at its timeout
   * (its bound ends here, not after the close). The socket is still asked once its tail is read,
   * in order with what it holds, but left out of that count.
   */
  close(): void
}

/** A socket joined without a cut (see `UncutSockets`). */
interface Uncut {
  /** Until the tail is read (bounded: see `HandOffStore.finish`), what reached it, in order. */
  held: (Held | HeldQuestion)[] | undefined
  /** The old node's places, once read: by node, which of its broadcasts the tail has. */
  places: Map<string, Place> | undefined
  /** This node's own broadcasts it was left out of when they were emitted, by count. */
  owed: Set<number>
}

/**
 * The sockets of this node that a takeover joined before its claim marker came back (its
 * subscriber slow to read, or every marker refused: see takeover.ts). The broadcasts that
 * subscriber reads after the join may be before the marker on the channel (or, with no marker,
 * read by the old node before the tail was read), and in the tail already. Their count tells:
 * the old node wrote with the tail where it was on the channel (`ReadPlaces`), and a broadcast
 * at or below that place is not delivered again here, this node's own included (on top of the
 * cut's own rule for them, see cut.ts, which lets through those PUBLISHed after a marker that
 * may run). One without a count (a node of an earlier version) is delivered, as before.
 * Broadcasts with acks go the same way, by the count their request carries (see
 * held-questions.ts): a question the tail asked already is not asked again.
 *
 * Until the tail is read, the places are not known: what reaches the socket meanwhile (one
 * round trip) is held, in order, and delivered once they are, less what the tail holds. A
 * tail without places (written by a node of an earlier version, or not read: Redis did not
 * answer) lets all of it through.
 *
 * This node's own broadcasts are no exception: the old node may read one emitted here after the
 * join, before the tail is read, and put it into the tail. So while the tail is not read, the
 * socket is left out of them when they are emitted (as a positioned one is, see cut.ts) and
 * takes them when they come back, held and filtered as the others' (`leftOut`, `owes`); so it is
 * as long as one it was left out of is still on its way, so that they keep their order. One
 * whose PUBLISH is given up reaches it then, past the filter (`givenUp`): never run, the old
 * node cannot have it; sent and unanswered, Redis may still run it, and the old node put it
 * into the tail should it read it before the tail is read (the one case left that reaches the
 * session twice: the filter cannot tell, and dropping it could lose it).
 *
 * Its own broadcasts PUBLISHed before the marker are the old node's (see cut.ts). Those read
 * back while the tail is not read are held all the same (`beforeCut`), its own questions too
 * (see held-questions.ts): a tail read without its seal may lack them, and its places then say
 * which the socket takes (or is asked), in order with what it holds. A sealed tail, or one
 * without places, keeps them the old node's, as before.
 *
 * A node's place is let go once this node has read its broadcasts up to it (to the place, or
 * past it): every later one is above it. So is, when the tail is read, the place of a node whose
 * broadcasts this node read that far already (one gone, or quiet, sends no more to read, and its
 * place would be kept for as long as the socket lives, every broadcast read looked up in it).
 * The socket is let go once every node's is and none of its own it was left out of is on its
 * way, or when it leaves this node.
 */
export class UncutSockets {
  readonly #sockets = new Map<string, Uncut>()
  /**
   * The adapter closed: no socket joins from then on, and a question held is counted at once
   * (see `close`, `holdQuestion`).
   */
  #closed = false

  constructor(
    /** Delivers `message` to socket `id` alone, if it still matches `options`. */
    private readonly deliver: (message: BroadcastMessage, options: BroadcastOptions, id: string) => void,
  ) {}

  get empty(): boolean {
    return this.#sockets.size === 0
  }

  /** Whether socket `id` holds what reaches it: joined without a cut, its tail not read yet. */
  holds(id: string): boolean {
    return this.#sockets.get(id)?.held !== undefined
  }

  /**
   * Whether socket `id`, not holding, takes broadcast `q` of `node` now: false when it was
   * joined without a cut and its tail holds that one (see `only`).
   */
  takes(id: string, node: string, q: number | undefined): boolean {
    const socket = this.#sockets.get(id)
    return !socket || this.#passes(socket, node, q)
  }

  /**
   * A broadcast with acks reaches socket `id` while it holds what reaches it (see `holds`): it
   * is settled once the tail is read, after the broadcasts held before it, rather than asked
   * now, ahead of them; and not asked then when the tail holds it, as a broadcast held is not
   * delivered. After the adapter closed, so too (asked now, it would pass what the socket holds),
   * but its count is given at once (see `HeldQuestion.close`): it would wait for a read past the
   * close, bounded only by its timeout. False when the socket holds nothing (the caller settles
   * it now).
   */
  holdQuestion(id: string, question: HeldQuestion): boolean {
    const held = this.#sockets.get(id)?.held
    if (!held) return false
    held.push(question)
    if (this.#closed) question.close()
    return true
  }

  /**
   * Socket `id` joins without a cut: what reaches it is held until `read`. Not after the close:
   * nothing reads the channel for it any more, and what it held would wait for a read that the
   * closed adapter may never make; it takes what reaches it as any socket does.
   */
  joined(id: string): void {
    if (this.#closed) return
    this.#sockets.set(id, { held: [], places: undefined, owed: new Set() })
  }

  /**
   * At the emit of one of this node's own broadcasts: false for the sockets that take it when it
   * comes back instead (their tail not read yet, or an earlier one they were left out of still
   * on its way), each added to `ids`, for `owe` once the broadcast has its count.
   */
  leftOut(ids: string[]): (id: string) => boolean {
    return (id) => {
      const socket = this.#sockets.get(id)
      if (!socket || (!socket.held && socket.owed.size === 0)) return true
      ids.push(id)
      return false
    }
  }

  /** Sockets `ids` were left out of this node's own broadcast `q` when it was emitted. */
  owe(ids: readonly string[], q: number): void {
    for (const id of ids) this.#sockets.get(id)?.owed.add(q)
  }

  /** The first of this node's own broadcasts that socket `id` was left out of and still waits for. */
  firstOwed(id: string): number | undefined {
    let first: number | undefined
    for (const q of this.#sockets.get(id)?.owed ?? []) if (first === undefined || q < first) first = q
    return first
  }

  /** Whether socket `id` was left out of own broadcast `q`, which came back: it takes it now. */
  owes(id: string, q: number | undefined): boolean {
    const socket = q === undefined ? undefined : this.#sockets.get(id)
    return socket?.owed.delete(q as number) === true
  }

  /**
   * This node's own broadcasts up to `q` came back, or are lost to this node (see
   * `RedisAdapter.#settleGap`): none of them is on its way any more to a socket left out of it.
   */
  back(q: number | undefined): void {
    if (q === undefined) return
    for (const [id, socket] of this.#sockets) {
      for (const owed of socket.owed) if (owed <= q) socket.owed.delete(owed)
      this.#letGo(id, socket)
    }
  }

  /**
   * This node's own broadcast with acks `q` will not come back (its PUBLISH refused, never sent,
   * or given up with nothing left out of it to wait for): the sockets left out of it were asked
   * already, or no longer match it, and wait for it no more.
   */
  settled(q: number): void {
    for (const [id, socket] of this.#sockets) if (socket.owed.delete(q)) this.#letGo(id, socket)
  }

  /**
   * The PUBLISH of this node's own broadcast `q` was given up (refused, never sent, or sent and
   * not answered): the sockets left out of it take it now, in order with what they hold. Never
   * run, the old node cannot have had it; run late, it does not reach them again (`owes`).
   */
  givenUp(q: number, message: BroadcastMessage, options: BroadcastOptions): void {
    for (const [id, socket] of this.#sockets) {
      if (!socket.owed.delete(q)) continue
      // No count: the places do not filter it (the old node may read a later one of this
      // node's, and its place for this node say nothing of this one).
      if (socket.held) socket.held.push({ node: '', q: undefined, message, options })
      else this.deliver(message, options, id)
      this.#letGo(id, socket)
    }
  }

  /**
   * The tail of socket `id`'s session was read, with the old node's `places` (undefined when it
   * wrote none): what was held is delivered, less the broadcasts at or below them. `readUpTo`
   * gives, for a node, the count of the last of its broadcasts this node read (see
   * `ReadPlaces.at`): a place it reaches has nothing left to filter. This node's own before the
   * marker (`beforeCut`) only when the tail was read `unsealed`, with places that lack them.
   */
  read(
    id: string,
    places: ReadonlyMap<string, Place> | undefined,
    readUpTo: (node: string) => number | undefined,
    unsealed = false,
  ): void {
    const socket = this.#sockets.get(id)
    if (!socket?.held) return
    const held = socket.held
    socket.held = undefined
    socket.places = places && places.size > 0 ? new Map(places) : undefined
    for (const broadcast of held) {
      const takes = broadcast.beforeCut
        ? unsealed && lacks(places, broadcast)
        : this.#passes(socket, broadcast.node, broadcast.q)
      if ('settle' in broadcast) broadcast.settle(takes)
      else if (takes) this.deliver(broadcast.message, broadcast.options, id)
    }
    // Every one held was read here: what is read from now on is above those places.
    for (const [node, place] of socket.places ?? []) {
      const q = readUpTo(node)
      if (q !== undefined && reached(place, q)) socket.places?.delete(node)
    }
    this.#letGo(id, socket)
  }

  /**
   * The adapter closes: each question a socket holds gives its count now (see
   * `HeldQuestion.close`), before the close settles this node's own questions, whose count of
   * the sockets asked beside a held one waits for it; and no bound of theirs outlives the close.
   * From then on no socket joins (see `joined`), and a question held later gives its count at
   * once (see `holdQuestion`).
   */
  close(): void {
    this.#closed = true
    for (const socket of this.#sockets.values())
      for (const question of socket.held ?? []) if ('settle' in question) question.close()
  }

  /**
   * Socket `id` left this node (or its rooms): nothing more to filter for it. The questions it
   * held are not asked of it.
   */
  forget(id: string): void {
    const held = this.#sockets.get(id)?.held
    this.#sockets.delete(id)
    for (const question of held ?? []) if ('settle' in question) question.drop()
  }

  /**
   * Broadcast `q` of `node` was read, and delivered (or dropped by the places, see `only`): the
   * places of `node` it reaches are let go (a later one of its broadcasts is above them).
   */
  readFrom(node: string, q: number | undefined): void {
    if (q === undefined) return
    for (const [id, socket] of this.#sockets) {
      const place = socket.places?.get(node)
      if (place === undefined || !reached(place, q)) continue
      socket.places?.delete(node)
      this.#letGo(id, socket)
    }
  }

  /**
   * This node's own broadcast given up, which waited for those before it still on their way to
   * socket `id` (see `Cut.waitsBeforeCut`): held behind what it holds, unfiltered (no count, as
   * in `givenUp`). False when it holds nothing (the caller delivers it now).
   */
  holdGivenUp(id: string, message: BroadcastMessage, options: BroadcastOptions): boolean {
    const held = this.#sockets.get(id)?.held
    if (!held) return false
    held.push({ node: '', q: undefined, message, options })
    return true
  }

  /**
   * Narrows `only` (the sockets a broadcast reaches now): a socket joined without a cut takes it
   * now unless it is held, or is at or below the old node's place for its node. One of this
   * node's own that `only` leaves out but `beforeCut` says is before its marker is held all the
   * same, for the tail to say whether the session has it.
   */
  only(
    broadcast: Held,
    only: ((id: string) => boolean) | undefined,
    beforeCut?: (id: string) => boolean,
  ): (id: string) => boolean {
    return (id) => {
      if (only && !only(id)) {
        const held = this.#sockets.get(id)?.held
        if (held && beforeCut?.(id)) held.push({ ...broadcast, beforeCut: true })
        return false
      }
      const socket = this.#sockets.get(id)
      if (!socket) return true
      if (socket.held) {
        socket.held.push(broadcast)
        return false
      }
      return this.#passes(socket, broadcast.node, broadcast.q)
    }
  }

  /** Lets socket `id` go once there is nothing left to hold, filter or take back for it. */
  #letGo(id: string, socket: Uncut): void {
    if (!socket.held && !socket.places?.size && socket.owed.size === 0) this.#sockets.delete(id)
  }

  #passes(socket: Uncut, node: string, q: number | undefined): boolean {
    const place = q === undefined ? undefined : socket.places?.get(node)
    return place === undefined || q === undefined || !holds(place, q)
  }
}

/**
 * Whether the old node's `places`, written with a tail it had not sealed, lack `broadcast` (one of
 * this node's own before the marker): not without places, where the tail is taken to have it.
 */
function lacks(places: ReadonlyMap<string, Place> | undefined, broadcast: Pick<Held, 'node' | 'q'>): boolean {
  if (places === undefined || broadcast.q === undefined) return false
  const place = places.get(broadcast.node)
  return place === undefined || !holds(place, broadcast.q)
}

/**
 * Delivers `message` to socket `id` alone, if it still matches `options`: what `UncutSockets`
 * gives a socket at its tail's read (what it held) and at a PUBLISH given up. Called inside a
 * takeover's read of its tail, which never rejects: a socket that throws loses this one broadcast
 * alone. Found by its own rooms, not by walking the room (see one-socket.ts): a burst of
 * takeovers into one room would cost the room's sockets squared.
 */
export function deliverUncut(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  id: string,
): void {
  try {
    deliverAlone(memory, sockets, message, options, id)
  } catch (err) {
    warnings.warn(
      'uncut-delivery',
      'a broadcast for a socket taken over before its claim marker came back failed at its delivery, and is lost to its session',
      { err, event: message.name, socket: id },
    )
  }
}
