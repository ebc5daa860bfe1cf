/** A message waiting for the page to get to its room. */
interface Held {
  room: string
  /** Draws it at the end of the list again and sends it. */
  send: () => void
  /** Marks it not sent, saying why. */
  fail: (reason: string) => void
}

/**
 * Messages written while the page is on its way to another room: the person clicked it and the
 * server has not answered yet. Sent at once, they would name the room the page is leaving and
 * land there; they wait here instead, each for the room it was written for, and go, in the order
 * they were written, once the page is in that room. If it never gets there (the server refused
 * the room), they are not sent at all, and say why.
 */
export class HeldMessages {
  readonly #held: Held[] = []

  /** How many wait: they go once connected too, if the connection is what they wait for. */
  get size(): number {
    return this.#held.length
  }

  hold(message: Held): void {
    this.#held.push(message)
  }

  /** The page is in `room` now: what was written for it goes. */
  arrived(room: string): void {
    for (const message of this.#take((m) => m.room === room)) message.send()
  }

  /** No change of room is under way any more: what waits for another room will not get there. */
  settled(reason: string): void {
    for (const message of this.#take(() => true)) message.fail(reason)
  }

  #take(which: (message: Held) => boolean): Held[] {
    const taken = this.#held.filter(which)
    for (const message of taken) this.#held.splice(this.#held.indexOf(message), 1)
    return taken
  }
}
