import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'

const LF = 0x0a

/**
 * The owner's event stream: its answer over the network (an `IncomingMessage`, whose `complete`
 * says the whole body came), or the body of an answer through the adapter's `routeRequest`.
 */
export type OwnerStream = Readable & { readonly complete?: boolean }

/**
 * An event stream this node relays from the node that owns its session to the client, as it
 * comes, until either side ends it; and, when this node closes, ended the way a drain ends a
 * stream of its own (`end`): with one last event, the CLOSE 'server handoff' that tells the
 * client to resume elsewhere. Cut instead, the client would take the loss for a broken
 * transport, resume at once, and, should that one try fail (the balancer sending it to this
 * node again), tell its application the session is down while it lives on, whole, on its node.
 *
 * The bytes go on as they are: the relay only watches where an event ends (a blank line: the
 * owner writes `data: <packet>\n\n`), so that the last event follows a whole one. The event under
 * way when `end` is called goes on to its end first; the owner writes each one whole, so its rest
 * is already on its way.
 */
export class RelayedStream {
  readonly #answer: OwnerStream
  readonly #res: ServerResponse
  readonly #cut: () => void
  /** How many line feeds end what went to the client, up to 2: 2 ends an event. */
  #feeds = 0
  /** The last event, once `end` asked for it, until it is written. */
  #last: string | undefined
  #over = false

  /**
   * Relays `answer` (the owner's event stream, its head written already) to `res`. `cut` ends
   * both sides at once: the owner broke off, or the client stopped reading (see `Forwarder`).
   */
  constructor(answer: OwnerStream, res: ServerResponse, cut: () => void) {
    this.#answer = answer
    this.#res = res
    this.#cut = cut
    answer.on('data', (chunk: Buffer) => this.#data(chunk))
    res.on('drain', () => answer.resume())
    answer.once('end', () => {
      if (this.#over) return
      this.#over = true
      res.end()
    })
    // The owner broke off (an error, or a close before the end): the client's stream breaks
    // too, as a direct connection to the owner would have.
    answer.on('error', () => {})
    answer.once('close', () => {
      if (!this.#over && this.#brokenOff()) this.#stop()
    })
    // Broken off before it came here (an owner in the same process whose serving failed inside
    // it once its head had gone, see `serveRouted`): its 'close' went by unheard, and the
    // client's stream would stay open, silent, until its heartbeat gave up on it.
    if (answer.destroyed && this.#brokenOff()) this.#stop()
  }

  /** The owner's stream closed before its end: its client's stream is cut, not ended. */
  #brokenOff(): boolean {
    return !(this.#answer.complete ?? this.#answer.readableEnded)
  }

  /**
   * Ends the stream with the event `data` (a packet's text) once the event under way has gone
   * whole; the owner's request is then let go, which it takes for its client gone.
   */
  end(data: string): void {
    if (this.#over) return
    this.#last = `data: ${data}\n\n`
    if (this.#feeds >= 2) this.#finish()
    // Paused for a client that reads slowly: the rest of the event has to come all the same.
    else this.#answer.resume()
  }

  #data(chunk: Buffer): void {
    if (this.#over) return
    if (this.#last !== undefined) {
      const end = eventEnd(chunk, this.#feeds)
      if (end >= 0) {
        this.#res.write(chunk.subarray(0, end))
        this.#finish()
        return
      }
    }
    if (!this.#res.write(chunk) && this.#last === undefined) this.#answer.pause()
    this.#feeds = feedsAfter(chunk, this.#feeds)
  }

  #finish(): void {
    this.#over = true
    this.#res.end(this.#last)
    this.#answer.destroy()
  }

  #stop(): void {
    this.#over = true
    this.#cut()
  }
}

/** The line feeds that end what went out once `chunk` followed `before` of them (at most 2). */
function feedsAfter(chunk: Buffer, before: number): number {
  let feeds = 0
  while (feeds < 2 && feeds < chunk.length && chunk[chunk.length - 1 - feeds] === LF) feeds++
  return feeds === chunk.length ? Math.min(2, before + feeds) : feeds
}

/**
 * Where the first event that ends in `chunk` ends (just past its blank line), `before` line feeds
 * having ended what went out before it; -1 when none ends in it.
 */
function eventEnd(chunk: Buffer, before: number): number {
  if (before === 1 && chunk[0] === LF) return 1
  for (let i = chunk.indexOf(LF); i >= 0 && i < chunk.length - 1; i = chunk.indexOf(LF, i + 1)) {
    if (chunk[i + 1] === LF) return i + 2
  }
  return -1
}
