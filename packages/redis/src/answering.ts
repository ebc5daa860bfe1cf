/**
 * The replies this node still makes to other nodes' broadcasts with acks: for each, how many
 * its sockets made so far, until the last one. The asking node compares that number with the
 * replies it got (see `BroadcastReplies.replied`): Redis delivers pub/sub messages at most once,
 * and a reply it lost would otherwise be waited for until this node leaves, when the asker set
 * no timeout.
 */
export class Answering {
  /** By `<asking node> <request id>`. */
  readonly #open = new Map<string, { made: number; count: number | undefined }>()

  /**
   * Starts counting the replies to request `id` of `node`; the returned calls go with the
   * local broadcast's `expect` and with each reply, right before it is published.
   */
  start(node: string, id: string): { counted(count: number): void; made(): void } {
    const key = `${node} ${id}`
    const entry: { made: number; count: number | undefined } = { made: 0, count: undefined }
    this.#open.set(key, entry)
    const settle = () => {
      if (entry.count !== undefined && entry.made >= entry.count) this.#open.delete(key)
    }
    return {
      counted: (count) => {
        entry.count = count
        settle()
      },
      made: () => {
        entry.made++
        settle()
      },
    }
  }

  /**
   * How many replies to request `id` of `node` this node made; `'all'` once it owes none (the
   * last one made, or it never counted that broadcast).
   */
  made(node: string, id: string): number | 'all' {
    return this.#open.get(`${node} ${id}`)?.made ?? 'all'
  }
}
