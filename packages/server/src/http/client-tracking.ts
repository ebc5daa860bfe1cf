import type { WebSocket, WebSocketServer } from 'ws'

/** A `close` listener, as ws's `listeners()` gives it. */
type Listener = (...args: unknown[]) => void

/**
 * Takes Parley's WebSockets out of ws's tracking, where Parley registered @fastify/websocket.
 *
 * ws keeps every WebSocket of its server in `clients`, with a `close` listener on each (a
 * closure; with the Set's entry, about 200 bytes per connection), so that @fastify/websocket
 * can close them all at shutdown. Parley closes its own WebSockets itself, before that: every
 * session ends with CLOSE 'server shutdown', and WebSockets still waiting for their HELLO and
 * relays to other nodes are closed too. The application's own WebSocket routes keep ws's
 * tracking.
 */
export class ClientTracking {
  readonly #wss: WebSocketServer
  /** The WebSocket ws announced last, and the listener ws added to it to track it. */
  #last: { ws: WebSocket; untrack: Listener } | undefined

  /**
   * Made right after @fastify/websocket is registered, so that this listener is the first: when
   * it runs, ws's own `close` listener is the only one on the WebSocket.
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
