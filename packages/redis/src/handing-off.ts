// This node's side of its sessions' handoffs: the write of a drained session's snapshot once
// Redis can take it, the appends and the seal of its tail, the withdraw of one that ended here,
// and the stop at a claim marker, where the server gives its last packets and the tail is
// sealed for the claimer. The store (handoff.ts) says what goes to Redis; this says when, and
// what becomes of the socket's place on the channel (cut.ts, places.ts) meanwhile.
import type { SessionSnapshot } from '@parley/server'
import { AnswersFirstTimer, withinAnswersFirst } from './answers-first-timer.js'
import { AppendsAfterClose } from './appends-after-close.js'
import { CLAIM_KEEP_MS, type HandedOff } from './handoff.js'
import type { HandoffParts } from './handoff-parts.js'
import type { KeptAside } from './past-marker.js'
import { codeOf, RedisUnreachableError, within } from './send.js'
import { MAX_QUEUED_TAIL_APPENDS, MAX_QUEUED_TAIL_BYTES } from './tail-writes.js'
import type { ClaimMarker } from './wire.js'

/**
 * The longest the seal at a claim marker waits for an own broadcast the socket awaits to be
 * settled (see `HandingOff.claimMarker`): the claimer waits for that seal `SEAL_WAIT_MS` (3 s),
 * and the note that settles it comes back within a round trip when Redis answers at all.
 */
export const MARKER_SETTLE_MS = 1000

/**
 * Starts the limit of a seal's wait at a claim marker: `wake` runs after `MARKER_SETTLE_MS`; the
 * function returned clears it. A named object, as `sealWaits` in takeover.ts, so that a test can
 * run the limit out when its scene is set, whatever the machine's load, rather than race it.
 *
 * Its verdict waits a turn (see `AnswersFirstTimer`): what ends the wait comes on this node's
 * subscriber (the probe's note, a later own message back). Read only after a stall of the thread
 * that outlasted the limit, it would lose to it, and the seal would go without the broadcast it
 * proves never ran: the session would miss it.
 */
export const markerSettles = {
  start(wake: () => void): () => void {
    const timer = new AnswersFirstTimer(MARKER_SETTLE_MS, wake, true)
    return () => timer.clear()
  },
}

/** This node's sessions being handed off, from the write of their snapshot to their claim. */
export class HandingOff {
  readonly #parts: HandoffParts
  /**
   * Sessions whose `handOff` waits for Redis before it sends anything, by sid: true once the
   * server gave up on it meanwhile (`withdrawHandOff`), so that nothing is written after all.
   */
  readonly #handOffsWaiting = new Map<string, boolean>()
  /**
   * The handoffs whose settle before an unclaimed seal (`settleHandOff`) waits for what Redis
   * may still run: the close gives them what never ran (see `beforeClose`).
   */
  readonly #settling = new Set<HandedOff>()
  /** Appends to handed-off tails that came after the close, said once they stop coming. */
  readonly #afterClose: AppendsAfterClose

  constructor(parts: HandoffParts) {
    this.#parts = parts
    this.#afterClose = new AppendsAfterClose(parts.warnings)
  }

  /** See `RedisAdapter.handOff`. */
  async handOff(snapshot: SessionSnapshot, ttl: number): Promise<boolean> {
    if (this.#parts.closed()) return false
    // The end of the client's window, as the server counts it (`ttl` from now): the keys live
    // until then however long the write waits below, for Redis or its turn (see `pxUntil`). Its
    // window spent by the time the write goes, nothing is written, and the server ends the
    // session as that window's end would.
    const ends = performance.now() + ttl
    // Redis away or not answering a moment (a failover, a reconnect): waited for at most
    // `requestTimeout`, as the tail appends wait, rather than end the session for a blip. Never
    // sent if it does not come back: nothing to take back later. The server bounds the whole by
    // its handoff timeout, and ends the session when that runs out. Behind a burst on this node
    // (Redis answering) it does not wait for the burst to end, which may last past
    // `requestTimeout`: the write takes its turn (see `HandOffStore.write`).
    if (!this.#parts.commands.takesTurns()) {
      this.#handOffsWaiting.set(snapshot.sid, false)
      // The server feeds the tail from the freeze on: what it sends meanwhile is held for the
      // entry, which begins only once Redis is back.
      this.#parts.handoffs.holdAppends(snapshot.sid)
      const available = await this.#parts.commands.whenInTurn()
      const givenUp = this.#handOffsWaiting.get(snapshot.sid) === true
      this.#handOffsWaiting.delete(snapshot.sid)
      // Closed, or the server stopped waiting while this waited: the session ended, or went on
      // here (a move thawed it, and its withdraw found no write to take back). What was held
      // is dropped: the server kept it for the session, which a thaw replays to its client.
      if (!available || givenUp || this.#parts.closed() || !this.#parts.sockets.hasSession(snapshot.sid)) {
        this.#parts.handoffs.dropHeld(snapshot.sid)
        return false
      }
    }
    const { sid, id } = snapshot
    this.#parts.sessions.handingOff(sid)
    this.#parts.stands(ttl + CLAIM_KEEP_MS)
    // The socket took this node's own broadcasts up to `from` when they were emitted (but for
    // those it was left out of for a tail, still on their way: see uncut-sockets.ts), so the snapshot
    // holds them, whether they came back here yet or not: written as this node's place at least,
    // with the snapshot and each append (see `#placesOf`). Else a claimer joined before its
    // marker came back, whose slow subscriber reads one after the join, would deliver it again
    // when the tail it reads unsealed holds no text written after it came back here.
    const from = this.#parts.cut.position(id)
    const owed = this.#parts.uncut.firstOwed(id)
    const entry = this.#parts.handoffs.begin(
      snapshot,
      ttl,
      owed === undefined ? from : Math.min(from, owed - 1),
    )
    // With the snapshot, where this node is on the channel (see places.ts): a tail read before
    // any append holds them.
    const places = this.#placesOf(entry)
    // What the session was sent while this waited for Redis, first in its tail: queued now,
    // written behind the snapshot (one connection, in order), the places with it.
    const held = this.#parts.handoffs.appendHeld(entry, places)
    if (held.dropped) this.#appendDropped()
    // Those places (and `took`, in them) cover the texts held, which the snapshot does not hold:
    // a tail read between the write and their append would have the claimer drop them when its
    // subscriber reads them late. So the snapshot goes without places then, and filters
    // nothing (a broadcast may reach the session twice, never be lost) until that append lands.
    const snapshotPlaces = held.queued ? '' : places
    // -1: sent, and not answered within requestTimeout (see Commands).
    const epoch = await this.#parts.handoffs
      .write(entry, snapshot, ends, snapshotPlaces)
      .catch((err: unknown) => {
        if (err instanceof RedisUnreachableError) return -1
        // Refused by Redis (`PARLEY_REDIS_REFUSED`), or never sent behind a burst on this node
        // (`PARLEY_REDIS_BUSY`): the code tells an operator which, as every warning of a command
        // given up does.
        this.#parts.warnings.warn('handoff', 'could not store a session snapshot', { code: codeOf(err), err })
        return 0
      })
    // The server stopped waiting and withdrew it meanwhile (see `withdrawHandOff`): its UNDO,
    // behind the write, takes it back; the entry stays for a claim marker until then. Not
    // stored, whatever the write answered: nothing of it stays claimable, and a session that
    // went on here is this node's (a true would tell the server its snapshot was stored late,
    // to be withdrawn again and counted `withdrawn`).
    if (entry.givenUp) {
      if (epoch > 0) entry.epoch = epoch
      return false
    }
    // A claim won the write before its answer came (or came in time): it landed, and the
    // session was sealed here for the claimer. Told false, the server would thaw a session that
    // the claimer has taken over; told true, it ends its copy as for any claimed move.
    if (entry.claimedEarly && epoch !== 0) {
      if (epoch > 0) entry.epoch = epoch
      return true
    }
    if (epoch > 0 && this.#parts.handoffs.byHash(entry.hash) === entry) {
      entry.epoch = epoch
      entry.timer = setTimeout(() => this.#parts.handoffs.forget(entry), ttl)
      entry.timer.unref()
      return true
    }
    if (epoch === -1) {
      this.#parts.warnings.warn(
        'handoff',
        `a snapshot was not stored within ${this.#parts.requestTimeout} ms`,
      )
      this.#parts.takeBack.awaitWord(entry)
      return false
    }
    this.#parts.handoffs.forget(entry)
    // The socket stays this node's: broadcasts it was left out of meanwhile reach it as they
    // come back, later ones when emitted again.
    this.#parts.cut.release(id)
    this.#parts.sessions.keptBack(sid)
    return false
  }

  /**
   * True when `node` took over the session of socket `id` from this node: a reply to one of this
   * node's questions that it sends back is taken; from any other node, dropped.
   */
  claimedBy(id: string, node: string): boolean {
    return this.#parts.claimers.claimedBy(id, node)
  }

  /** See `RedisAdapter.appendHandOff`. */
  appendHandOff(sid: string, text: string): void {
    try {
      if (this.#parts.closed()) {
        if (this.#parts.handoffs.takesAppends(sid)) this.#afterClose.dropped()
        return
      }
      if (this.#parts.handoffs.append(sid, text, (entry) => this.#placesOf(entry))) return
      this.#appendDropped()
    } catch (err) {
      this.#parts.warnings.warn('handoff-append', 'could not append to a handed-off session', { err })
    }
  }

  /** An append to a handed-off tail did not fit the bounds of the queue (see `appendHandOff`). */
  #appendDropped(): void {
    this.#parts.warnings.warn(
      'handoff-append-dropped',
      `dropped an append to a handed-off session's tail: ${MAX_QUEUED_TAIL_APPENDS} appends or ${MAX_QUEUED_TAIL_BYTES} bytes wait for Redis already; the node that takes the session over finds its tail incomplete`,
      { queued: this.#parts.handoffs.queuedAppends, unavailable: this.#parts.commands.unavailable() },
    )
  }

  /** See `RedisAdapter.settleHandOff`. */
  async settleHandOff(sid: string, ms: number): Promise<void> {
    const entry = this.#parts.handoffs.bySid(sid)
    if (entry?.state !== 'open' || entry.givenUp || this.#parts.closed()) return
    // Claimed already, its seal waiting for the same: that seal takes the session, with its
    // last packets, before the server would take them itself. The bound's verdict waits a turn,
    // as the seal's limit does (see `markerSettles`): after a stall of the thread past both, the
    // limit, due first, still seals first, rather than this leave the session to the server.
    if (entry.pastMarker) return withinAnswersFirst(entry.pastMarker, ms, undefined)
    // Those it awaits that Redis may still run: back, or proved never run, they reach it (into
    // the tail) in order, with those given up behind them. So do those on their way back, which
    // it was left out of when they were emitted (a round trip, as a rule).
    this.#settling.add(entry)
    await this.#parts.awaitedSettled(entry.id, ms)
    // Given it at the close already (see `beforeClose`): appends are refused past it.
    if (!this.#settling.delete(entry)) return
    this.#neverRan(entry)
  }

  /**
   * The adapter is about to close, its settles to end (see `Broadcasts.endSettles`): what never
   * ran reaches their sessions now, while appends still reach the tails. Past the close, the
   * settle would give it to them all the same, and their appends, refused, would drop it from
   * the tails unsaid.
   */
  beforeClose(): void {
    for (const entry of this.#settling) this.#neverRan(entry)
    this.#settling.clear()
  }

  /**
   * The settle of `entry` ended: unless claimed meanwhile (sealed at the marker, which gave it
   * what never ran), what never ran and still waits behind one that may still run (its fate
   * unknown by now) reaches it, as at a claim's marker: the seal that follows is its last chance.
   */
  #neverRan(entry: HandedOff): void {
    if (this.#parts.handoffs.bySid(entry.sid) !== entry || entry.state !== 'open') return
    this.#parts.leavingCut(entry.id)
  }

  /** See `RedisAdapter.sealHandOff`. */
  async sealHandOff(sid: string, last: string[], alone = false): Promise<void> {
    const entry = this.#parts.handoffs.bySid(sid)
    // Claimed, its seal waiting (see `claimMarker`): that seal is the session's.
    if (!entry || entry.pastMarker) return
    // Taken while the socket is still positioned: one it owes is not counted (`#placesOf`).
    const places = this.#placesOf(entry)
    this.#parts.cut.unposition(entry.id)
    const late = Symbol('late')
    // The end of the drain waits for it: bounded, as every other step.
    const sealed = await within(
      this.#parts.handoffs.seal(entry, last, alone, places).then(
        () => undefined,
        (err: unknown) => err,
      ),
      this.#parts.requestTimeout,
      late,
    )
    if (sealed === late) {
      this.#parts.warnings.warn(
        'handoff-seal',
        `the seal of a handed-off session's tail was not written within ${this.#parts.requestTimeout} ms; it goes once Redis answers`,
      )
    } else if (sealed !== undefined) {
      this.#parts.warnings.warn('handoff-seal', 'could not seal the tail of a handed-off session', {
        err: sealed,
      })
    }
  }

  /** See `RedisAdapter.withdrawHandOff`. */
  async withdrawHandOff(sid: string): Promise<void> {
    // Still waiting for Redis, nothing sent: it sends nothing now.
    if (this.#handOffsWaiting.has(sid)) this.#handOffsWaiting.set(sid, true)
    const entry = this.#parts.handoffs.bySid(sid)
    if (!entry || this.#parts.closed()) return
    // Its write unanswered, or given up on (taken back already, or its UNDO waits for this word).
    // Or stored, and the session goes on here all the same (a move taken back once its store
    // answered, see the server's `withdrawOnceStored`; a drain that stopped waiting for the
    // answer just as it came): the take-back, not WITHDRAW, tells a claim that won meanwhile
    // that the session stayed here ('kept'), names this node in the owner record again, and
    // answers that claim's marker with a seal rather than `claimed`, which would end the
    // session here.
    if (entry.epoch === 0 || entry.givenUp || this.#parts.sockets.hasSession(sid))
      return this.#parts.takeBack.giveUp(entry)
    const outcome = await this.#parts.handoffs.withdraw(entry).catch((err: unknown) => {
      this.#parts.warnings.warn(
        'handoff-withdraw',
        'could not withdraw the snapshot of a session that ended; another node may resume it until it expires',
        { err },
      )
      return undefined
    })
    if (outcome === 'later') {
      this.#parts.warnings.warn(
        'handoff-withdraw',
        'could not withdraw the snapshot of a session that ended yet; it is withdrawn once Redis answers, another node may resume it until then',
      )
    }
    // Whatever the outcome, the socket's place on the channel is over: a session that ended has
    // no socket to serve. Kept until a claim's marker instead, it would stay for good should that
    // marker never come (its claimer died), or the withdraw wait for Redis: every own broadcast
    // would then be read back for it.
    this.#parts.cut.unposition(entry.id)
    if (outcome === 'withdrawn' || outcome === 'none') this.#parts.handoffs.forget(entry)
  }

  /**
   * Where this node is on the channel, for the tail of `entry`'s session (see `ReadPlaces`), its
   * place for itself at least `entry.took` (the snapshot holds those). Its own broadcasts given
   * up are left out while the socket still owes one (positioned since it was given up, see
   * cut.ts): it has not had it, and should Redis run it after the tail is read, the claimer must
   * deliver it. Left out, the others may reach the session twice, never be lost. So the floor
   * `took` stays below the first it owes: a socket taken over here before its marker came back
   * counts as taken every own broadcast up to the marker, one given up before it was positioned
   * included, which it never had (it was elsewhere when that was emitted, and takes none up to
   * the marker when they come back: see `Cut.atReturn`).
   */
  #placesOf(entry: HandedOff): string {
    // Past its claim marker, its seal waiting (see `claimMarker`): the marker's places.
    if (entry.markerPlaces !== undefined) return entry.markerPlaces
    const owed = this.#parts.cut.firstOwedGivenUp(entry.id)
    const floor = owed === undefined ? entry.took : Math.min(entry.took, owed - 1)
    // Never '' (which a node of an earlier version writes, and says nothing): '{}' says that this
    // node read nothing, so that a claimer reading the tail unsealed gives the session every
    // broadcast it read before its cut (see read-window.ts).
    return this.#parts.readPlaces.textWith(this.#parts.node, floor, owed === undefined) || '{}'
  }

  /**
   * A claim marker came back, at its place among the broadcasts: for a session this node hands
   * off, the moment to stop. The server gives its last packets (`LocalSockets.claimed`), the
   * tail is sealed after them, and the claimer is told once the seal is written; all before the
   * next broadcast is read. Unless the socket awaits an own broadcast given up before the marker
   * that Redis may still run (see awaited.ts): past the marker, should it run, the claimer
   * delivers it; should it never run, its place is the tail, which no claimer reads otherwise.
   * So the seal waits, at most `MARKER_SETTLE_MS`, for what proves either (see
   * `Broadcasts.pastMarker`), the socket out of its rooms meanwhile.
   */
  claimMarker(marker: ClaimMarker): void {
    const entry = this.#parts.handoffs.byHash(marker.h)
    if (!entry || (entry.epoch !== 0 && marker.ep !== entry.epoch + 1)) return
    if (entry.givenUp) {
      // A claim of a write given up on, revoked by its UNDO (which goes before this seal):
      // the session is not this claim's, and stays as it is here.
      this.#parts.handoffs.seal(entry, []).catch(() => undefined)
    } else if (entry.state === 'open') {
      // The same marker again (sent again after a refusal) while the seal waits: that seal
      // answers the claim.
      if (entry.pastMarker) return
      if (entry.epoch === 0) entry.claimedEarly = true
      // The server keeps its questions to the client waiting for replies from this claimer.
      this.#recordClaimer(entry, marker.n)
      const until = this.#parts.cut.count
      if (this.#parts.awaitsAtMarker(entry.id, until)) {
        // With where this node is on the channel at the marker, every append meanwhile too.
        entry.markerPlaces = this.#placesOf(entry)
        entry.pastMarker = new Promise<void>((settled) => {
          this.#parts.pastMarker(entry.id, until, markerSettles.start, (aside) => {
            // Its write given up on meanwhile (the session went on here): revoked, as above. The
            // socket, back in its rooms, gets what they got while it was out of them, questions
            // included.
            if (entry.givenUp) {
              // What never ran and waits behind one that may still run goes first, in order
              // with what the socket kept aside, as at a seal: both were emitted before it.
              this.#parts.leavingCut(entry.id, until)
              aside.kept(this.#behind(entry, until))
              this.#parts.handoffs.seal(entry, []).catch(() => undefined)
            } else this.#sealAtMarker(entry, until, aside.sealing)
            this.#answerClaim(entry, marker)
            settled()
          })
        })
        return
      }
      this.#sealAtMarker(entry)
    } else {
      // Sealed already, with no claim (a drain that nobody claimed it in, see `sealHandOff`):
      // claimed late, the session's client is with this claimer all the same, and its replies
      // to the questions asked here (into the tail, or awaited at the snapshot) come back
      // through it.
      this.#recordClaimer(entry, marker.n)
    }
    this.#answerClaim(entry, marker)
  }

  /** `node` claimed `entry`'s session: its replies sent back are taken (see claimers.ts). */
  #recordClaimer(entry: HandedOff, node: string): void {
    entry.claimer = node
    this.#parts.claimers.record(entry.id, node, entry.ttl)
  }

  /**
   * The session's tail is sealed for the claim whose marker came back (see `claimMarker`);
   * `sealing` gives it, into the tail, what it kept aside while the seal waited (see `KeptAside`).
   */
  #sealAtMarker(entry: HandedOff, until?: number, sealing?: KeptAside['sealing']): void {
    // Into the tail before its last packets: what never runs reaches the session nowhere else.
    this.#parts.leavingCut(entry.id, until)
    // Those emitted past the marker that never ran and still wait behind one that may (the
    // seal went at its limit, or at the adapter's close) go too, among what the socket kept
    // aside, in the order they were emitted: no claimer reads them either.
    sealing?.(this.#behind(entry, until))
    let last: string[] = []
    try {
      last = this.#parts.sockets.claimed(entry.sid)
    } catch (err) {
      this.#parts.warnings.warn('handoff-seal', 'the server failed to give the last packets of a session', {
        err,
      })
    }
    // With where this node is on the channel: at the marker, every broadcast before it.
    // Taken while the socket is still positioned: one it owes is not counted (`#placesOf`).
    const places = entry.markerPlaces ?? this.#placesOf(entry)
    this.#parts.cut.unposition(entry.id)
    // Whatever the server still holds of the socket, no broadcast reaches it here now.
    this.#parts.memory.delAll(entry.id)
    this.#parts.handoffs.seal(entry, last, false, places).catch(() => undefined)
  }

  /**
   * What gives `entry`'s socket, as it takes what it kept aside past its marker (`until` own
   * broadcasts sent then), this node's own that never ran, emitted after the marker up to each
   * count asked for, that still wait behind one that may run (see `KeptAside`).
   */
  #behind(entry: HandedOff, until = 0): (q: number) => void {
    let reached = until
    return (q) => {
      if (q <= reached) return
      this.#parts.leavingCut(entry.id, q, reached)
      reached = q
    }
  }

  /** Tells the claimer of `marker` that the tail is sealed, once it is written. */
  #answerClaim(entry: HandedOff, marker: ClaimMarker): void {
    const sealed = () => {
      this.#parts.handoffs.forget(entry)
      this.#parts.publisher.publish(`${this.#parts.prefix}:response:${marker.n}`, {
        n: this.#parts.node,
        id: marker.id,
        k: 'sealed',
      })
    }
    entry.sealing?.then(sealed, (err: unknown) => {
      this.#parts.handoffs.forget(entry)
      this.#parts.warnings.warn('handoff-seal', 'could not seal the tail of a claimed session', { err })
    })
  }
}
