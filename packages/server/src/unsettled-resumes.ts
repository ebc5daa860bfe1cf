/** The most sids remembered at once; past it, the oldest streak is forgotten (and starts over). */
export const MAX_UNSETTLED_RESUMES = 10_000

/** One sid's resumes told to try again: when the first and the last of them came. */
interface Streak {
  first: number
  last: number
}

/**
 * Resumes the adapter could not settle (`Adapter.claimSession` resolved `'retry'`, or rejected:
 * the store was away, refused the claim, or lost its answer; or `'elsewhere'`: another node is
 * taking the session over; or nothing was left to claim for a resume that saw the session leave
 * its node, or for one that saw it nowhere while the store names a live node as its owner),
 * told to try again, bounded by the recovery window. The session
 * such a client keeps lives on its owner node for at most that window without its client: once
 * its tries have been turned away that long, it cannot be there any more, and the next try gets
 * a new session, as for an unknown one. So a store that stays away does not keep a client whose
 * session is gone (its node died, it expired) from starting over for good. A streak ends when no
 * try of it came for a whole window: the client reached its session meanwhile, or gave up.
 */
export class UnsettledResumes {
  /** Oldest streak first (re-inserted at each try). */
  readonly #streaks = new Map<string, Streak>()

  constructor(
    /** The recovery window, in ms: 0 (recovery off) tells no one to try again. */
    private readonly window: number,
    private readonly max = MAX_UNSETTLED_RESUMES,
  ) {}

  /**
   * A resume of `sid` could not be settled now: true to tell the client to try again, false
   * once its tries have been turned away for the whole recovery window (its session is gone).
   */
  tryAgain(sid: string, now = performance.now()): boolean {
    this.#prune(now)
    const streak = this.#streaks.get(sid) ?? { first: now, last: now }
    this.#streaks.delete(sid)
    if (now - streak.first >= this.window) return false
    streak.last = now
    this.#streaks.set(sid, streak)
    if (this.#streaks.size > this.max) this.#streaks.delete(this.#streaks.keys().next().value!)
    return true
  }

  /** A resume of `sid` was settled (claimed, or found nowhere): its streak ends. */
  settled(sid: string): void {
    this.#streaks.delete(sid)
  }

  /** Forgets the streaks whose last try is a window old (oldest first, so it stops early). */
  #prune(now: number): void {
    for (const [sid, streak] of this.#streaks) {
      if (now - streak.last < this.window) return
      this.#streaks.delete(sid)
    }
  }
}
