import type { WebSocket } from 'ws'
import { WaitThenCut } from '../wait-then-cut.js'

/**
 * The WebSockets whose closing handshake Parley began (its close frame went) and whose client
 * has not answered yet, and those whose HELLO still waits on a lookup (`lookingUp`): each of
 * Parley's WebSockets is here alone at close, whoever tells it why it ends.
 *
 * ws waits 30 s for the client's close frame before it cuts the connection, and the HTTP
 * server's close waits for every connection, upgraded ones included: a client that never
 * answers (a dead link, a peer that stopped reading) would hold `app.close()` that long. At
 * shutdown, those still waiting are given a moment (`closeAll`), then cut. While the server
 * runs, ws's own bound stands: such a connection costs nothing but its socket. Parley's own
 * WebSockets and the client side of its relays to other nodes are kept here.
 */
export class ClosingWebSockets {
  readonly #waiting = new WaitThenCut<WebSocket>((ws) => ws.terminate())

  /** `ws` sent its close frame (or was already closed: then nothing waits). */
  closing(ws: WebSocket): void {
    if (ws.readyState === ws.CLOSED || this.#waiting.has(ws)) return
    this.#waiting.add(ws)
    // Its client answered, or the connection went.
    ws.once('close', () => this.#waiting.over(ws))
  }

  /**
   * The server closed while `ws`'s HELLO waited on `lookup` (where its session lives, see
   * `WebSocketHandshakes`): once that is over, its handshake tells it why it ends and closes it.
   * `closeAll` waits for the lookup, `limitMs` at the most (its own bound: an adapter's call that
   * never settles holds no close), then for its closing handshake, as for any other.
   */
  lookingUp(ws: WebSocket, lookup: Promise<unknown>, limitMs: number): void {
    this.#waiting.after(lookup, limitMs)
    this.closing(ws)
  }

  /**
   * Waits for the lookups under way (`lookingUp`), then for every closing handshake under way,
   * `limitMs` at the most, then cuts the connections whose client has still not answered; all of
   * it within `roomMs`, the time the close has left.
   */
  closeAll(limitMs: number, roomMs = limitMs): Promise<void> {
    return this.#waiting.closeAll(limitMs, roomMs)
  }
}
