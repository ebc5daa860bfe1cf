import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import { ErrorCode, PROTOCOL_VERSION } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { HeaderBag } from '../transports/http.js'
import { type HttpTransportName, httpSegments } from '../transports/registry.js'
import type { HttpSide } from '../transports/transport.js'
import { forbiddenMessage, type OriginVerdict } from './origin.js'

type RequestListener = (this: unknown, req: IncomingMessage, res: ServerResponse) => void

/** The transport whose last words wait for `sid`'s next GET on endpoint `kind`, taken out. */
export type TakeLastWords = (sid: string, kind: HttpTransportName) => HttpSide | undefined

export interface LastWordsOptions {
  /** `app.server`: only Node's `http` and `https` servers are taken over. */
  server: unknown
  /** Where the endpoints are mounted (`mountBase`). */
  base: string
  take: TakeLastWords
  log: FastifyBaseLogger
  /** Fastify answers every request 503 while it closes (see `refusesWhileClosing`); undefined: not known. */
  fastifyRefuses: boolean | undefined
  /** The origin check of the endpoints, for a request Fastify has not seen (see `checkRawOrigin`). */
  originOf: (req: IncomingMessage) => OriginVerdict
  /** Counts a page refused for its origin, as the routes do. */
  originRefused: (verdict: OriginVerdict) => void
}

/**
 * Hands clients their session's last words while Fastify refuses requests, and the endpoints'
 * other requests Parley's own refusal wherever no route of Parley's could answer them.
 *
 * From the first moment of `app.close()`, Fastify answers every request itself with a bare 503
 * (its `return503OnClosing`, on by default), before any route or hook runs. A session whose
 * client had no GET waiting keeps its CLOSE 'server shutdown' (or a drain's MOVED) for that
 * client's next GET: a polling client between two answers, a client that has not sent its first.
 * Fastify's 503 would reach that GET instead, and the client would report a lost transport
 * rather than the shutdown and its `retryAfter`.
 *
 * `takeOver()`, when the server begins to close, puts one listener in the place of Fastify's:
 * it answers the GETs that name a session with last words kept here and hands the other
 * requests to Fastify as it was, but for the endpoints' refusals below. Only plain HTTP/1.1 servers (Node's `http` and `https`) are
 * taken over; with others, such a client meets the 503 and resumes as after any lost transport.
 *
 * The endpoints' other GETs and POSTs get Parley's own `503 PARLEY_SERVER_SHUTTING_DOWN` here
 * too, where Fastify's bare 503 has no code and no CORS headers, so that a page on another
 * origin could not read it: from `takeOver()` on when Fastify refuses every request while it
 * closes (`fastifyRefuses`, see `refusesWhileClosing`), since no route of Parley's could answer
 * them then; otherwise once Parley itself has closed (`shutDown()`, after the drain), what its
 * routes answer then. Until then, with `return503OnClosing: false`, they go to the routes, which
 * keep serving the drain (its sessions' requests, and those it forwards to other nodes).
 *
 * Whatever it answers, it answers as the routes would: a page whose origin is not allowed here
 * gets their 403 PARLEY_ORIGIN_FORBIDDEN first (last words included), and an allowed one their
 * CORS headers.
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

  readonly #originOf: (req: IncomingMessage) => OriginVerdict
  readonly #originRefused: (verdict: OriginVerdict) => void

  /** Call before Parley adds request listeners of its own: the ones found now are Fastify's. */
  constructor({ server, base, take, log, fastifyRefuses, originOf, originRefused }: LastWordsOptions) {
    this.#paths = new Map(
      (Object.entries(httpSegments) as [HttpTransportName, string][]).map(([kind, segment]) => [
        `${base}/${segment}`,
        kind,
      ]),
    )
    this.#take = take
    this.#log = log
    this.#fastifyRefuses = fastifyRefuses
    this.#originOf = originOf
    this.#originRefused = originRefused
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
    // Another version's client is told so by the routes (through Fastify), as before the close.
    const refusing = this.#refusing && params.get('v') === String(PROTOCOL_VERSION)
    // In the routes' order: a page whose origin is not allowed here is refused before anything
    // else is looked at, its request's session (and last words) included.
    const origin = this.#originOf(req)
    if (!origin.allowed) {
      if (!refusing) return false
      this.#originRefused(origin)
      answerJson(res, 403, origin.cors, ErrorCode.ORIGIN_FORBIDDEN, forbiddenMessage(origin))
      return true
    }
    // The CORS headers the routes give this page; the connection ends with the answer.
    const headers: HeaderBag = { ...origin.cors, Connection: 'close' }
    const sid = method === 'GET' && params.get('sid')
    const last = sid ? this.#take(sid, kind) : undefined
    if (last) {
      try {
        last.serveLast(res, headers)
      } catch (err) {
        this.#log.warn({ err }, 'parley: could not hand a client its last words at close')
        res.destroy()
      }
      return true
    }
    if (!refusing) return false
    answerJson(res, 503, headers, ErrorCode.SERVER_SHUTTING_DOWN, 'the server is shutting down')
    return true
  }
}

/** A coded answer, as the routes give it, with `headers`; the connection ends with it. */
function answerJson(
  res: ServerResponse,
  status: number,
  headers: HeaderBag,
  code: string,
  message: string,
): void {
  const body = JSON.stringify({ code, message })
  res.writeHead(status, {
    ...headers,
    Connection: 'close',
    'Cache-Control': 'no-store',
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  })
  res.end(body)
}
