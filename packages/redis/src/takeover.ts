import { type ErrorPacket, encodeText, type ReplyPacket } from '@parley/protocol'
import type { ClaimStanding, HandOffTail, SessionClaim, SessionSnapshot } from '@parley/server'
import type { ClaimMarker } from './wire.js'

/**
 * The longest a claimer waits for the old node to seal the tail after it published its claim
 * marker. Past it (or as soon as the old node says that it left) the claimer reads whatever the
 * tail holds and calls it incomplete: a client waits for its OPEN meanwhile.
 */
export const SEAL_WAIT_MS = 3000

/**
 * Starts a claimer's wait for a seal: `wake` runs after `SEAL_WAIT_MS`; the function returned
 * clears it. One named object rather than a bare `setTimeout`, so that a test can watch these
 * waits, and only these, whatever other timer has the same delay (`UNDO_AT_CLOSE_MS`).
 */
export const sealWaits = {
  start(wake: () => void): () => void {
    const timer = setTimeout(wake, SEAL_WAIT_MS)
    return () => clearTimeout(timer)
  },
}

/**
 * Starts the pause before a marker is sent again: `wake` runs after `MARKER_AGAIN_MS`; the
 * function returned clears it. A named object, as `sealWaits`, so that a test can make the
 * pause last, and see what ends it.
 */
export const markerPauses = {
  start(wake: () => void): () => void {
    const timer = setTimeout(wake, MARKER_AGAIN_MS)
    return () => clearTimeout(timer)
  },
}

/** What a takeover needs of its adapter. */
export interface TakeoverContext {
  /** This node's id. */
  node: string
  /** The claim's id, which the marker and the old node's 'sealed' answer carry. */
  id: string
  /** The session, as `sidHash(sid)`. */
  hash: string
  /** The node that handed the session off. */
  oldNode: string
  /** The epoch the claim wrote. */
  epoch: number
  /** The tail was already sealed when the claim won. */
  sealed: boolean
  /** With `sealed`: by the old node's drain with no other node live (`HandOffTail.alone`). */
  alone: boolean
  /** What was left of the client's recovery window at the claim, in ms (see `SessionClaim.recoveryLeft`). */
  recoveryLeft: number | undefined
  /** When Redis answered the claim (see `SessionClaim.answeredAt`). */
  answeredAt: number
  /**
   * True when `node` said that it left, heard here or marked in Redis (see `Nodes.saidGoodbye`):
   * nothing more comes from it. A node merely out of the live set (its heartbeat lapsed) may be
   * alive, and is waited for. Never rejects.
   */
  saidGoodbye(node: string): Promise<boolean>
  /**
   * Registers the takeover for its marker and the old node's answer (see `Takeover.marked`,
   * `sealed`, `left`) and PUBLISHes the marker; false when it could not be sent. May wait for
   * Redis first (bounded): without its marker, the old node never hears of the claim.
   */
  publish(marker: ClaimMarker, takeover: Takeover): Promise<boolean>
  /** Forgets what `publish` registered. */
  unregister(): void
  /**
   * Takes the claim back (once Redis answers, before any other command of this node): no marker
   * of it ran or will, so it has no cut, and the handoff stays the old node's, claimable by the
   * client's next try.
   */
  giveBack(): void
  /**
   * Positions the socket for the cut (see cut.ts) right before `join`: when the marker was sent
   * and has not come back, past the own broadcasts PUBLISHed before it (the old node's).
   */
  position(id: string): void
  /** The marker came back: the socket, when positioned already, takes every own broadcast back from now on. */
  markerBack(id: string): void
  /**
   * The socket is joined before the marker came back: the broadcasts this node's subscriber
   * reads from now on may be in the tail (see `UncutSockets`), and `finish` tells.
   */
  uncut(id: string): void
  /**
   * Reads the tail back and deletes the handoff's keys; never rejects (bounded). `unread` when
   * the read was never sent (Redis away, or `MAX_QUEUED_COMMANDS` waiting): the tail is whole in
   * Redis still, and the claim is to be given back for the client's next try to read it.
   */
  finish(): Promise<{
    tail: string[]
    sealed: boolean
    whole: boolean
    ended: boolean
    kept: boolean
    unread?: boolean
  }>
  /**
   * Whether the claim of a tail read unsealed still stands (see CONFIRM in handoff.ts); never
   * rejects (bounded: it waits for Redis at most `requestTimeout`, then for its answer as long;
   * 'taken' when Redis does not answer, or cannot be asked by then).
   */
  confirm(): Promise<ClaimStanding>
  /**
   * Sends the client's reply to a question of the old node's (a REPLY or ERROR, its wire text)
   * to that node alone, on its response channel (see `SessionClaim.forwardReply`). Never throws.
   */
  forward(text: string): void
  /** A callback of the server threw. */
  failed(err: unknown): void
}

/**
 * How many times a takeover sends its claim marker when Redis did not run it (refused, or lost
 * with a dropped connection), within its wait (`SEAL_WAIT_MS`): without it on the channel there
 * is no cut.
 */
const MARKER_TRIES = 5

/** The pause before a marker Redis did not run is sent again: a Redis that refused it (BUSY with a script) may take it a moment later. */
const MARKER_AGAIN_MS = 100

/**
 * A session this node won (see `Claims.claim`), until it took it over:
 *
 * ```
 *  claimer                              Redis <p>:broadcast             old node
 *  takeOver ── PUBLISH marker ───────▶  … B1 B2 [marker] B3 …  ──────▶  B1 B2 into the tail
 *  marker back: join() (B3 on: here)                                     marker: claimed(sid),
 *  'sealed' ◀──────────────── PUBLISH <p>:response:<claimer> ◀───────── seal (EVAL)
 *  read the tail, delete the keys: { tail, complete: true }
 * ```
 *
 * The marker goes out whatever the old node's state: it is the cut for the claimer as well. A
 * tail sealed before the claim holds what the old node read on the channel until its seal, and
 * this node's subscriber may read some of that only after the claim was answered (the claim goes
 * on another connection): joined then, the socket would get it twice. Joined when the marker comes
 * back, it gets only what follows the marker. Without the old node (it said that it left, before
 * the claim, even before this node started, or while the claimer waits), or with a tail sealed
 * already, only the marker is waited for; otherwise the old node's seal too. After
 * `SEAL_WAIT_MS` `join` is called and the tail read as it is; joined before the marker came
 * back, the socket does not take again what the tail holds (see `UncutSockets`). An old node
 * merely out of the live set is asked and waited for all the same: its record lapses when it
 * writes no heartbeat for three intervals (a stalled process, a Redis slow to answer its
 * connection), and such a node is alive, numbering into the tail; read without its seal, the
 * tail would lack what it sends from then on, and its drain, never told of the claim, would
 * hold the session until its timeout. A tail read without the old node's seal may be followed
 * by a step of that node's that Redis runs late (it ended the session, or kept it, its write
 * given up on): `confirm` looks once more.
 * A marker that could not be sent, with none before it that Redis may run, sets no cut: the
 * claim is given back instead (`retry`), and the client's next try claims the session anew. So
 * is one given up unanswered while nothing more comes from the old node (see `#abandon`), or
 * not back by the end of the wait when the old node left after it was given up (see `left`).
 */
export class Takeover implements SessionClaim {
  #running: Promise<HandOffTail> | undefined
  #join: (() => void) | undefined
  #joined = false
  #wake: (() => void) | undefined
  /** The tail was read without the old node's seal: `confirm` asks Redis. */
  #unsealed = false
  /** This node's marker came back: the cut reached its subscriber. */
  #markerBack = false
  /** Nothing more is waited for from the old node: sealed before the claim, or it said that it left. */
  #oldNodeDone = false
  /** The old node's seal came. */
  #sealHeard = false
  /** The marker last sent is to be sent again: Redis did not run it (see `markerLost`). */
  #markerLost = false
  /** The adapter closes, or the marker was given up with nothing else to wait for (`#abandon`): the wait is over. */
  #over = false
  /** A marker was sent and Redis may have run it, or may still: given up unanswered, or dropped. */
  #markerMayRun = false
  /** The last marker could not be sent (see `TakeoverContext.publish`). */
  #notSent = false
  /** A marker that may still run was given up with nothing more to come from the old node (see `#abandon`). */
  #abandoned = false

  constructor(
    readonly snapshot: SessionSnapshot,
    private readonly context: TakeoverContext,
  ) {}

  /** See `SessionClaim.recoveryLeft`. */
  get recoveryLeft(): number | undefined {
    return this.context.recoveryLeft
  }

  /** See `SessionClaim.answeredAt`. */
  get answeredAt(): number {
    return this.context.answeredAt
  }

  takeOver(join: () => void): Promise<HandOffTail> {
    this.#running ??= this.#run(join)
    return this.#running
  }

  /**
   * Right before the server answers the client: one round trip when the tail was read without
   * the old node's seal, none when it was sealed (the old node's steps went before its seal).
   */
  confirm(): Promise<ClaimStanding> {
    if (!this.#unsealed) return Promise.resolve('taken')
    this.#unsealed = false
    return this.context.confirm()
  }

  /**
   * The client's reply to one of the old node's questions: to the old node, which asked it and
   * alone awaits it. The server calls this only for a snapshot that says the old node awaits its
   * replies, once per question; a reply that cannot be encoded (never one the client sent) is
   * dropped, as a reply was before nodes forwarded them.
   */
  forwardReply(reply: ReplyPacket | ErrorPacket): void {
    let text: string
    try {
      text = encodeText(reply)
    } catch {
      return
    }
    this.context.forward(text)
  }

  /** This node's own marker came back: the cut point. Called by the subscriber, in order. */
  marked(): void {
    this.context.markerBack(this.snapshot.id)
    this.#markerBack = true
    this.#joinNow()
    this.#wake?.()
  }

  /**
   * The old node sealed the tail. Its answer comes after the marker on this node's subscriber
   * (the old node read the marker before it sealed), unless that connection dropped meanwhile.
   */
  sealed(): void {
    this.#joinNow()
    this.#sealHeard = true
    this.#wake?.()
  }

  /**
   * `node` said that it left: if it is the old node, nothing more comes from it, and only the
   * marker is waited for (what that node read before it left is in the tail). One given up
   * already, which Redis may run late, is still waited for, within `SEAL_WAIT_MS`: the old node
   * may have read it before it left, sealed the tail at it and forgotten the session, and its
   * seal may be on its way. Should neither come, the claim is given back (see `#run`).
   */
  left(node: string): void {
    if (node !== this.context.oldNode) return
    this.#oldNodeDone = true
    this.#wake?.()
  }

  /** The adapter closes: stop waiting. */
  cancel(): void {
    this.#over = true
    this.#joinNow()
    this.#wake?.()
  }

  /**
   * The marker's PUBLISH got no answer within `requestTimeout`: Redis may still run it. While the
   * old node's seal is awaited, the wait goes on (within `SEAL_WAIT_MS`): that node seals behind
   * what it read before the marker, and a socket joined now would take that live as well. With
   * nothing to wait for from the old node, it ends now rather than wait on a stalled Redis, and
   * the claim is given back (see `#abandon`); so it does at the end of the wait should the old
   * node leave meanwhile (see `left`).
   */
  markerGivenUp(): void {
    this.#markerMayRun = true
    if (this.#oldNodeDone) this.#abandon()
  }

  /**
   * The marker's connection dropped before Redis answered it: it most likely never ran, though
   * Redis may still run it late. While the old node's seal is awaited, it is sent again once the
   * connection is back (see `markerLost`); whichever runs first is the cut, for the old node and
   * this one alike. With nothing to wait for from the old node, as `markerGivenUp`.
   */
  markerDropped(): void {
    this.#markerMayRun = true
    if (this.#oldNodeDone) this.#abandon()
    else this.markerLost()
  }

  /**
   * Redis surely did not run the marker (it refused it, or it was never sent): it is sent again,
   * while the wait lasts (at most `MARKER_TRIES` in all).
   */
  markerLost(): void {
    this.#markerLost = true
    this.#wake?.()
  }

  /**
   * A marker that may still run was given up, and nothing more comes from the old node (its tail
   * sealed before the claim, or it left): the wait ends, with no cut. Joined now, the socket would
   * take live what this node's subscriber reads before the marker, which the sealed tail may hold
   * too. The claim can be given back instead: the old node adds nothing to the tail, whether the
   * marker runs late or not, and a marker that does is one this node no longer listens for.
   */
  #abandon(): void {
    this.#abandoned = true
    this.#over = true
    this.#wake?.()
  }

  async #run(join: () => void): Promise<HandOffTail> {
    const context = this.context
    this.#join = join
    try {
      // Out of the live set, the old node may be alive all the same (its heartbeat late: a
      // stalled process, a Redis slow to answer its connection), and still sending into the
      // tail: it is asked to seal, and waited for, unless it said that it left.
      this.#oldNodeDone = context.sealed || (await context.saidGoodbye(context.oldNode))
      await this.#awaitCut()
    } catch (err) {
      context.failed(err)
    }
    // No marker ran, nor can run late: there is no cut. Joined now, the socket would take live
    // what the old node, never told of the claim, goes on putting into the tail, or miss what
    // this node's subscriber read before; the old node holds the session's handoff still. Or a
    // marker was given up with nothing more to come from the old node (see `#abandon`), or the
    // old node left after it was given up and it did not come back in time: a socket joined now
    // would take live what this node's subscriber reads late, which the tail the old node sealed
    // before it left may hold too. The claim is given back, and the client tries again, which
    // claims it once Redis answers, with its cut.
    const noCut = this.#abandoned || (this.#markerMayRun ? this.#oldNodeDone : this.#notSent)
    if (noCut && !this.#markerBack && !this.#sealHeard && !this.#joined) {
      context.giveBack()
      return { tail: [], complete: false, late: context.sealed, retry: true }
    }
    this.#joinNow()
    const read = await context.finish()
    // Gone on with an empty tail, the session would lose what its old node sent it after the
    // freeze, which Redis holds whole: the claim is given back, and the client, told to try
    // again, keeps its session, whose next claim (the tail sealed for this one, as a rule)
    // reads it. The server drops the socket joined here.
    if (read.unread) {
      context.giveBack()
      return { tail: [], complete: false, late: context.sealed, retry: true }
    }
    this.#unsealed = !read.sealed && !read.ended
    // Sealed before the claim: by the end of the old node's drain, nobody having claimed it
    // (alone: at once, no other node being live).
    const tail: HandOffTail = { tail: read.tail, complete: read.sealed && read.whole, late: context.sealed }
    if (context.sealed && context.alone) tail.alone = true
    // The session ended on the old node after the claim won (see `HandingOff.withdrawHandOff`).
    if (read.ended) tail.ended = true
    // It went on there instead: its old node gave up on the write this claim found (see UNDO).
    if (read.kept) tail.kept = true
    return tail
  }

  /** The cut is reached: the seal came, or the marker came back with no seal to wait for. */
  get #cutReached(): boolean {
    return this.#sealHeard || (this.#markerBack && this.#oldNodeDone)
  }

  /**
   * Sends the marker and waits for the cut: the marker back, and the old node's seal unless
   * nothing more comes from it; at most `SEAL_WAIT_MS` from the first marker sent. A marker
   * Redis did not run is sent again after a pause, within that wait, unless one came back since.
   */
  async #awaitCut(): Promise<void> {
    const context = this.context
    const marker: ClaimMarker = {
      k: 'claim',
      n: context.node,
      id: context.id,
      h: context.hash,
      ep: context.epoch,
    }
    let stop: (() => void) | undefined
    let ranOut = false
    // What ends the wait is read from the state after each wake: a wake during the pause below
    // ends the pause only when the wait is over (the adapter closing, the seal come), else it is
    // read after it.
    const ended = () => this.#over || ranOut || this.#cutReached
    try {
      for (let tries = 1; ; tries++) {
        let woken = this.#nextWake()
        // One that ran late came back during the pause: only the seal is waited for.
        if (!this.#markerBack) {
          this.#markerLost = false
          this.#notSent = !(await context.publish(marker, this))
          if (this.#notSent) return
          stop ??= sealWaits.start(() => {
            ranOut = true
            this.#wake?.()
          })
        }
        for (;;) {
          await woken
          if (ended()) return
          // Not run, and none back: sent again. Back (an earlier one ran late): only the seal waits.
          if (this.#markerLost && !this.#markerBack) break
          woken = this.#nextWake()
        }
        // Not run at any try (refused, as a rule): joined without a cut rather than given back.
        // A Redis that refuses the marker may refuse the take-back too, which is then dropped
        // (see `Undos`), the claim left standing until the handoff expires; and one that refuses
        // the channel for good refuses the next try's marker as well, each try giving the
        // session back until the client's recovery window ends.
        if (tries === MARKER_TRIES) return
        // Cut short by the end of the wait: an adapter closing meanwhile would wait it out.
        await new Promise<void>((resolve) => {
          const endPause = markerPauses.start(resolve)
          this.#wake = () => {
            if (!ended()) return
            endPause()
            resolve()
          }
        })
        if (ended()) return
      }
    } finally {
      this.#wake = undefined
      stop?.()
      context.unregister()
    }
  }

  /** Settles at the next wake (`#wake`: a marker back, a seal, the old node gone, the end of the wait). */
  #nextWake(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve
    })
  }

  #joinNow(): void {
    if (this.#joined || !this.#join) return
    this.#joined = true
    this.context.position(this.snapshot.id)
    if (!this.#markerBack) this.context.uncut(this.snapshot.id)
    try {
      this.#join()
    } catch (err) {
      this.context.failed(err)
    }
  }
}
