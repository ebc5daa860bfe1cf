// The sockets of sessions this node hands off whose claim marker came back while their seal
// waits for an own broadcast Redis may still run (see `HandingOff.claimMarker`): out of their
// rooms meanwhile, since what is read past the marker is the claimer's, they keep aside what
// those rooms get, broadcasts and questions, for the end of the wait. Kept on this node (the
// server gave the write up), the socket gets it all then, in order; sealed, it gets only what
// no claimer reads (`local`, or never run), broadcasts and questions, into its tail.
import { MAX_TIMER_MS } from '@parley/protocol'
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSocket,
  LocalSockets,
  MemoryAdapter,
} from '@parley/server'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { askEach } from './ask-each.js'
import { lostAtSeal } from './at-seal.js'
import { EarlyReplies } from './early-replies.js'
import type { GiveNow } from './held-questions.js'
import { matches, type Only, socketAlone } from './one-socket.js'
import { disconnected, replyOnce } from './reply-once.js'
import type { Warnings } from './warnings.js'

/**
 * The most broadcasts kept aside for a socket past its claim marker while its seal waits (see
 * `Broadcasts.pastMarker`), at most `MARKER_SETTLE_MS`: at this many, the wait ends as at that
 * limit, and the seal goes (or the session, kept here, has them all) without waiting more.
 */
export const MAX_MISSED_PAST_MARKER = 1000

/** What a socket past its marker kept aside, at the end of its wait (see `PastMarkerSockets.enter`). */
export interface KeptAside {
  /**
   * The session stays on this node: the socket gets it all, in order. `behind(q)` gives it,
   * first, this node's own that never ran up to count `q`, which still wait behind one that
   * Redis may run, as for `sealing`: emitted before what it kept aside, they must not reach it
   * after that.
   */
  kept(behind?: (q: number) => void): void
  /**
   * The seal goes: what no claimer reads, broadcasts and questions, reaches the socket, into its
   * tail. `behind(q)` gives it, first, this node's own that never ran up to count `q`, emitted
   * past the marker, which still wait behind one that Redis may run (see
   * `AwaitedBroadcasts.leaving`): they go in the order they were emitted among what it kept.
   */
  sealing(behind?: (q: number) => void): void
}

/** The sockets past their claim marker, out of their rooms while their seal waits. */
export class PastMarkerSockets {
  readonly #memory: MemoryAdapter
  readonly #sockets: LocalSockets
  readonly #warnings: Warnings
  /** The count of this node's own broadcasts sent so far (`Cut.count`). */
  readonly #count: () => number
  /**
   * By id: their rooms at the marker, the count of the last own broadcast sent before it, and
   * what their rooms got meanwhile.
   */
  readonly #byId = new Map<string, PastMarker>()

  constructor(memory: MemoryAdapter, sockets: LocalSockets, warnings: Warnings, count: () => number) {
    this.#memory = memory
    this.#sockets = sockets
    this.#warnings = warnings
    this.#count = count
  }

  get size(): number {
    return this.#byId.size
  }

  /**
   * Socket `id` leaves its rooms, its marker back with `until` own broadcasts sent. Returns what
   * ends its wait: back in its rooms for `done`, which is given what it kept aside, in the same
   * turn; unless its session ended meanwhile. Its rooms getting `MAX_MISSED_PAST_MARKER` ends
   * it at once.
   */
  enter(id: string, until: number, done: (aside: KeptAside) => void): () => void {
    const rooms = new Set(this.#memory.socketRooms(id))
    this.#memory.delAll(id)
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      this.#byId.delete(id)
      // A session that ended meanwhile (its write given up, then its client gone) left: back in
      // its rooms, an entry would stay for a socket that no longer exists.
      if (this.#sockets.get(id)) this.#memory.addAll(id, rooms)
      try {
        done({
          kept: (behind) => {
            for (const missed of past.missed.splice(0)) {
              behind?.(missed.at)
              this.#reach(id, missed)
            }
            behind?.(Number.POSITIVE_INFINITY)
          },
          sealing: (behind) => {
            // Read past the marker, a broadcast or a question is the claimer's, which gives it
            // to the session there; one no claimer reads (`local`, or never run) reaches it
            // here, into its tail, in order: among them, those of this node's own emitted
            // before it that never ran and still wait (`behind`).
            for (const missed of past.missed.splice(0)) {
              if (missed.ran) {
                missed.question?.(undefined)
                continue
              }
              behind?.(missed.at)
              this.#reach(id, missed)
            }
            behind?.(Number.POSITIVE_INFINITY)
          },
        })
      } finally {
        // Whatever `done` did with them, no question kept aside leaves its sender waiting.
        for (const { question } of past.missed.splice(0)) question?.(undefined)
      }
    }
    const past: PastMarker = { rooms, until, missed: [], end }
    this.#byId.set(id, past)
    return end
  }

  /** What ends each socket's wait (see `enter`), by its id: the adapter closes. */
  ends(): [string, () => void][] {
    return [...this.#byId].map(([id, past]) => [id, past.end])
  }

  /** Socket `id` gets what it kept aside: delivered, or asked when it is a question. */
  #reach(id: string, missed: Missed): void {
    const socket = this.#sockets.get(id)
    if (missed.question) missed.question(socket)
    else if (socket)
      this.#deliver(socket, missed.message, () =>
        socket.deliver(missed.message.prepared(), missed.options.volatile),
      )
  }

  /**
   * A broadcast its rooms get, that `takes` (by its id and `until`): kept aside. Should the
   * server give the write up meanwhile (the session goes on here, see `HandingOff.claimMarker`),
   * the socket gets it then, in order; sealed, it gets it into its tail, in order, unless `ran`
   * (read on the channel past the marker, or sent and given up, which Redis may still run
   * there): the claimer delivers that one. `at`: its own count, for one of this node's own
   * proved never run (see `Missed.at`).
   */
  keepAside(
    message: BroadcastMessage,
    options: BroadcastOptions,
    takes: (id: string, until: number) => boolean,
    ran: boolean,
    at = this.#count(),
  ): void {
    for (const [id, past] of this.#byId) {
      if (!matches(past.rooms, options) || !takes(id, past.until)) continue
      past.missed.push({ message, options, ran, at })
      // Its wait ends here, as at its time limit: kept, the socket has them all, and none
      // more is kept aside; sealed, the seal goes with those no claimer reads.
      if (past.missed.length >= MAX_MISSED_PAST_MARKER) past.end()
    }
  }

  /**
   * `MemoryAdapter.broadcastWithAck`, and the sockets past their marker, out of their rooms,
   * that it would have asked (by their rooms then, and `only`) keep it aside, in order with the
   * broadcasts they keep (see `keepAside`): kept on this node, the socket is asked it then;
   * sealed, it is asked into the tail, unless `ran` (read on the channel past the marker: the
   * claimer, joined there, asks the session). `expect` waits for that (at most
   * `MARKER_SETTLE_MS`, and never past `timeout`: then the count is given with the sockets asked
   * by then, one asked later left out of it, its reply dropped), and replies made meanwhile wait
   * for `expect`: the count comes first.
   * An own question that never ran (`own`, its count), emitted before a socket's marker, is
   * asked of it now instead, as the awaited broadcasts reach it (`deliverAwaited`): it never
   * reached the channel, and the tail is its place.
   */
  askWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
    only: Only | undefined,
    ran: boolean,
    own?: number,
  ): GiveNow | undefined {
    // Each socket asked on its own: one that throws loses it alone (see ask-each.ts).
    if (this.#byId.size === 0) {
      askEach(this.#memory, this.#sockets, this.#warnings, message, options, timeout, expect, reply, only)
      return undefined
    }
    let count = 0
    const early = new EarlyReplies(reply)
    const replyInOrder = early.take
    askEach(
      this.#memory,
      this.#sockets,
      this.#warnings,
      message,
      options,
      timeout,
      (now) => {
        count = now
      },
      replyInOrder,
      only,
    )
    // One for this call itself: a wait that ends while the others are kept aside (at the bound)
    // asks before the count is given.
    let open = 1
    /** The question's timeout, while a count waits for a socket past its marker (see below). */
    let bound: AnswersFirstTimer | undefined
    const give = () => {
      bound?.clear()
      early.release(() => expect(count))
    }
    const settled = () => {
      if (--open > 0) return
      give()
    }
    for (const [id, past] of this.#aside(only)) {
      if (!matches(past.rooms, options) || (only && !only(id))) continue
      open++
      const question = (socket: LocalSocket | undefined) => {
        if (socket) {
          // Asked after the count was given (at the question's timeout): still asked, since its
          // session takes what its rooms got, but left out of the count, its reply dropped, so
          // that the sender hears no more replies than it counted.
          const counted = !early.released
          if (counted) count++
          // Its question may be registered before it throws, and settled there too (see reply-once.ts).
          const once = replyOnce(counted ? replyInOrder : () => {})
          this.#deliver(
            socket,
            message,
            () => socket.deliverWithAck(message.prepared(), timeout, once, options.volatile),
            // Counted: its reply, never to come, fails.
            () => once(disconnected()),
          )
        }
        settled()
      }
      if (!ran && own !== undefined && own <= past.until) {
        question(this.#sockets.get(id))
        continue
      }
      past.missed.push({ message, options, question, ran, at: own ?? this.#count() })
      if (past.missed.length >= MAX_MISSED_PAST_MARKER) past.end()
    }
    settled()
    // The wait (at most MARKER_SETTLE_MS) never outlasts the question's timeout, its sender's:
    // the count is given then with the sockets asked by then. Past MAX_TIMER_MS no timer, as for
    // one socket: the wait ends with the last socket's. The verdict waits a turn (see
    // `AnswersFirstTimer`): a seal or a broadcast read in time ends a socket's wait first.
    if (open > 0 && timeout <= MAX_TIMER_MS) bound = new AnswersFirstTimer(timeout, give, true)
    return give
  }

  /** The sockets past their marker that `only` may pass: the one it names alone, if it does (see one-socket.ts). */
  #aside(only: Only | undefined): Iterable<[string, PastMarker]> {
    const alone = socketAlone(only)
    if (alone === undefined) return this.#byId
    const past = this.#byId.get(alone)
    return past ? [[alone, past]] : []
  }

  /**
   * Delivers what `socket` kept aside. Run at the end of its wait, from a timer or a message
   * read, with more kept aside behind it and the seal or the claim's answer after them: a socket
   * that throws loses this one alone (logged, and `failed` for a question), never the rest.
   */
  #deliver(socket: LocalSocket, message: BroadcastMessage, deliver: () => void, failed?: () => void): void {
    try {
      deliver()
    } catch (err) {
      this.#warnings.warn(
        'past-marker-delivery',
        'a broadcast kept aside for a socket while its seal waited at a claim marker failed at its delivery, and is lost to its session',
        { err, event: message.name, socket: socket.id },
      )
      failed?.()
    }
  }

  /** The rooms of socket `id` while it is past its marker (see `Broadcasts.roomsAside`). */
  roomsAside(id: string): Set<string> | undefined {
    return this.#byId.get(id)?.rooms
  }

  /**
   * Delivers awaited own broadcast `q`, proved never run, to the sockets past their marker that
   * take it (`atReturn`): emitted before their marker, directly, into the tail.
   */
  deliverAwaited(
    q: number,
    message: BroadcastMessage,
    options: BroadcastOptions,
    atReturn: (id: string) => boolean,
  ): void {
    for (const [id, { rooms, until }] of this.#byId) {
      if (q > until || !atReturn(id) || !matches(rooms, options)) continue
      // A socket that throws loses this one alone, not the others' nor the end of its wait.
      try {
        this.#sockets.get(id)?.deliver(message.prepared(), options.volatile)
      } catch (err) {
        lostAtSeal(this.#warnings, message, err)
      }
    }
  }
}

/** A socket past its claim marker, its seal waiting. */
interface PastMarker {
  /** Its rooms at the marker, with its joins and leaves since. */
  rooms: Set<string>
  /** The count of the last own broadcast sent before the marker. */
  until: number
  /**
   * What its rooms got since, which it gets should the session stay on this node; at most
   * `MAX_MISSED_PAST_MARKER`.
   */
  missed: Missed[]
  /** Ends the wait now, as its time limit would: back in its rooms, and `done` (see `enter`). */
  end: () => void
}

/** A broadcast kept aside for a socket past its marker, or a question (see `askWithAck`). */
interface Missed {
  message: BroadcastMessage
  options: BroadcastOptions
  /** A question: asks the socket given, or counts none without one; once. */
  question?: (socket: LocalSocket | undefined) => void
  /**
   * Whether Redis ran it (read on the channel past the marker) or may still: the claimer's.
   * Else (`local`, or never run) only this node has it, for the tail.
   */
  ran: boolean
  /**
   * The count of this node's own broadcasts sent when it came (its own count for one of them
   * proved never run): at the seal, those of them still waiting up to it go before it (see
   * `KeptAside.sealing`).
   */
  at: number
}
