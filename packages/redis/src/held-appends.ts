// What a session is sent while its handoff waits for Redis to take commands again (see
// `HandingOff.handOff`): the server feeds the tail from the freeze on, but the handoff's entry
// begins only once Redis is back, and an append with no entry would be lost. Held here, by sid,
// then queued as the first appends of the entry once it begins; dropped when the handoff gives up
// while still waiting (the session goes on at this node, which kept every packet it numbered).

/** What one waiting handoff holds. */
export interface Held {
  texts: string[]
  bytes: number
  /** An append was refused for the bounds: the tail will have a hole. */
  gap: boolean
}

export class HeldAppends {
  readonly #bySid = new Map<string, Held>()
  #count = 0
  #bytes = 0

  constructor(
    /**
     * Whether `count` more appends of `bytes` in all fit beside what the node queues for its
     * tails already: the held appends count against the same bounds (see `TailWrites`).
     */
    private readonly fits: (count: number, bytes: number) => boolean,
  ) {}

  /** Appends held, every session's. */
  get size(): number {
    return this.#count
  }

  /** Bytes of packet text (UTF-8) held, every session's. */
  get bytes(): number {
    return this.#bytes
  }

  /** `sid`'s handoff waits for Redis: its appends are held from now on. */
  hold(sid: string): void {
    this.release(sid)
    this.#bySid.set(sid, { texts: [], bytes: 0, gap: false })
  }

  /** Whether `sid`'s appends are held now. */
  holds(sid: string): boolean {
    return this.#bySid.has(sid)
  }

  /**
   * Holds `text` for `sid`. False, and the hole noted, when it does not fit the bounds: the
   * caller warns as for any append dropped.
   */
  append(sid: string, text: string): boolean {
    const held = this.#bySid.get(sid)
    if (!held) return false
    const bytes = Buffer.byteLength(text)
    if (!this.fits(this.#count + 1, this.#bytes + bytes)) {
      held.gap = true
      return false
    }
    held.texts.push(text)
    held.bytes += bytes
    this.#count++
    this.#bytes += bytes
    return true
  }

  /** Stops holding `sid`'s appends; returns what was held, for the entry that begins now. */
  release(sid: string): Held | undefined {
    const held = this.#bySid.get(sid)
    if (!held) return undefined
    this.#bySid.delete(sid)
    this.#count -= held.texts.length
    this.#bytes -= held.bytes
    return held
  }
}
