/**
 * The sessions this node is claiming or taking over from another node, from the start of their
 * claim to the end of their takeover, with the relayed goodbyes that came for them meanwhile
 * (see `ParleyServer.relayedGoodbye`). Such a goodbye crossed the session's move here: the node
 * it left sent it on, and the owner record may name this node before its takeover is done. Ended
 * at once, the session would be taken over all the same, its `restored` listeners not there yet;
 * it ends when its takeover is over instead (once the last of the resumes that claim it is).
 */
export class GoodbyesOnArrival {
  /** By sid: how many resumes claim it now, and whether a goodbye came for it. */
  readonly #arriving = new Map<string, { count: number; goodbye: boolean }>()

  /**
   * A resume begins to claim `sid`. The function returned is called once its takeover is over
   * (won, lost or given back): true when a goodbye came for the session meanwhile and no other
   * resume still takes it over.
   */
  begin(sid: string): () => boolean {
    const entry = this.#arriving.get(sid) ?? { count: 0, goodbye: false }
    entry.count++
    this.#arriving.set(sid, entry)
    let over = false
    return () => {
      if (over) return false
      over = true
      entry.count--
      if (entry.count > 0) return false
      this.#arriving.delete(sid)
      return entry.goodbye
    }
  }

  /** Keeps a goodbye for `sid` when it is arriving here; false when it is not. */
  keep(sid: string): boolean {
    const entry = this.#arriving.get(sid)
    if (!entry) return false
    entry.goodbye = true
    return true
  }
}
