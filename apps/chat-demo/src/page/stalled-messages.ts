/**
 * Messages the server could not store yet (refused with STORE_UNAVAILABLE: the chat's Redis is
 * away). The server sends nothing it cannot store, so that nothing misses the history and a
 * resend is always recognised; the page keeps them here and sends them again by itself, one at
 * a time and in the order they were written, each once the one before was answered. (Sent
 * together, the store could come back between two of them, and the later one be stored first.)
 */
export class StalledMessages {
  readonly #queue: Array<() => void> = []
  #timer: ReturnType<typeof setTimeout> | undefined
  /** One of them is on its way again: the rest wait for its answer. */
  #sending = false

  constructor(private readonly retryMs: number) {}

  /** True while messages wait here: a new one must queue behind them, or it would pass them. */
  get busy(): boolean {
    return this.#sending || this.#queue.length > 0
  }

  /**
   * Keeps `send` (a message refused, or written while others wait), to call in turn. `again`: it
   * is the one that was on its way again and was refused once more; it stays first.
   */
  wait(send: () => void, again = false): void {
    if (again) {
      this.#sending = false
      this.#queue.unshift(send)
    } else this.#queue.push(send)
    if (this.#timer !== undefined || this.#sending) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.next()
    }, this.retryMs)
  }

  /** The one on its way again was answered (taken, or refused for another reason): the next goes. */
  next(): void {
    const send = this.#queue.shift()
    this.#sending = send !== undefined
    send?.()
  }
}
