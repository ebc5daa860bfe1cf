/** How often the watch reads the live set: Redis' view of it changes at each heartbeat (2 s) at most. */
export const WATCH_EVERY_MS = 1000

/**
 * Calls `changed` whenever the other live nodes of the cluster are not the ones of the last read:
 * a node left (it closed and said so, or its heartbeats lapsed: killed, crashed, cut off from
 * Redis) or came (a new one, or one cut off that is back). `read` gives their ids
 * (`RedisAdapter.liveNodes`: the adapter's own view, no round trip), read every `every` ms.
 *
 * Why the chat needs it: `fetchSockets()` makes a room's people list from the sockets of the live
 * nodes, so a list is only as fresh as the last change someone announced. A node that goes
 * without a word takes its sessions' people off every list made from then on, but nobody makes
 * one: a node killed in the middle of its drain, whose handed-off sessions nobody will claim,
 * would leave those people listed on every page until the room next changed. The nodes that
 * stay announce instead, each the rooms of its own people, once the live set shows the change.
 */
export class LiveNodesWatch {
  #seen: string
  readonly #timer: ReturnType<typeof setInterval>

  constructor(read: () => readonly string[], changed: () => void, every = WATCH_EVERY_MS) {
    this.#seen = idsOf(read())
    this.#timer = setInterval(() => {
      const now = idsOf(read())
      if (now === this.#seen) return
      this.#seen = now
      changed()
    }, every)
    // The watch never keeps a process alive: the app's close stops it.
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}

/** The set of ids, as one comparable text (order does not matter). */
function idsOf(ids: readonly string[]): string {
  return JSON.stringify([...ids].sort())
}
