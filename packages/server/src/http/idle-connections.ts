import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import type { Socket } from 'node:net'

/**
 * Lets a closing server let go of HTTP connections that no request needs any more.
 *
 * Node's `server.close()` (which Fastify calls) ends the keep-alive connections idle at that
 * moment, but not a connection that was opened and never used, nor one whose request was still
 * running (it stays open for keep-alive after its response). HTTP clients open spare connections
 * all the time: browsers preconnect, and undici opens one when a request queues behind a busy
 * one, which SSE and polling clients do on every disconnect. Each would hold `app.close()` open
 * until Node's timeouts (about 70 s). From `startClosing()` on, connections without a request
 * are destroyed, the others are ended as soon as their last response is done, and new ones are
 * refused. Upgraded connections (WebSocket) are left to their own shutdown.
 */
export class IdleConnections {
  /** Open plain-HTTP connections, with the number of requests each is serving. */
  readonly #active = new Map<Socket, number>()
  /**
   * Upgrade requests that came while the node drained. Fastify answers them 503 itself (its
   * `return503OnClosing`) on a socket it then leaves open; they end with the drain.
   */
  readonly #lateUpgrades = new Set<Socket>()
  #draining = false
  #closing = false

  /** Does nothing for servers other than HTTP/1.1 ones (HTTP/2 sessions close differently). */
  constructor(server: unknown) {
    if (!(server instanceof HttpServer || server instanceof HttpsServer)) return
    // Over TLS a request's socket is the TLS socket, which 'secureConnection' hands out.
    const accepted = server instanceof HttpsServer ? 'secureConnection' : 'connection'
    // One listener for every connection (an emitter calls it with the socket as `this`), and
    // taken off at an upgrade: a WebSocket would otherwise carry it, and a `once` wrapper
    // around a closure, for as long as it lives (about 400 bytes per connection).
    const active = this.#active
    const idle = this
    const forget = function (this: Socket) {
      active.delete(this)
    }
    server.on(accepted, (socket: Socket) => {
      if (this.#closing) {
        socket.destroy()
        return
      }
      active.set(socket, 0)
      socket.on('close', forget)
    })
    // Likewise one listener for every response (`this` is the response): a closure per request
    // would stay on each open response, an SSE stream or a held poll, for as long as it lasts.
    const responseClosed = function (this: ServerResponse) {
      idle.#responseClosed(this.req.socket)
    }
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const count = active.get(req.socket)
      if (count === undefined) return
      active.set(req.socket, count + 1)
      res.on('close', responseClosed)
    })
    server.on('upgrade', (req: IncomingMessage) => {
      const socket = req.socket
      active.delete(socket)
      socket.off('close', forget)
      if (!this.#draining) return
      this.#lateUpgrades.add(socket)
      socket.once('close', () => this.#lateUpgrades.delete(socket))
    })
  }

  /** The node drains: upgrades from now on are refused, and their sockets ended at close. */
  startDraining(): void {
    this.#draining = true
  }

  /** A response on `socket` is done (sent, or its connection went). */
  #responseClosed(socket: Socket): void {
    const before = this.#active.get(socket)
    if (before === undefined) return // the connection itself closed first
    this.#active.set(socket, before - 1)
    if (before === 1 && this.#closing) socket.end()
  }

  /** Destroys every connection without a request now; ends the others after their response. */
  startClosing(): void {
    this.#closing = true
    for (const [socket, count] of this.#active) if (count === 0) socket.destroy()
    for (const socket of this.#lateUpgrades) socket.end()
  }
}
