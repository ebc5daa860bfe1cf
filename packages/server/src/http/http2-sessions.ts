import type { EventEmitter } from 'node:events'
import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Http2Session, ServerHttp2Stream } from 'node:http2'
import { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { passHeldClose, relaysHeldCloses } from '../transports/held-responses.js'
import { endIfRefused } from './idle-connections.js'
import { seesEverything, takeOff } from './takeovers.js'

/**
 * Lets a closing HTTP/2 server let go of its clients' connections, as `IdleConnections` does for
 * HTTP/1.1 ones.
 *
 * Node's `close()` of an HTTP/2 server stops accepting connections but, before Node 24, leaves
 * open the sessions it has: a browser keeps its connection to the page's server open (for some
 * 70 s of silence, Fastify's `http2SessionTimeout`), and a client that tries again after the
 * CLOSE 'server shutdown' sends its requests on that connection, each answered 503 by the
 * closing Fastify, so it never falls silent. `app.close()` would wait for it. From
 * `startClosing()` on, each session is closed gracefully: a GOAWAY, no new stream taken, the
 * streams under way answered first. A stream whose answer is out already but whose client has
 * not ended its own side (a request body that never ends, an extended CONNECT refused) is closed
 * (RST_STREAM, no error, as RFC 9113 allows once the answer is complete): the graceful close
 * would wait for it for ever. A client then needs a new connection, which the closed server no
 * longer accepts.
 *
 * With `allowHTTP1`, the HTTP/1.1 connections beside (a browser's WebSocket) are Node's: its
 * `close()` ends those idle at that moment, but not one that never carried a request, which would
 * hold the close until the client gives up on it. Those are destroyed at `startClosing()`, as
 * `IdleConnections` does on HTTP/1.1 servers, and so is each one that comes after; so is an
 * upgrade's connection that Fastify refused while it closes, once its answer is out. Nor does it
 * end one whose request is under way: kept alive after its answer, it would hold the close until
 * Node's keep-alive timeout. Each is ended once its last answer is out.
 */
export class Http2Sessions {
  /**
   * What the server holds, known to every mount point on it (see `ServerConnections`): another
   * one from `booting()` on, where the one it joined began to close meanwhile.
   */
  #known: ServerConnections | undefined
  /** The server's connections as known before, when this one's took their place (see `knownOn`). */
  #replaced: ServerConnections | undefined
  readonly #server: EventEmitter | undefined
  #closing = false
  /** The server and every listener put on it, by event, for `detach()`. */
  readonly #attached: [EventEmitter, string, Parameters<EventEmitter['off']>[1]][] = []

  /** Does nothing for HTTP/1.1 servers (`IdleConnections` is theirs); only HTTP/2 ones emit `session`. */
  constructor(server: EventEmitter) {
    if (server instanceof HttpServer || server instanceof HttpsServer) return
    const before = servers.get(server)
    const known = knownOn(server)
    this.#known = known
    this.#server = server
    if (known !== before) this.#replaced = before
    known.mounts.add(this)
    const on = (event: string, listener: Parameters<EventEmitter['on']>[1]) => {
      server.on(event, listener)
      this.#attached.push([server, event, listener])
    }
    // The listeners read what is known at each call, not what was at the moment they were made:
    // `booting()` may take another.
    const now = (): ServerConnections => this.#known ?? known
    on('session', (session: Http2Session) => {
      const current = now()
      if (this.#closing) {
        // Unless an instance registered on the server since serves it (see `superseded`).
        if (!superseded(server, current)) session.close()
        return
      }
      // Every mount point on the server hears it: the first one counts it for all.
      if (current.sessions.has(session)) return
      current.sessions.add(session)
      session.once('close', current.sessionClosed)
    })
    on('stream', (stream: ServerHttp2Stream) => {
      const current = now()
      if (current.streams.has(stream)) return
      current.streams.add(stream)
      stream.once('close', current.streamClosed)
    })
    // Over TLS only: h2c takes no HTTP/1.1. An h2 connection is a session (above).
    on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') return
      const current = now()
      if (this.#closing) {
        if (!superseded(server, current)) socket.destroy()
        return
      }
      current.unused.add(socket)
      if (current.unused.size >= current.sweepAt) sweep(current)
    })
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (req.httpVersionMajor !== 1) return
      const current = now()
      const socket = req.socket as TLSSocket
      current.unused.delete(socket)
      // Every mount point on the server hears it: the first one counts it for all; not one whose
      // close the server has outlived: the instance registered since counts it.
      if (res.listeners('close').includes(current.responseClosed) || superseded(server, current)) return
      // Node gives a response its connection at once, unless another one is under way there
      // (pipelining): this one then waits behind it.
      if (res.socket === null) current.queued.set(socket, (current.queued.get(socket) ?? 0) + 1)
      res.on('close', current.responseClosed)
    }
    // The listeners' stream, not `req.socket`, which an injected upgrade lacks (see IdleConnections).
    const onUpgrade = (_req: IncomingMessage, socket: Duplex) => {
      now().unused.delete(socket as TLSSocket)
      // An upgrade refused within the event (Fastify's 503 at close) leaves its connection to
      // nobody: see `endIfRefused`. Every 'upgrade' listener has run by then.
      queueMicrotask(() => endIfRefused(socket))
    }
    on('request', onRequest)
    on('upgrade', onUpgrade)
    // They see every request and upgrade, those a closing mount point answers too.
    seesEverything(onRequest)
    seesEverything(onUpgrade)
  }

  /**
   * Its Fastify instance's boot reached Parley: where what it joined at its registration began to
   * close meanwhile, it takes a fresh one, with the sessions and connections that came since, as
   * `IdleConnections.booting` does.
   */
  booting(): void {
    const server = this.#server
    const known = this.#known
    if (!server || !known?.closing) return
    known.mounts.delete(this)
    const fresh = knownOn(server)
    for (const socket of known.unused) if (!socket.destroyed) fresh.unused.add(socket)
    known.unused.clear()
    // Those that came since (the closing one closes each that comes while it is attached), each
    // with its `close` listener moved to what is known now.
    moveOpen(known.sessions, fresh.sessions, known.sessionClosed, fresh.sessionClosed)
    moveOpen(known.streams, fresh.streams, known.streamClosed, fresh.streamClosed)
    fresh.mounts.add(this)
    this.#known = fresh
    this.#replaced = known
  }

  /** Takes its listeners off the server, which another Fastify instance still serves on (see `IdleConnections.detach`). */
  detach(): void {
    // Off the front of a takeover too, where one holds it (see takeovers.ts).
    for (const [server, event, listener] of this.#attached.splice(0)) takeOff(server, event, listener)
    this.#known?.mounts.delete(this)
  }

  /**
   * Undoes its coming, for a registration that failed after it, as `IdleConnections.withdraw`
   * does: the connections known before it are the server's again, unless another mount point
   * counts on this one's since.
   */
  withdraw(): void {
    const server = this.#server
    const known = this.#known
    this.detach()
    if (!server || !known || servers.get(server) !== known || known.mounts.size > 0) return
    const replaced = this.#replaced
    if (!replaced) {
      servers.delete(server)
      return
    }
    servers.set(server, replaced)
    // The one it replaced was closing (see `booting`): the sessions and connections that came
    // since, which this one took, are closed as that close closed the server's, and as it would
    // have closed each at its coming had this one not been there. Left as they are, nobody would
    // close them: a client's session would stay open until its timeout.
    closeKnown(known)
  }

  /**
   * Closes every session of the server once its streams are answered, and each one that comes
   * after: those that came before this mount point was registered too, which another one on
   * the server, closed since, had heard.
   */
  startClosing(): void {
    this.#closing = true
    if (this.#known) closeKnown(this.#known)
  }
}

/**
 * Moves the open sessions or streams of `from` to `to`, each with its `close` listener (`left`,
 * `from`'s) swapped for `to`'s (`joined`), and empties `from`.
 */
function moveOpen<T extends Http2Session | ServerHttp2Stream>(
  from: Set<T>,
  to: Set<T>,
  left: (this: T) => void,
  joined: (this: T) => void,
): void {
  for (const item of from) {
    item.off('close', left)
    if (item.closed) continue
    to.add(item)
    item.once('close', joined)
  }
  from.clear()
}

/**
 * Closes every session `known` holds once its streams are answered, and destroys its HTTP/1.1
 * connections without a request: the others end after their answer (see `answerClosed`).
 */
function closeKnown(known: ServerConnections): void {
  known.closing = true
  const { sessions, streams, unused } = known
  for (const stream of streams) if (answered(stream)) stream.close()
  for (const session of sessions) session.close()
  sessions.clear()
  for (const socket of unused) socket.destroy()
  unused.clear()
}

/**
 * The sessions, streams and unused HTTP/1.1 connections of one server, kept for every mount
 * point on it (see server-sharers.ts) rather than by each: a mount point registered after a
 * client connected never hears of that connection, and when it is the last to close, it must
 * close it all the same, or the server's close would wait for it.
 */
interface ServerConnections {
  readonly sessions: Set<Http2Session>
  /** Streams not closed yet: one shared `close` listener each, no closure. */
  readonly streams: Set<ServerHttp2Stream>
  /**
   * HTTP/1.1 connections of an HTTP/2 server that have not had a request yet. Kept without a
   * `close` listener of their own: the closed ones go at each sweep (see `IdleConnections`).
   */
  readonly unused: Set<TLSSocket>
  /** How many `unused` may hold before the next sweep. */
  sweepAt: number
  /**
   * HTTP/1.1 connections with answers waiting behind the one under way (pipelining), with how
   * many wait, as `IdleConnections` counts them: each answer's `close` counts one down.
   */
  readonly queued: Map<TLSSocket, number>
  /** The last mount point on the server began to close: an HTTP/1.1 connection goes after its answer. */
  closing: boolean
  /**
   * Each HTTP/1.1 answer's one `close` listener (`this` is the answer), which tells the transport
   * holding it too (see held-responses.ts).
   */
  readonly responseClosed: (this: ServerResponse) => void
  readonly sessionClosed: (this: Http2Session) => void
  readonly streamClosed: (this: ServerHttp2Stream) => void
  /** The mount points' tracking on the server, until each detaches (see `withdraw`). */
  readonly mounts: Set<Http2Sessions>
}

const servers = new WeakMap<object, ServerConnections>()

function knownOn(server: object): ServerConnections {
  const found = servers.get(server)
  // One whose last mount point began to close is done with: an instance registered on the server
  // anew starts afresh, not closing (see `IdleConnections`).
  if (found && !found.closing) return found
  const sessions = new Set<Http2Session>()
  const streams = new Set<ServerHttp2Stream>()
  const queued = new Map<TLSSocket, number>()
  const known: ServerConnections = {
    sessions,
    streams,
    unused: new Set(),
    sweepAt: SWEEP_FROM,
    queued,
    closing: false,
    mounts: new Set(),
    responseClosed(this: ServerResponse) {
      answerClosed(server, known, this.req.socket as TLSSocket)
      passHeldClose(this)
    },
    sessionClosed(this: Http2Session) {
      sessions.delete(this)
    },
    streamClosed(this: ServerHttp2Stream) {
      streams.delete(this)
    },
  }
  relaysHeldCloses(known.responseClosed)
  servers.set(server, known)
  return known
}

/**
 * Whether an instance registered on the server after the last one began to close knows its
 * connections afresh (see `knownOn`): the closing one's close, still under way, lets go of what
 * it knew then, not of what comes after, which that instance serves.
 */
function superseded(server: object, known: ServerConnections): boolean {
  return servers.get(server) !== known
}

/**
 * An HTTP/1.1 answer on `socket` is done (sent, or its connection went): once closing, the
 * connection ends unless another answer waits behind it there, or the server serves on (see
 * `closingNow`).
 */
function answerClosed(server: object, known: ServerConnections, socket: TLSSocket): void {
  const waiting = known.queued.get(socket)
  // Its connection may have gone first: those waiting behind it get no `close` (Node destroys
  // their requests).
  if (socket.destroyed) {
    if (waiting !== undefined) known.queued.delete(socket)
    return
  }
  if (waiting === undefined) {
    if (known.closing && closingNow(server, known, socket)) socket.end()
    return
  }
  if (waiting > 1) known.queued.set(socket, waiting - 1)
  else known.queued.delete(socket)
}

/**
 * Whether the server still closes for an HTTP/1.1 connection whose last answer counted by `known`
 * (which began to close) is done: not while an instance registered on the server since serves on
 * it, whose own close ends it, nor then while a request it counted waits there, pipelined (see
 * `IdleConnections`).
 */
function closingNow(server: object, known: ServerConnections, socket: TLSSocket): boolean {
  const current = servers.get(server)
  if (current === undefined || current === known) return true
  return current.closing && !current.queued.has(socket)
}

/** Forgets the closed connections that never had a request (see `IdleConnections`). */
function sweep(known: ServerConnections): void {
  for (const socket of known.unused) if (socket.destroyed) known.unused.delete(socket)
  known.sweepAt = Math.max(SWEEP_FROM, 2 * known.unused.size)
}

/** The fewest unused HTTP/1.1 connections `Http2Sessions` holds before it sweeps. */
const SWEEP_FROM = 64

/**
 * Whether the stream's answer is all sent: its END_STREAM went out (nghttp2 marks the stream shut
 * for writing only once that frame is sent, while `finish` comes when it is queued: a reset then
 * could drop the end of the answer).
 */
function answered(stream: ServerHttp2Stream): boolean {
  return !stream.closed && stream.state.localClose === 1
}
