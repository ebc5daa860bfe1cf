/**
 * A first-in, first-out queue whose take costs the same however many wait: an array read from a
 * head index, the taken front dropped once it is half of the array. `Array.prototype.shift`
 * moves every element left, and at `MAX_QUEUED_COMMANDS` (10 000) commands waiting their turn,
 * each answer that lets one go would move the other 9 999.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  /** The oldest item, taken out; undefined when none waits. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    // Not held for the garbage collector: a taken command's promise and its reply.
    this.#items[this.#head] = undefined
    this.#head++
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }
}
