import type { WebSocket, WebSocketServer } from 'ws'

/** A `close` listener, as ws's `listeners()` gives it. */
type Listener = (...args: unknown[]) => void

/**
 * Takes Parley's WebSockets out of ws's tracking.
 *
 * ws keeps every WebSocket of its server in `clients`, with a `close` listener on each (a
 * closure; with the Set's entry, about 200 bytes per connection), so that @fastify/websocket
 * can close them all at shutdown. Parley closes its own WebSockets itself: every session ends
 * with CLOSE 'server handoff' (its drain) or 'server shutdown', and WebSockets still waiting for
 * their HELLO and relays to other nodes are closed too. Where Parley registered
 * @fastify/websocket, that registration's close hook runs after Parley's; where the application
 * did, before Parley, it runs before Parley's drain, and would close Parley's WebSockets without
 * a word (their clients' transports failing), were they still tracked. The application's own
 * WebSocket routes keep ws's tracking. One whose `connection` listener, added before this one,
 * put a `close` listener of its own on Parley's WebSockets keeps them tracked (see `release`).
 */
export class ClientTracking {
  readonly #wss: WebSocketServer
  /** The WebSocket ws announced last, and the listener ws added to it to track it. */
  #last: { ws: WebSocket; untrack: Listener } | undefined

  /**
   * Made right after @fastify/websocket is registered (where Parley registers it), so that this
   * listener is the first: when it runs, ws's own `close` listener is the only one on the
   * WebSocket. Should another be there (an application's listener came first), ws's cannot be
   * told apart from it, and the WebSocket stays tracked.
   */
  constructor(wss: WebSocketServer) {
    this.#wss = wss
    wss.on('connection', (ws: WebSocket) => {
      const listeners = ws.listeners('close') as Listener[]
      this.#last = listeners.length === 1 ? { ws, untrack: listeners[0]! } : undefined
      // @fastify/websocket hands the WebSocket to its route right after this event, in the
      // same tick; past that, nothing is held.
      queueMicrotask(() => {
        if (this.#last?.ws === ws) this.#last = undefined
      })
    })
  }

  /** `ws`, just opened on Parley's route, leaves ws's tracking. */
  release(ws: WebSocket): void {
    const last = this.#last
    this.#last = undefined
    if (last?.ws !== ws || !this.#wss.clients?.delete(ws)) return
    ws.removeListener('close', last.untrack)
  }
}
