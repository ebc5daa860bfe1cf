import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { Timed, TimerQueue } from '../timer-queue.js'

/**
 * Ended responses (a polling answer, an SSE stream that ended or was replaced) that their client
 * has not read to the end. Node holds what the kernel would not take until the connection
 * closes, and a client that neither reads nor closes decides when that is: the session no longer
 * counts those bytes, so a client that had them sent again (a resume, a GET with an old `ack`)
 * and never read them could make the server hold any number of such answers. Each one is cut
 * once nothing of it moved for `stallMs` ms (the server's `pingTimeout`, as for a POST body that
 * stops arriving); a client that reads, however slowly, gets it all.
 */
export class UnreadAnswers {
  readonly #queue: TimerQueue<Unread>

  constructor(stallMs: number) {
    this.#queue = new TimerQueue(stallMs, (entry) => entry.check(this.#queue))
  }

  /** `res` has just ended: watched until all of it is handed to the network, or it is cut. */
  watch(res: ServerResponse): void {
    // Most answers are in the kernel's hands at once. A response with no connection of its own
    // (a request routed from another node through `inject`) has no bytes of a client to count.
    if (res.writableFinished || res.destroyed || !(res.socket instanceof Socket)) return
    if (res.writableLength === 0) return
    const entry = new Unread(res)
    this.#queue.add(entry)
    res.once('close', () => entry.leaveQueue())
  }
}

/** One ended response still being written, with how much of it was left at the last look. */
class Unread extends Timed {
  #left: number

  constructor(readonly res: ServerResponse) {
    super()
    this.#left = res.writableLength
  }

  /** Due: cut the response if nothing of it moved since the last look, else look again later. */
  check(queue: TimerQueue<Unread>): void {
    const res = this.res
    if (res.writableFinished || res.destroyed) return
    const left = res.writableLength
    if (left === 0) return
    if (left < this.#left) {
      this.#left = left
      queue.add(this)
    } else res.destroy()
  }
}

/** The watch each server's transports share (one queue of deadlines), by its options. */
const watches = new WeakMap<{ readonly pingTimeout: number }, UnreadAnswers>()

/** The `UnreadAnswers` of the server whose options are `options`, made on first use. */
export function unreadAnswersOf(options: { readonly pingTimeout: number }): UnreadAnswers {
  let watch = watches.get(options)
  if (!watch) {
    watch = new UnreadAnswers(options.pingTimeout)
    watches.set(options, watch)
  }
  return watch
}
