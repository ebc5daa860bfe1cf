import type { ServerResponse } from 'node:http'
import type { WebSocket } from 'ws'
import { WaitThenCut } from '../wait-then-cut.js'

/**
 * What a request whose session's owner is looked up is answered on: an SSE or polling request's
 * response, or the WebSocket whose HELLO it is.
 */
export type AnsweredOn = ServerResponse | WebSocket

/** Settles once `on` has closed (at once when it has). */
export function closeOf(on: AnsweredOn): Promise<void> {
  if (isWebSocket(on) ? on.readyState === on.CLOSED : on.closed) return Promise.resolve()
  return new Promise((resolve) => on.once('close', () => resolve()))
}

/**
 * Told apart by what only ws's WebSocket has: the application's @fastify/websocket may bring a
 * copy of ws of its own, whose class is not Parley's.
 */
export function isWebSocket(on: AnsweredOn): on is WebSocket {
  return 'terminate' in on
}

/** A request this node forwards to another node, ending as this node closes (see `Forwarder.close`). */
export interface EndingForward {
  /** Settles once the request is over, both to the client and to the other node. */
  readonly closed: Promise<void>
  /** Ends it at once: the client's connection and the one to the other node are cut. */
  cut(): void
}

/**
 * The requests a closing node forwards to the nodes that own their sessions, while they end:
 * an event stream or a held poll is told CLOSE 'server handoff', a POST or an answer under way
 * goes on to its end. The HTTP server's close would cut them (and wait for them, with Fastify's
 * `forceCloseConnections` off): at shutdown those still going are given a moment (`closeAll`),
 * then cut (see `WaitThenCut`, which `ClosingWebSockets` uses too), but a POST its owner has not
 * answered, which is told to try again (see `HttpForwards`). So are those still looking
 * their session's owner up as the node closes (see `lookingUp`), once their lookup is over.
 */
export class ClosingForwards {
  readonly #ending = new WaitThenCut<EndingForward>((forward) => forward.cut())
  /** The owner lookups of requests that were still under way when this node closed. */
  readonly #lookups = new Set<Promise<unknown>>()

  /** `forward` is ending. */
  add(forward: EndingForward): void {
    this.#ending.add(forward)
    void forward.closed.then(() => this.#ending.over(forward))
  }

  /**
   * The request answered on `on` was looking its session's owner up (`lookup`) when this node
   * closed: it can no longer be sent on, and is answered here once the lookup is over (see
   * `HttpForwards`; a WebSocket's HELLO, see `WebSocketHandshakes`). `closeAll` waits for the
   * lookup, `limitMs` at the most (its own bound: an adapter's call that never settles holds no
   * close), then for that answer; cut, the request would fail its client's transport.
   */
  lookingUp(on: AnsweredOn, lookup: Promise<unknown>, limitMs: number): void {
    const settled = settledWithin(lookup, limitMs)
    this.#lookups.add(settled)
    void settled.then(() => this.#lookups.delete(settled))
    this.add({
      closed: closeOf(on),
      cut: () => (isWebSocket(on) ? on.terminate() : on.destroy()),
    })
  }

  /**
   * Waits for the lookups under way (`lookingUp`, each within its own bound), then
   * for every forward that is ending, `limitMs` at the most, then cuts those still going; all of
   * it within `roomMs`, the time the close has left.
   */
  async closeAll(limitMs: number, roomMs = limitMs): Promise<void> {
    const start = Date.now()
    if (this.#lookups.size > 0) await settledWithin(Promise.all(this.#lookups), roomMs)
    return this.#ending.closeAll(Math.min(limitMs, roomMs - (Date.now() - start)))
  }
}

/** Node's longest timer: a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Resolves once `promise` has settled, either way, or `ms` have passed (never, for an infinite
 * `ms`): what it settles with is its owner's to handle.
 */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  const settled = promise.then(
    () => {},
    () => {},
  )
  if (!Number.isFinite(ms)) return settled
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    settled,
    new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(Math.max(0, ms), MAX_TIMER_MS)))),
  ])
  clearTimeout(timer)
}
