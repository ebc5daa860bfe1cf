// The take-back of a handoff write that got no answer (see `HandingOff.handOff`): it may
// have run, and a claim may have won it, so its UNDO goes once the server says what became of
// the session, or after requestTimeout all the same. Apart from the old node's side of the
// handoff (handing-off.ts), which only decides when a write is given up on, so that what the
// UNDO tells a claimer, and what this node keeps, read in one place.
import type { LocalSocket } from '@parley/server'
import type { HandedOff } from './handoff.js'
import type { HandoffParts } from './handoff-parts.js'

/**
 * What a `WriteTakeBack` acts on: the adapter's parts for both sides of a handoff (see
 * handoff-parts.ts), of which it is one. `closed`: the adapter closed, and a word awaited no
 * longer sends the UNDO by its timer (`close` does).
 */
export type WriteTakeBackParts = Pick<
  HandoffParts,
  'handoffs' | 'sockets' | 'cut' | 'sessions' | 'claimers' | 'warnings' | 'requestTimeout' | 'closed'
>

/** Takes back the handoff writes this node gave up on. */
export class WriteTakeBack {
  readonly #parts: WriteTakeBackParts

  constructor(parts: WriteTakeBackParts) {
    this.#parts = parts
  }

  /**
   * The server gave up on a write still unanswered: its session went on here (a move that took
   * too long: the server still holds it) or ended. Not after its answer, as a withdraw of a
   * stored snapshot: from the moment the write runs until then, another node could claim a
   * snapshot older than the session. The UNDO goes now, right behind the write on its connection
   * (and again on the next one should that drop, see `Commands.undo`): a write that has not run
   * by then never will, and a claim that Redis ran in between is revoked, its claimer told that
   * the session stayed here (see UNDO). The entry answers that claim's marker with a seal, which
   * comes behind the UNDO, until the snapshot's ttl.
   */
  giveUp(entry: HandedOff): Promise<void> {
    if (entry.givenUp && !entry.undoWaits) return entry.undone ?? Promise.resolve()
    clearTimeout(entry.timer)
    // A claim of the write that won meanwhile is revoked by the UNDO: its claimer holds no
    // session of this node's, and a reply it sends back must not settle a question here.
    if (entry.claimer !== undefined) this.#parts.claimers.forget(entry.id, entry.claimer)
    const kept = this.#parts.sockets.hasSession(entry.sid)
    // The copy that goes on here, should a claim of the write be confirmed before the UNDO runs.
    const copy = kept ? this.#parts.sockets.get(entry.id) : undefined
    const undone = this.#parts.handoffs.undo(entry, kept ? 'kept' : 'ended', () =>
      this.#takenOverMeanwhile(entry, copy),
    )
    if (kept) {
      // As for a write that failed (see `HandingOff.handOff`): the socket and its record are this node's.
      this.#parts.cut.release(entry.id)
      this.#parts.sessions.keptBack(entry.sid)
    } else {
      this.#parts.cut.unposition(entry.id)
    }
    entry.timer = setTimeout(() => this.#parts.handoffs.forget(entry), entry.ttl)
    entry.timer.unref()
    return undone
  }

  /**
   * The write got no answer within requestTimeout: it may have run, and a claim may win it before
   * its UNDO, which tells that claim what became of the session here (see UNDO). The server
   * decides that once `handOff` resolves false (`HandingOff.handOff`), and says so: a drain ends
   * the session, a move thaws it, and either calls `withdrawHandOff`
   * (`HandingOff.withdrawHandOff`), which sends the UNDO (`giveUp`). Told `kept` before that, a
   * claim of a session the drain then ends would send its client to try again, only to find it
   * ended one try later. Should that word not come within requestTimeout, the UNDO goes all the
   * same. Meanwhile appends are refused, and a claim's marker is answered with a seal that goes
   * behind the UNDO.
   */
  awaitWord(entry: HandedOff): void {
    this.#parts.handoffs.holdUndo(entry)
    entry.timer = setTimeout(() => {
      if (!this.#parts.closed()) void this.giveUp(entry)
    }, this.#parts.requestTimeout)
    entry.timer.unref()
  }

  /**
   * The take-back of a write given up on came after a claim of that write was confirmed (its
   * claimer read the tail without this node's seal, and answered its client before the take-back
   * ran): the claimer holds the session, and its client is there. The copy this node kept, the
   * very one (not a later one of the same session), ends as a moved session does
   * (`LocalSockets.takenOver`); a server without that hook keeps it until its recovery window ends.
   */
  #takenOverMeanwhile(entry: HandedOff, copy: LocalSocket | undefined): void {
    // That claimer holds the session after all: heard again, as before the give-up, when its
    // marker was read first.
    if (entry.claimer !== undefined) this.#parts.claimers.record(entry.id, entry.claimer, entry.ttl)
    const ends =
      copy !== undefined &&
      this.#parts.sockets.takenOver !== undefined &&
      this.#parts.sockets.get(entry.id) === copy
    this.#parts.warnings.warn(
      'handoff-taken',
      ends
        ? 'a handoff write this node gave up on was claimed, and its session taken over by another node, before its take-back reached Redis; the copy this node kept ends here (its client is with the other node)'
        : 'a handoff write this node gave up on was claimed, and its session taken over by another node, before its take-back reached Redis; should this node have kept the session, both nodes hold it until this copy ends (its client is with the other node)',
    )
    if (!ends) return
    try {
      this.#parts.sockets.takenOver?.(entry.sid)
    } catch (err) {
      this.#parts.warnings.warn(
        'handoff-taken',
        'the server failed to end the copy of a session taken over elsewhere',
        { err },
      )
    }
  }
}
