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
 *
 * An upgrade request's connection that got an answer other than 101 is ended once that answer
 * is out, whenever it comes. Node hands such a connection to the 'upgrade' listeners for good
 * (its HTTP parser lets go of it), so nothing else reads or closes it, even after the client has
 * gone, and `server.close()` waits for it for ever. Fastify answers one so from the first moment
 * of `app.close()` (its bare 503, `return503OnClosing`), before any route or hook, and while an
 * application's own preClose hook added before the plugin runs, the plugin's own hook has not
 * begun: the connection is let go here, not in a close hook.
 */
export class IdleConnections {
  /** Open plain-HTTP connections, with the number of requests each is serving. */
  readonly #active = new Map<Socket, number>()
  #closing = false
  /** Its own listeners on the server, which must see every request and upgrade (see last-words.ts). */
  readonly listeners = new Set<unknown>()

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
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const count = active.get(req.socket)
      if (count === undefined) return
      active.set(req.socket, count + 1)
      res.on('close', responseClosed)
    }
    const onUpgrade = (req: IncomingMessage) => {
      const socket = req.socket
      active.delete(socket)
      socket.off('close', forget)
      // Every 'upgrade' listener has run by then: they are called one after the other, at once.
      queueMicrotask(() => endIfRefused(socket))
    }
    server.on('request', onRequest)
    server.on('upgrade', onUpgrade)
    this.listeners.add(onRequest).add(onUpgrade)
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
  }
}

/**
 * Ends an upgrade's connection that holds an answer and that nobody reads: a refusal written
 * within the 'upgrade' event, as Fastify's 503 at close is (Parley's route answers later, its
 * checks are asynchronous). ws reads a connection as soon as it has written its 101, and a
 * refusal that went through Fastify's hooks is destroyed by @fastify/websocket; neither is
 * touched. The connection is destroyed once the answer has left, as Node does after an answer
 * with `Connection: close`: a client that keeps it open must not hold the server.
 */
function endIfRefused(socket: Socket): void {
  if (socket.destroyed || socket.bytesWritten === 0 || socket.readableFlowing !== null) return
  // Node took its own error listener off at the upgrade: a client that resets the connection
  // meanwhile must not take the process down.
  if (socket.listenerCount('error') === 0) socket.on('error', ignore)
  socket.end(() => socket.destroy())
}

function ignore(): void {}
