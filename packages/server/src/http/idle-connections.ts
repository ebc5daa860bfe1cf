import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { passHeldClose, relaysHeldCloses } from '../transports/held-responses.js'
import { seesEverything, takeOff } from './takeovers.js'

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
  /**
   * What the server's connections and responses are known to be, the server's (see `trackedOn`):
   * another one from `booting()` on, where the one it joined began to close meanwhile.
   */
  #tracked: Tracked | undefined
  readonly #server: HttpServer | HttpsServer | undefined
  /** Every listener it put on the server, by event, for `detach()`. */
  readonly #attached: [string, Parameters<HttpServer['off']>[1]][] = []
  /**
   * The server's tracking before this one's, when this one took its place (see `trackedOn`):
   * a closing instance's, or none. `withdraw()` puts it back.
   */
  #replaced: Tracked | undefined
  #closing = false

  /** Does nothing for servers other than HTTP/1.1 ones (HTTP/2 sessions close differently). */
  constructor(server: unknown) {
    if (!(server instanceof HttpServer || server instanceof HttpsServer)) return
    this.#server = server
    const before = servers.get(server)
    const tracked = trackedOn(server)
    this.#tracked = tracked
    if (tracked !== before) this.#replaced = before
    // Over TLS a request's socket is the TLS socket, which 'secureConnection' hands out.
    const accepted = server instanceof HttpsServer ? 'secureConnection' : 'connection'
    // The listeners read the tracking at each call, not the one of the moment they were made:
    // `booting()` may take another.
    const now = (): Tracked => this.#tracked ?? tracked
    // Nothing is put on the connection: Node keeps one `close` listener of its own on it and
    // adds a second for each response; a third of Parley's would make Node's list of them an
    // array of some twenty places, 150 bytes more for as long as the connection lasts (an SSE
    // client holds two, a polling client one).
    const onAccepted = (socket: Socket) => {
      const current = now()
      if (this.#closing) {
        // Unless an instance registered on the server since serves it (see `superseded`).
        if (!superseded(server, current)) socket.destroy()
        return
      }
      current.unused.add(socket)
      if (current.unused.size >= current.sweepAt) sweep(current)
    }
    tracked.counters.add(this)
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const current = now()
      const socket = req.socket
      current.unused.delete(socket)
      // Each response counted once, by the first mount point's tracking still on the server; not
      // by one whose close the server has outlived: those of the instance registered since count it.
      if (current.counters.values().next().value !== this || superseded(server, current)) return
      // Node gives a response its connection at once, unless another response is under way
      // there: this one then waits behind it.
      if (res.socket === null) current.queued.set(socket, (current.queued.get(socket) ?? 0) + 1)
      res.on('close', current.responseClosed)
    }
    // The stream the listeners are given, not `req.socket`: an upgrade that `app.injectWS`
    // (@fastify/websocket) makes has a request without a socket, and a duplex stand-in here.
    const onUpgrade = (_req: IncomingMessage, socket: Duplex) => {
      if (socket instanceof Socket) now().unused.delete(socket)
      // Every 'upgrade' listener has run by then: they are called one after the other, at once.
      queueMicrotask(() => endIfRefused(socket))
    }
    server.on(accepted, onAccepted)
    server.on('request', onRequest)
    server.on('upgrade', onUpgrade)
    this.#attached.push([accepted, onAccepted], ['request', onRequest], ['upgrade', onUpgrade])
    // They see every request and upgrade, those a closing mount point answers too.
    seesEverything(onRequest)
    seesEverything(onUpgrade)
  }

  /**
   * Its Fastify instance's boot reached Parley: from now on it serves on the server (see
   * server-sharers.ts). Where the tracking it joined at its registration began to close meanwhile
   * (the last instance serving on the server closed while this one booted, and ended the
   * server's connections then), it takes a fresh one, as an instance registered after that close
   * does (see `trackedOn`), with the connections that came since and have had no request yet: left
   * on the closing one, every response of this instance would end its connection, and no
   * connection would be kept alive until its own close.
   */
  booting(): void {
    const server = this.#server
    const tracked = this.#tracked
    if (!server || !tracked?.closing) return
    tracked.counters.delete(this)
    const fresh = trackedOn(server)
    for (const socket of tracked.unused) if (!socket.destroyed) fresh.unused.add(socket)
    tracked.unused.clear()
    fresh.counters.add(this)
    this.#tracked = fresh
    this.#replaced = tracked
  }

  /**
   * Takes its listeners off the server, which another Fastify instance may still serve on (see
   * server-sharers.ts): the tracking of the mount points left sees to its connections. Left on,
   * each instance closed there would go on counting every connection and response of the server.
   */
  detach(): void {
    const server = this.#server
    const tracked = this.#tracked
    if (!server || !tracked) return
    // Off the front of a takeover too, where one holds it (see takeovers.ts).
    for (const [event, listener] of this.#attached.splice(0)) takeOff(server, event, listener)
    tracked.counters.delete(this)
  }

  /**
   * Undoes its coming, for a registration that failed after it: its listeners off the server,
   * and the tracking it began, unless another mount point counts on it since, given back to the
   * one it replaced. An application need not close an instance whose registration failed, and
   * the tracking left in place would never close: the instance closing before it (or none) ends
   * its connections as if this one had never come, not at Node's keep-alive timeout.
   */
  withdraw(): void {
    const server = this.#server
    const tracked = this.#tracked
    this.detach()
    if (!server || !tracked || servers.get(server) !== tracked || tracked.counters.size > 0) return
    const replaced = this.#replaced
    if (!replaced) {
      servers.delete(server)
      return
    }
    servers.set(server, replaced)
    // The one it replaced was closing (see `booting`): the connections that came since, and
    // which this one took, are ended as that close ended the server's, and as it would have
    // ended each of them at its coming had this one not been there. Left as they are, one
    // without a request would stay open until the client gives up on it, and one kept alive
    // after an answer of this tracking's until Node's keep-alive timeout.
    closeTracked(server, tracked)
  }

  /** How many connections have responses waiting behind the one under way (pipelining). */
  get pipelined(): number {
    return this.#tracked?.queued.size ?? 0
  }

  /**
   * Destroys every connection without a request now; ends the others after their response,
   * those whose request came before this mount point was registered too (see `trackedOn`).
   */
  startClosing(): void {
    const tracked = this.#tracked
    if (!this.#server || !tracked) return
    this.#closing = true
    closeTracked(this.#server, tracked)
  }
}

/**
 * The server's connections `tracked` knows, closing: those without a request destroyed now, the
 * others ended after their response (see `responseClosed`).
 */
function closeTracked(server: HttpServer | HttpsServer, tracked: Tracked): void {
  tracked.closing = true
  const unused = tracked.unused
  for (const socket of unused) socket.destroy()
  unused.clear()
  // Those that had requests and have none under way: Node knows them.
  server.closeIdleConnections()
}

/** The fewest connections without a request that `IdleConnections` holds before it sweeps. */
const SWEEP_FROM = 64

/**
 * What is known of one server's connections, kept for every mount point on it (see
 * server-sharers.ts) rather than by each: a mount point registered after a client connected, or
 * after a request began, never hears of it, and when it is the last to close, it must end that
 * connection all the same, or the server's close would wait for it (Node's keep-alive timeout).
 */
interface Tracked {
  /**
   * Connections that have not had a request yet. Node's `closeIdleConnections()` finds every
   * other idle one, but not these (its parser is listed only from the first request on). Kept
   * without a `close` listener of their own (see `sweep`).
   */
  readonly unused: Set<Socket>
  /** How many `unused` may hold before the next sweep. */
  sweepAt: number
  /**
   * Connections with responses waiting behind the one under way (HTTP/1.1 pipelining), with how
   * many wait. A connection with one response at a time, as every client's is but a pipelining
   * one's, is in no map: an entry per held poll or event stream would cost its share of the
   * table (57 to 115 bytes) for as long as the client is idle. Each response's `close` (which
   * also comes when the connection goes first) counts one down, so no listener is put on the
   * connection itself (see the constructor).
   */
  readonly queued: Map<Socket, number>
  /** The last mount point on the server began to close: a connection goes after its response. */
  closing: boolean
  /** The mount points' tracking on the server, in order: the first counts every response. */
  readonly counters: Set<IdleConnections>
  /**
   * Each response's one `close` listener (`this` is the response): a closure per request would
   * stay on each open response, an SSE stream or a held poll, for as long as it lasts. It tells
   * the transport holding the response too, which then puts no listener of its own on it (see
   * held-responses.ts).
   */
  readonly responseClosed: (this: ServerResponse) => void
}

const servers = new WeakMap<object, Tracked>()

function trackedOn(server: object): Tracked {
  const found = servers.get(server)
  // One whose last mount point began to close is done with: an instance registered on the server
  // anew (a restart, the old one's close under way or over) starts afresh, not closing. The
  // responses counted there keep it, and end their connections.
  if (found && !found.closing) return found
  const tracked: Tracked = {
    unused: new Set(),
    sweepAt: SWEEP_FROM,
    queued: new Map(),
    closing: false,
    counters: new Set(),
    responseClosed(this: ServerResponse) {
      responseClosed(server, tracked, this.req.socket)
      passHeldClose(this)
    },
  }
  relaysHeldCloses(tracked.responseClosed)
  servers.set(server, tracked)
  return tracked
}

/**
 * Whether an instance registered on the server after the last one began to close counts its
 * connections afresh (see `trackedOn`): the closing one's close, still under way, lets go of
 * what it knew then, not of what comes after, which that instance serves.
 */
function superseded(server: object, tracked: Tracked): boolean {
  return servers.get(server) !== tracked
}

/**
 * Whether the server still closes for a connection whose last response counted by `tracked` (a
 * tracking that began to close) is done: unless an instance registered on the server since
 * serves on it (see `superseded`), whose own close ends its connections when it comes. The
 * client keeps a kept-alive connection for its next request, which that instance serves: ended
 * under it, that request would be lost. Nor, once that instance closes too, one that a request
 * it counted waits on, pipelined: that one's answer ends it.
 */
function closingNow(server: object, tracked: Tracked, socket: Socket): boolean {
  const current = servers.get(server)
  if (current === undefined || current === tracked) return true
  return current.closing && !current.queued.has(socket)
}

/** A response on `socket` is done (sent, or its connection went). */
function responseClosed(server: object, tracked: Tracked, socket: Socket): void {
  const { queued } = tracked
  const waiting = queued.get(socket)
  // Its connection may have gone first: the response's `close` comes then too, and those
  // waiting behind it get none (Node destroys their requests).
  if (socket.destroyed) {
    if (waiting !== undefined) queued.delete(socket)
    return
  }
  if (waiting === undefined) {
    if (tracked.closing && closingNow(server, tracked, socket)) socket.end()
    return
  }
  // The next one is under way now.
  if (waiting > 1) queued.set(socket, waiting - 1)
  else queued.delete(socket)
}

/**
 * Lets go of the connections that have closed, once it holds twice as many as after the sweep
 * before (at least `SWEEP_FROM`): a closed connection waits there at most until then, and each
 * costs the sweep once.
 */
function sweep(tracked: Tracked): void {
  for (const socket of tracked.unused) if (socket.destroyed) tracked.unused.delete(socket)
  tracked.sweepAt = Math.max(SWEEP_FROM, 2 * tracked.unused.size)
}

/**
 * Ends an upgrade's connection that holds an answer and that nobody reads: a refusal written
 * within the 'upgrade' event, as Fastify's 503 at close is (Parley's route answers later, its
 * checks are asynchronous). ws reads a connection as soon as it has written its 101, and a
 * refusal that went through Fastify's hooks is destroyed by @fastify/websocket; neither is
 * touched. The connection is destroyed once the answer has left, as Node does after an answer
 * with `Connection: close`: a client that keeps it open must not hold the server. Anything but a
 * `net.Socket` is left alone.
 */
export function endIfRefused(socket: Duplex): void {
  // Only a connection can hold the server open: an injected upgrade's stand-in stream (see
  // `app.injectWS`) is its test's to end.
  if (!(socket instanceof Socket)) return
  if (socket.destroyed || socket.bytesWritten === 0 || socket.readableFlowing !== null) return
  // Node took its own error listener off at the upgrade: a client that resets the connection
  // meanwhile must not take the process down.
  if (socket.listenerCount('error') === 0) socket.on('error', ignore)
  socket.end(() => socket.destroy())
}

function ignore(): void {}
