// The broadcast channel, both ways: a broadcast of this node goes to its sockets at once and is
// PUBLISHed once for the others; one read back from the channel goes to the sockets that take
// it then (another node's, or this node's own for the sockets being handed over, see cut.ts, or
// joined by a takeover before its marker came back, see uncut-sockets.ts), in the order every
// node reads the channel. Claim markers, which share the channel, are the adapter's to route.
import type { BroadcastMessage, BroadcastOptions, LocalSockets, MemoryAdapter } from '@parley/server'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { deliverAtSeal } from './at-seal.js'
import { type AskAwaited, AwaitedBroadcasts, type DeliverAwaited } from './awaited.js'
import type { Cut } from './cut.js'
import { deliverEach, deliverOne } from './deliver-each.js'
import type { AskWithAck } from './held-questions.js'
import { type KeptAside, PastMarkerSockets } from './past-marker.js'
import type { ReadPlaces } from './places.js'
import type { Publisher } from './publish.js'
import type { ReadWindow } from './read-window.js'
import { fits, remoteMessage } from './remote.js'
import { RedisErrorCode } from './send.js'
import type { Losses } from './stats.js'
import type { UncutSockets } from './uncut-sockets.js'
import type { Warnings } from './warnings.js'
import { type BroadcastPacket, decodeEvent, fromWireOptions, toWireOptions } from './wire.js'

/** What the broadcast channel needs of the adapter. */
export interface BroadcastParts {
  /** This node's id. */
  readonly node: string
  /** This node's rooms and sockets. */
  readonly memory: MemoryAdapter
  /** The server's sockets: their `maxPayload`, which a broadcast from another node must fit. */
  readonly sockets: LocalSockets
  readonly cut: Cut
  readonly uncut: UncutSockets
  readonly readPlaces: ReadPlaces
  /** The broadcasts read lately, for a claimer whose tail comes unsealed (see read-window.ts). */
  readonly window: ReadWindow
  readonly publisher: Publisher
  /** The broadcast channel. */
  readonly channel: string
  readonly losses: Losses
  readonly warnings: Warnings
  /** A packet read that cannot be used: counted as any malformed message. */
  readonly malformed: () => void
  readonly closed: () => boolean
  /** Sends this node the note that settles its own messages not back before it (see `probed`). */
  readonly probe: () => void
  /** `requestTimeout`: how often the probe is sent again while some wait. */
  readonly requestTimeout: number
}

/** This node's broadcasts out, and every node's broadcasts read back. */
export class Broadcasts {
  readonly #node: string
  readonly #memory: MemoryAdapter
  readonly #sockets: LocalSockets
  readonly #cut: Cut
  readonly #uncut: UncutSockets
  readonly #readPlaces: ReadPlaces
  readonly #window: ReadWindow
  readonly #publisher: Publisher
  readonly #channel: string
  readonly #losses: Losses
  readonly #warnings: Warnings
  readonly #malformed: () => void
  readonly #closed: () => boolean
  readonly #probe: () => void
  readonly #requestTimeout: number
  /** Sends the probe again while some own broadcasts are awaited (see `#probeAwaited`). */
  #probeTimer: NodeJS.Timeout | undefined
  /** Own broadcasts given up that the positioned sockets wait for (see awaited.ts). */
  readonly #awaited = new AwaitedBroadcasts()
  /**
   * The waits of `settled` and `pastMarker`, each ended once its socket awaits none up to
   * `until` that may still run, and none up to `back` is on its way to it.
   */
  readonly #settling = new Set<{ id: string; until: number; back: number; done: () => void }>()
  /** Sockets past their claim marker, out of their rooms while their seal waits (see `pastMarker`). */
  readonly #pastMarker: PastMarkerSockets
  /**
   * Own broadcasts given up that sockets taken over here would have taken then, each waiting
   * for an own one PUBLISHed before their claim marker that may still come back to them (see
   * `Cut.waitsBeforeCut`): given at once, it would pass that one.
   */
  readonly #behindBeforeCut: {
    q: number
    message: BroadcastMessage
    options: BroadcastOptions
    /** In the order the sockets were met; a set, since a burst of takeovers may hold many. */
    ids: Set<string>
  }[] = []
  /** Delivers an awaited one to the positioned sockets that take it now. */
  readonly #deliverAwaited: DeliverAwaited = (q, message, options) => {
    if (!this.#cut.empty) {
      const atReturn = this.#cut.atReturn(q)
      // Each socket on its own: one that throws loses it alone (see deliver-each.ts).
      deliverEach(this.#memory, this.#sockets, this.#warnings, message, options, atReturn, true)
      // Up to its marker, a socket past it takes it directly (`PastMarkerSockets.deliverAwaited`), not twice.
      if (this.#pastMarker.size > 0)
        this.#pastMarker.keepAside(message, options, (id, until) => q > until && atReturn(id), false, q)
    }
    if (this.#pastMarker.size > 0) this.#pastMarker.deliverAwaited(q, message, options, this.#cut.atReturn(q))
    this.#cut.awaitedDone(q)
  }

  constructor(parts: BroadcastParts) {
    this.#node = parts.node
    this.#memory = parts.memory
    this.#sockets = parts.sockets
    this.#pastMarker = new PastMarkerSockets(
      parts.memory,
      parts.sockets,
      parts.warnings,
      () => parts.cut.count,
    )
    this.#cut = parts.cut
    this.#uncut = parts.uncut
    this.#readPlaces = parts.readPlaces
    this.#window = parts.window
    this.#publisher = parts.publisher
    this.#channel = parts.channel
    this.#losses = parts.losses
    this.#warnings = parts.warnings
    this.#malformed = parts.malformed
    this.#closed = parts.closed
    this.#probe = parts.probe
    this.#requestTimeout = parts.requestTimeout
    parts.cut.onSettle(() => this.#reachBehindBeforeCut())
  }

  /**
   * Delivers `message` to this node's matching sockets now, then PUBLISHes it once for the other
   * nodes (see `RedisAdapter.broadcast`).
   */
  send(message: BroadcastMessage, options: BroadcastOptions): void {
    const cut = this.#cut
    const publish = !options.local && !this.#closed()
    // A socket joined without a cut whose tail is not read yet takes it when it comes back
    // instead, held and filtered by the tail's places (see uncut-sockets.ts).
    const leftOut: string[] = []
    const uncut = publish && !this.#uncut.empty ? this.#uncut.leftOut(leftOut) : undefined
    // After the close nothing crosses Redis: such a socket, its tail still to be read, takes it
    // behind what it holds, in the order emitted here, unfiltered (no count: see `givenUp`).
    const behind =
      !options.local && !publish && !this.#uncut.empty
        ? this.#uncut.only({ node: '', q: undefined, message, options }, undefined)
        : undefined
    // Nor does anything come back: every positioned socket, which takes own broadcasts on their
    // return, takes it now, once, in the order emitted. One being handed over: its tail can no
    // longer be written either, so the server's append of it is refused and said with the other
    // appends after the close (see appends-after-close.ts), rather than lost without a word. One
    // taken over here (`Cut.positionUntilBack`): its session is this node's, and gets it live.
    const atEmit = publish || options.local ? cut.atEmit : all
    // A socket that throws at it ends it for this node's sockets after it, and the throw reaches
    // the application's emit, as with the memory adapter (one loop, no pass to collect them
    // first: this is every broadcast's path). The PUBLISH goes all the same: the other nodes
    // get it, and so do the sockets here that take it when it comes back: the positioned ones
    // (by the cut's count, whatever the loop reached), and every one joined without a cut that
    // it left out (the memory adapter filters all the matching sockets before it delivers to
    // any, so a throw cannot cut that list short).
    try {
      if (behind) this.#broadcast(message, options, (id) => atEmit(id) && behind(id), cut.atEmit, false)
      else if (options.local || (cut.empty && !uncut))
        this.#broadcast(message, options, undefined, all, publish)
      else if (!uncut) this.#broadcast(message, options, atEmit, cut.atEmit, publish)
      else this.#broadcast(message, options, (id) => cut.atEmit(id) && uncut(id), cut.atEmit, publish)
    } finally {
      if (publish) this.#publish(message, options, leftOut)
    }
  }

  /** PUBLISHes own broadcast `message` once for the other nodes, past its delivery here (see `send`). */
  #publish(message: BroadcastMessage, options: BroadcastOptions, leftOut: readonly string[]): void {
    const cut = this.#cut
    const packet: BroadcastPacket = {
      n: this.#node,
      e: message.prepared().text(0, 0),
      o: toWireOptions(options),
      q: cut.sent(),
    }
    const q = packet.q ?? 0
    if (leftOut.length > 0) this.#uncut.owe(leftOut, q)
    this.#publisher.publish(this.#channel, packet, (why, sent) => {
      this.#losses.lostBroadcast(why)
      // Sent, a stalled Redis may still run it, after a claim marker too: the sockets being
      // handed over wait for it, and for those given up behind it (see awaited.ts). Never run,
      // it waits as well behind one emitted before it still on its way back to them.
      const behind = !sent && this.#behindOnItsWay(q)
      const awaited = cut.handingOff && (sent || behind || !this.#awaited.empty)
      // The other positioned sockets of this node take it now (all of them when none waits):
      // never sent or refused, it cannot come back. So do the sockets left out of it for their
      // tail. Sent, a stalled Redis may still run it: it then reaches only the sockets
      // positioned since (see cut.ts). Written with the tails this node appends to before it
      // reaches them: a claimer that joined early must not deliver it again should Redis run
      // it late (see places.ts). The tail of a socket that waits for it does not hold it: its
      // places leave out what was skipped while it waits (see `HandingOff.#placesOf`).
      this.#readPlaces.skipped(this.#node, q)
      if (!cut.empty) {
        // A positioned socket joined without a cut whose tail is not read yet holds it behind
        // what it holds already, unfiltered (no count: see `UncutSockets.givenUp`).
        const atReturn = cut.atReturn(q)
        // A socket taken over here that waits for an own one before its marker, which may still
        // come back to it, takes this one after it (see `#reachBehindBeforeCut`).
        const behindBeforeCut = new Set<string>()
        const now = (id: string) => {
          if (!atReturn(id) || (awaited && cut.isHandingOff(id))) return false
          if (!cut.waitsBeforeCut(id, q)) return true
          behindBeforeCut.add(id)
          return false
        }
        const held = { node: '', q: undefined, message, options }
        // Each socket on its own: one that throws skips none of the bookkeeping below.
        this.#broadcast(
          message,
          options,
          this.#uncut.empty ? now : this.#uncut.only(held, now),
          now,
          sent,
          true,
        )
        if (behindBeforeCut.size > 0)
          this.#behindBeforeCut.push({ q, message, options, ids: behindBeforeCut })
      }
      if (!this.#uncut.empty) this.#uncut.givenUp(q, message, options)
      if (sent) cut.givenUp(q)
      else cut.lost(q)
      if (awaited) {
        cut.awaits(q, sent)
        this.#awaited.add(q, message, options, sent, this.#deliverAwaited)
        if (sent) this.#probeAwaited()
        // In place of one on its way that it was behind (its own PUBLISH given up now), it
        // may hold nothing back any more.
        else this.#awaited.flush(this.#deliverAwaited)
      }
      // Lost, it is on its way to no socket any more.
      this.#wake()
    })
  }

  /**
   * Gives the own broadcasts given up that waited for one before a claim marker (see
   * `#behindBeforeCut`) to each socket that waits for none any more (`all`: to every one, the
   * adapter closed), in the order they were emitted: behind what it holds when its tail is not
   * read yet, else now (in its rooms then).
   */
  #reachBehindBeforeCut(all = false): void {
    if (this.#behindBeforeCut.length === 0) return
    const due: { id: string; message: BroadcastMessage; options: BroadcastOptions }[] = []
    this.#behindBeforeCut.sort((x, y) => x.q - y.q)
    for (const entry of [...this.#behindBeforeCut]) {
      const waiting = new Set<string>()
      if (!all) for (const id of entry.ids) if (this.#cut.waitsBeforeCut(id, entry.q)) waiting.add(id)
      for (const id of entry.ids)
        if (!waiting.has(id)) due.push({ id, message: entry.message, options: entry.options })
      entry.ids = waiting
      if (waiting.size === 0) this.#behindBeforeCut.splice(this.#behindBeforeCut.indexOf(entry), 1)
    }
    // Taken out first: a delivery that leads to another settle finds them gone.
    for (const { id, message, options } of due) {
      if (this.#uncut.holdGivenUp(id, message, options)) continue
      // On its own: one that throws loses it alone (see deliver-each.ts).
      deliverOne(this.#memory, this.#sockets, this.#warnings, message, options, id)
    }
  }

  /**
   * Never run, an awaited broadcast would be settled only by a later own message: the node
   * sends itself one (as for a broadcast with acks, see ack-broadcast.ts), and again every
   * requestTimeout while some are awaited (Redis may take no PUBLISH now).
   */
  #probeAwaited(): void {
    // Closed (a PUBLISH given up past the close): nothing would clear the timer.
    if (this.#closed()) return
    this.#probe()
    if (this.#probeTimer) return
    this.#probeTimer = setInterval(() => {
      if (this.#closed() || this.#awaited.empty) {
        clearInterval(this.#probeTimer)
        this.#probeTimer = undefined
      } else this.#probe()
    }, this.#requestTimeout)
    this.#probeTimer.unref()
  }

  /**
   * The probe's note came back (see the adapter's `#probe`): own broadcasts up to `q` not back
   * by now never ran. Those the positioned sockets wait for reach them now, in order, and those
   * given up behind them follow, as when a later own message comes back. Then every one up to
   * `q` is settled (`passed`): a socket positioned since one was given up (a takeover here)
   * waits for it no more. Kept, it would stay positioned, taking own broadcasts a round trip
   * late, until the node's next own broadcast came back.
   */
  probed(q: number): void {
    if (!this.#awaited.empty) {
      this.#awaited.neverRan(q, this.#deliverAwaited)
      this.#awaited.flush(this.#deliverAwaited)
    }
    this.passed(q)
  }

  /**
   * Socket `id`'s tail is about to be sealed with no claim (see `HandingOff.settleHandOff`):
   * resolves once it awaits no own broadcast up to `until` given up that Redis may still run
   * (each came back, or was proved never run, and reached it with those given up behind it),
   * and none up to `back` that it was left out of is on its way back to it; or after `ms`. The
   * probe goes now, rather than at the next turn of its timer, up to `requestTimeout` away.
   */
  settled(id: string, ms: number, until = Number.POSITIVE_INFINITY, back = 0): Promise<void> {
    return this.#settled(id, until, back, (wake) => {
      // The verdict waits a turn (see `AnswersFirstTimer`): the note or an own message back,
      // read only after a stall of the thread past `ms`, still reaches the socket before the
      // seal that follows, which it would miss.
      const timer = new AnswersFirstTimer(ms, wake, true)
      return () => timer.clear()
    })
  }

  /** `settled`, its time limit started by `limit` (which returns what clears it). */
  #settled(id: string, until: number, back: number, limit: (wake: () => void) => () => void): Promise<void> {
    const waits = () => this.#cut.awaitsMayRun(id, until) || this.#cut.onItsWayTo(id, back)
    if (!waits() || this.#closed()) return Promise.resolve()
    // One probe for the sessions a drain seals together: the first wait's covers every own
    // broadcast given up by then; one given up later, the timer's next.
    if (this.#settling.size === 0 && this.#cut.awaitsMayRun(id, until)) this.#probeAwaited()
    return new Promise((resolve) => {
      let stop: (() => void) | undefined
      const waiter = {
        id,
        until,
        back,
        done: () => {
          stop?.()
          this.#settling.delete(waiter)
          resolve()
        },
      }
      this.#settling.add(waiter)
      stop = limit(waiter.done)
      // A limit that ran out at once (a test's, run by hand) ended the wait already.
      if (!this.#settling.has(waiter)) stop()
    })
  }

  /** Ends the waits of `settled` whose socket awaits none that may still run any more. */
  #wake(): void {
    if (this.#settling.size === 0) return
    for (const waiter of this.#settling) {
      const { id, until, back } = waiter
      if (!this.#cut.awaitsMayRun(id, until) && !this.#cut.onItsWayTo(id, back)) waiter.done()
    }
  }

  /**
   * Whether socket `id`, its claim marker back with `until` own broadcasts sent, awaits one of
   * them that Redis may still run, so that its seal waits for it (see `pastMarker`). A question
   * among them reaches it there as the broadcasts do (see `askWithAck`).
   */
  awaitsAtMarker(id: string, until: number): boolean {
    return this.#cut.awaitsMayRun(id, until) && !this.#closed()
  }

  /**
   * Socket `id`'s claim marker came back while it awaits own broadcasts up to `until` that
   * Redis may still run (see `awaitsAtMarker`). Those were emitted while it was this node's:
   * run after the marker, the claimer delivers them; never run, no claimer reads them, and the
   * tail is their place. So the socket leaves its rooms at once (nothing read past the marker
   * reaches it here) but stays positioned, and takes those, and those never sent behind them,
   * at their turn, directly, once the probe (sent now) or a later own message proves they
   * never ran; one back past the marker is the claimer's, and reaches it no more here. Once it
   * awaits none that may run, or at its time limit (`limit` starts it, see `markerSettles`), it
   * is back in its rooms for `done` (the seal, which gives it what never ran still waiting and
   * reads its rooms), in the same turn; unless its session ended meanwhile. Its rooms getting
   * `MAX_MISSED_PAST_MARKER` broadcasts meanwhile end the wait at once, as its limit would.
   */
  pastMarker(
    id: string,
    until: number,
    limit: (wake: () => void) => () => void,
    done: (aside: KeptAside) => void,
  ): void {
    const end = this.#pastMarker.enter(id, until, done)
    void this.#settled(id, until, 0, limit).then(() => this.#endPastMarker(end))
  }

  /**
   * Ends a seal's wait at a claim marker (see `pastMarker`): the rest of the marker's handling,
   * which the subscriber's own guard no longer covers here. What throws in it (a socket's
   * deliveries are guarded each, see at-seal.ts, past-marker.ts and deliver-each.ts: a bug,
   * then) is logged as there, never left to reject unhandled, which would end the process. Once
   * only.
   */
  #endPastMarker(end: () => void): void {
    try {
      end()
    } catch (err) {
      this.#warnings.warn('incoming', 'a message from another node could not be handled', {
        code: RedisErrorCode.HANDLING_FAILED,
        err,
      })
    }
  }

  /**
   * The adapter closes: every seal waiting at a claim marker goes now, as at its time limit
   * (see `pastMarker`), rather than up to `MARKER_SETTLE_MS` after `close()` resolved, when the
   * node would still give the session what it kept aside and count the questions among them.
   * Called before the adapter counts as closed, so that what reaches the session goes into its
   * tail, and the seal joins the writes `close()` waits for.
   */
  endPastMarkers(): void {
    const ids = new Set<string>()
    for (const [id, end] of this.#pastMarker.ends()) {
      ids.add(id)
      this.#endPastMarker(end)
    }
    // Their waits, and the timers behind them, end too.
    for (const waiter of [...this.#settling]) if (ids.has(waiter.id)) waiter.done()
  }

  /**
   * The adapter has closed: every wait of `settled` still running (a drain's, before the seal of
   * a session nobody claimed) ends now, its timer cleared, rather than at its bound. What it
   * waits for can no longer reach the tail (appends are refused once closed: what never ran
   * went to it before the close, see `HandingOff.beforeClose`), and the drain's seal should not
   * hold `close()`'s caller up to that bound.
   */
  endSettles(): void {
    for (const waiter of [...this.#settling]) waiter.done()
    // Nor does anything come back any more: what waited for an own broadcast before a claim
    // marker goes now, in order, rather than never.
    this.#reachBehindBeforeCut(true)
  }

  /**
   * The adapter has closed: the probe for the awaited broadcasts goes no more (nothing it
   * proves reaches a tail now), and its timer ends with the close rather than at its next turn.
   */
  stopProbing(): void {
    clearInterval(this.#probeTimer)
    this.#probeTimer = undefined
  }

  /**
   * `MemoryAdapter.broadcast`, and the sockets past their marker, out of their rooms, that it
   * would have reached (by their rooms then, and `takes`: `only` without what it holds for the
   * sockets joined without a cut, which none of these is) keep it aside (see
   * `PastMarkerSockets.keepAside`); `ran`: Redis ran it, or may still, on the channel. `each`:
   * each socket given it on its own, where the adapter's work follows (see deliver-each.ts).
   */
  #broadcast(
    message: BroadcastMessage,
    options: BroadcastOptions,
    only: ((id: string) => boolean) | undefined,
    takes: (id: string, until: number) => boolean,
    ran: boolean,
    each = false,
  ): void {
    try {
      if (each) deliverEach(this.#memory, this.#sockets, this.#warnings, message, options, only)
      else this.#memory.broadcast(message, options, only)
    } finally {
      // Out of their rooms, they were not among the sockets a throw ended it for.
      if (this.#pastMarker.size > 0) this.#pastMarker.keepAside(message, options, takes, ran)
    }
  }

  /** See `PastMarkerSockets.askWithAck`. */
  readonly askWithAck: AskWithAck = (...args) => this.#pastMarker.askWithAck(...args)

  /**
   * The rooms of socket `id` while it is past its marker, out of them (see `pastMarker`): its
   * joins and leaves meanwhile change these, which it is back in for its seal. Undefined for
   * any other socket.
   */
  roomsAside(id: string): Set<string> | undefined {
    return this.#pastMarker.roomsAside(id)
  }

  /** A broadcast read on the channel (not a claim marker), in the order every node reads them. */
  read(packet: BroadcastPacket): void {
    // Where this node is on the channel, written with what it appends to the tails of the
    // sessions it hands off (see places.ts): this broadcast, delivered below, is in them.
    if (packet.q !== undefined) this.#readPlaces.read(packet.n, packet.q)
    // Kept a while, as every node reads it: a claimer gives it to a session whose old node read
    // it too late for the tail (see read-window.ts).
    this.#window.read(packet.n, packet.q, packet.e, packet.o)
    // This node's own broadcasts come back too: its sockets already have them, all but those
    // positioned for a handover, which take them now, in the channel's order.
    const awaits = packet.n === this.#node && packet.q !== undefined && !this.#awaited.empty
    // Those given up before it never ran: they reach the positioned sockets first.
    if (awaits) this.#awaited.overtaken(packet.q as number, this.#deliverAwaited)
    if (packet.n === this.#node && this.#cut.empty && this.#uncut.empty) {
      // No socket takes it. Those awaited behind it that never run are settled all the same:
      // left, they would hold back the next handover's own broadcasts given up.
      if (awaits) this.#awaited.flush(this.#deliverAwaited)
      this.#cut.back(packet.q)
      this.#wake()
      return
    }
    // Each socket takes it on its own (see `#deliverRead`); should the delivery throw all the
    // same (logged by the subscriber's guard, see the adapter), what the channel's order asks of
    // this node after it goes on.
    try {
      this.#deliverRead(packet)
    } finally {
      if (awaits) this.#awaited.flush(this.#deliverAwaited)
      this.#wake()
      // Once it went by the places of the sockets joined without a cut (see `UncutSockets.only`):
      // those it reaches filter nothing more.
      if (!this.#uncut.empty) this.#uncut.readFrom(packet.n, packet.q)
    }
  }

  /** Delivers a broadcast read on the channel to this node's sockets that take it now. */
  #deliverRead(packet: BroadcastPacket): void {
    const own = packet.n === this.#node
    const event = decodeEvent(packet.e)
    if (!event) {
      this.#malformed()
      return
    }
    const message = remoteMessage(event.name, event.args)
    if (!own && !fits(message, packet.n, this.#sockets.maxPayload, this.#warnings)) return
    const options = fromWireOptions(packet.o)
    // A socket joined before its claim marker came back takes it in order, unless the tail it
    // was restored from holds it (see uncut-sockets.ts).
    const uncut = (only?: (id: string) => boolean, beforeCut?: (id: string) => boolean) =>
      this.#uncut.empty
        ? only
        : this.#uncut.only({ node: packet.n, q: packet.q, message, options }, only, beforeCut)
    if (own) {
      const q = packet.q ?? 0
      const atReturn = this.#cut.atReturn(q)
      // A socket left out of it when it was emitted, for its tail, takes it now (see uncut-sockets.ts).
      const takes = this.#uncut.empty ? atReturn : (id: string) => this.#uncut.owes(id, q) || atReturn(id)
      // One before the marker of a socket joined without it waits for its tail: read unsealed,
      // the tail may lack it (see `Cut.beforeCut`).
      const beforeCut = packet.q === undefined ? undefined : (id: string) => this.#cut.beforeCut(id, q)
      // Each socket on its own: one that throws skips neither the cut's step nor the flush after it.
      this.#broadcast(message, options, uncut(takes, beforeCut), takes, true, true)
      this.#cut.back(packet.q)
      if (!this.#uncut.empty) this.#uncut.back(packet.q)
    } else {
      // Each socket on its own too: one that throws skips neither the others (a session being
      // handed off gets it nowhere else), those past their marker, nor the steps after it.
      this.#broadcast(message, options, uncut(), all, true, true)
    }
  }

  /**
   * Own broadcast with acks `q` will not run (its PUBLISH refused or never sent): when the
   * sockets being handed over wait for own broadcasts given up before it, `ask` runs once they
   * no longer do, so that they take them in order (see awaited.ts). False when none waits.
   */
  questionBehind(q: number, message: BroadcastMessage, options: BroadcastOptions, ask: AskAwaited): boolean {
    this.#behindOnItsWay(q)
    if (!this.#cut.handingOff || !this.#awaited.question(q, message, options, ask)) return false
    // In place of one on its way that it was behind (its own PUBLISH refused now), it may hold
    // nothing back any more: asked now, then.
    this.#awaited.flush(this.#deliverAwaited)
    return true
  }

  /**
   * Own broadcast `q` will never run (its PUBLISH refused, or never sent): were it to reach the
   * sockets being handed over now, it would pass one emitted before it that they take when it
   * comes back, still on its way. That one is awaited, as a placeholder that only holds back
   * those behind it (see `AwaitedBroadcasts.onItsWay`), so that `q` waits in the awaited queue
   * until it is back. True when one is on its way.
   */
  #behindOnItsWay(q: number): boolean {
    if (!this.#cut.handingOff) return false
    const before = this.#cut.lastOnItsWayToHandingOff(q)
    if (before === undefined) return false
    this.#awaited.onItsWay(before)
    return true
  }

  /**
   * Own broadcast with acks `q` was given up unanswered, sockets left out of it: while sockets
   * are handed over, they wait for it as for a broadcast given up then (see
   * `AwaitedBroadcasts.awaitQuestion`), and `ask` runs once it is proved never run, at its turn.
   * False when none is handed over: it is not waited for.
   */
  awaitQuestion(q: number, message: BroadcastMessage, options: BroadcastOptions, ask: AskAwaited): boolean {
    if (!this.#cut.handingOff) return false
    this.#cut.awaits(q, true)
    this.#awaited.awaitQuestion(q, message, options, ask)
    return true
  }

  /**
   * An own broadcast with acks of count `q` came back: the own broadcasts given up before it
   * that the positioned sockets wait for never ran, and reach them now (see awaited.ts).
   */
  ackBack(q: number): void {
    if (this.#awaited.empty) return
    this.#awaited.overtaken(q, this.#deliverAwaited)
    this.#awaited.flush(this.#deliverAwaited)
    this.#wake()
  }

  /**
   * The note after a resubscribe came back (see the adapter's `#settleGap`): own broadcasts up
   * to `q` not back by now were lost to this node. Those the positioned sockets wait for are
   * settled (see `AwaitedBroadcasts.gap`), then as any (`passed`).
   */
  gap(q: number): void {
    if (!this.#awaited.empty) {
      this.#awaited.gap(q, this.#deliverAwaited)
      this.#awaited.flush(this.#deliverAwaited)
    }
    this.passed(q)
  }

  /**
   * Socket `id` leaves the positioned ones (its tail is sealed), or its session, kept here past
   * its claim marker, takes what it kept aside (see `KeptAside.kept`): the own broadcasts given
   * up that never ran, which it waits for, reach it now, into its tail or live (see
   * `AwaitedBroadcasts.leaving`), and not again at their turn; those after `after` and up to
   * `until` when given.
   */
  leaving(id: string, until?: number, after?: number): void {
    if (this.#awaited.empty) return
    // Each on its own: a socket that throws at one loses that one alone (see at-seal.ts).
    this.#awaited.leaving(
      id,
      (q, message, options) => {
        if (!this.#cut.atReturn(q)(id)) return
        this.#cut.reachedEarly(id, q)
        deliverAtSeal(this.#memory, this.#sockets, this.#warnings, message, options, id)
      },
      until,
      after,
    )
  }

  /**
   * Own messages up to `q` are back, or were lost to this node when not back by now (see the
   * adapter's resubscribe note): positioned sockets waiting for them are released.
   */
  passed(q: number): void {
    this.#cut.back(q)
    this.#uncut.back(q)
    this.#wake()
  }
}

/** Takes every broadcast its rooms get (see `Broadcasts.#broadcast`). */
const all = () => true
