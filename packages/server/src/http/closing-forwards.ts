import type { ServerResponse } from 'node:http'
import { WaitThenCut } from '../wait-then-cut.js'
import { clientLeft } from './client-left.js'

/**
 * Settles once `res` has closed (at once when it has). Over HTTP/2 the response has no `closed`
 * and its `close` came with its stream's: only the stream says it is over (see `clientLeft`).
 */
export function closeOf(res: ServerResponse): Promise<void> {
  if (res.closed || clientLeft(res)) return Promise.resolve()
  return new Promise((resolve) => res.once('close', () => resolve()))
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

  /** `forward` is ending. */
  add(forward: EndingForward): void {
    this.#ending.add(forward)
    void forward.closed.then(() => this.#ending.over(forward))
  }

  /**
   * The request answered on `res` was looking its session's owner up (`lookup`) when this node
   * closed: it can no longer be sent on, and is answered here once the lookup is over (see
   * `HttpForwards`). `closeAll` waits for the lookup, `limitMs` at the most (its own bound: an
   * adapter's call that never settles holds no close), then for that answer; cut, the request
   * would fail its client's transport. (A WebSocket's HELLO so caught is its handshake's: see
   * `ClosingWebSockets.lookingUp`.)
   */
  lookingUp(res: ServerResponse, lookup: Promise<unknown>, limitMs: number): void {
    this.#ending.after(lookup, limitMs)
    this.add({ closed: closeOf(res), cut: () => res.destroy() })
  }

  /**
   * `closeAll` waits for `first` (`limitMs` at the most) before its moment, so that what comes of
   * it meanwhile is waited for too: the goodbyes that cross the CLOSE 'server handoff' of the
   * relays this node ends, which come before the relays' ends (see `Forwarder.close`).
   */
  waitFor(first: Promise<unknown>, limitMs: number): void {
    this.#ending.after(first, limitMs)
  }

  /**
   * Waits for the lookups under way (`lookingUp`, each within its own bound), then
   * for every forward that is ending, `limitMs` at the most, then cuts those still going; all of
   * it within `roomMs`, the time the close has left.
   */
  closeAll(limitMs: number, roomMs = limitMs): Promise<void> {
    return this.#ending.closeAll(limitMs, roomMs)
  }
}
