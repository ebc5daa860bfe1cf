import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import { ErrorCode, PROTOCOL_VERSION } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { HeaderBag } from '../transports/http.js'
import { type HttpTransportName, httpSegments } from '../transports/registry.js'
import type { HttpSide } from '../transports/transport.js'

type RequestListener = (this: unknown, req: IncomingMessage, res: ServerResponse) => void

/** The transport whose last words wait for `sid`'s next GET on endpoint `kind`, taken out. */
export type TakeLastWords = (sid: string, kind: HttpTransportName) => HttpSide | undefined

/**
 * Hands clients their session's last words while Fastify refuses requests, and, once Parley has
 * closed, the endpoints' other requests Parley's own refusal.
 *
 * From the first moment of `app.close()`, Fastify answers every request itself with a bare 503
 * (its `return503OnClosing`, on by default), before any route or hook runs. A session whose
 * client had no GET waiting keeps its CLOSE 'server shutdown' (or a drain's MOVED) for that
 * client's next GET: a polling client between two answers, a client that has not sent its first.
 * Fastify's 503 would reach that GET instead, and the client would report a lost transport
 * rather than the shutdown and its `retryAfter`.
 *
 * `takeOver()`, when the server begins to close, puts one listener in the place of Fastify's:
 * it answers the GETs that name a session with last words kept here and hands every other
 * request to Fastify as it was. Only plain HTTP/1.1 servers (Node's `http` and `https`) are
 * taken over; with others, such a client meets the 503 and resumes as after any lost transport.
 *
 * The endpoints' other GETs and POSTs get Parley's own `503 PARLEY_SERVER_SHUTTING_DOWN` here
 * too, where Fastify's bare 503 has no code and no CORS headers, so that a page on another
 * origin could not read it: from `takeOver()` on when Fastify refuses every request while it
 * closes (`fastifyRefuses`, see `refusesWhileClosing`), since no route of Parley's could answer
 * them then; otherwise once Parley itself has closed (`shutDown()`, after the drain), what its
 * routes answer then. Until then, with `return503OnClosing: false`, they go to the routes, which
 * keep serving the drain (its sessions' requests, and those it forwards to other nodes).
 */
export class LastWordsAtClose {
  readonly #server: HttpServer | undefined
  /** The request listeners of the server when Parley was registered: Fastify's own. */
  readonly #fastify: RequestListener[] = []
  readonly #paths: ReadonlyMap<string, HttpTransportName>
  readonly #take: TakeLastWords
  readonly #log: FastifyBaseLogger
  /** Fastify answers every request 503 while it closes (see `refusesWhileClosing`); undefined: not known. */
  readonly #fastifyRefuses: boolean | undefined
  #active = false
  /** The endpoints' other requests are refused here, not handed to Fastify. */
  #refusing = false

  /** Call before Parley adds request listeners of its own: the ones found now are Fastify's. */
  constructor(
    server: unknown,
    base: string,
    take: TakeLastWords,
    log: FastifyBaseLogger,
    fastifyRefuses: boolean | undefined,
  ) {
    this.#paths = new Map(
      (Object.entries(httpSegments) as [HttpTransportName, string][]).map(([kind, segment]) => [
        `${base}/${segment}`,
        kind,
      ]),
    )
    this.#take = take
    this.#log = log
    this.#fastifyRefuses = fastifyRefuses
    if (!(server instanceof HttpServer || server instanceof HttpsServer)) return
    this.#server = server
    this.#fastify = server.listeners('request') as RequestListener[]
  }

  /**
   * Fastify is closing: from now on, a GET for a session with last words gets them, whatever
   * Fastify would say, and, when Fastify refuses every request now, the endpoints' other
   * requests get Parley's refusal rather than Fastify's.
   */
  takeOver(): void {
    const server = this.#server
    if (!server || this.#active) return
    this.#active = true
    if (this.#fastifyRefuses === true) this.#refusing = true
    const fastify = this.#fastify.filter((listener) => server.listeners('request').includes(listener))
    for (const listener of fastify) server.off('request', listener)
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#answered(req, res)) return
      for (const listener of fastify) listener.call(server, req, res)
    })
  }

  /**
   * Parley has closed: from now on the endpoints' GETs and POSTs are refused here as its routes
   * refuse them, whatever Fastify would answer.
   */
  shutDown(): void {
    this.#refusing = true
  }

  #answered(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url
    const method = req.method
    if ((method !== 'GET' && method !== 'POST') || url === undefined) return false
    const query = url.indexOf('?')
    if (query < 0) return false
    const kind = this.#paths.get(url.slice(0, query))
    if (!kind) return false
    const params = new URLSearchParams(url.slice(query + 1))
    const sid = method === 'GET' && params.get('sid')
    const last = sid ? this.#take(sid, kind) : undefined
    if (last) {
      try {
        last.serveLast(res, lastWordsHeaders(req))
      } catch (err) {
        this.#log.warn({ err }, 'parley: could not hand a client its last words at close')
        res.destroy()
      }
      return true
    }
    // Another version's client is told so by the routes (through Fastify), as before the close.
    if (!this.#refusing || params.get('v') !== String(PROTOCOL_VERSION)) return false
    refuseShutDown(res, lastWordsHeaders(req))
    return true
  }
}

/** Parley's answer to a request that comes while it closes, as its routes give it. */
function refuseShutDown(res: ServerResponse, headers: HeaderBag): void {
  const body = JSON.stringify({
    code: ErrorCode.SERVER_SHUTTING_DOWN,
    message: 'the server is shutting down',
  })
  res.writeHead(503, {
    ...headers,
    'Cache-Control': 'no-store',
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  })
  res.end(body)
}

/**
 * CORS for a cross-origin page: the answer holds only the CLOSE (or MOVED) of the session its
 * request names, whose sid only that session's client knows; that client's origin passed the
 * origin check when the session began. Or only that the server is shutting down, which any
 * page may know (it opens and touches no session). The connection ends with the answer.
 */
function lastWordsHeaders(req: IncomingMessage): HeaderBag {
  const origin = req.headers.origin
  if (origin === undefined) return { Connection: 'close' }
  return {
    Connection: 'close',
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': 'true',
    Vary: 'Origin',
  }
}
