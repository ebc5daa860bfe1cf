import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import type { FastifyBaseLogger } from 'fastify'
import type { HeaderBag } from '../transports/http.js'
import { type HttpTransportName, httpSegments } from '../transports/registry.js'
import type { HttpSide } from '../transports/transport.js'

type RequestListener = (this: unknown, req: IncomingMessage, res: ServerResponse) => void

/** The transport whose last words wait for `sid`'s next GET on endpoint `kind`, taken out. */
export type TakeLastWords = (sid: string, kind: HttpTransportName) => HttpSide | undefined

/**
 * Hands clients their session's last words while Fastify refuses requests.
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
 */
export class LastWordsAtClose {
  readonly #server: HttpServer | undefined
  /** The request listeners of the server when Parley was registered: Fastify's own. */
  readonly #fastify: RequestListener[] = []
  readonly #paths: ReadonlyMap<string, HttpTransportName>
  readonly #take: TakeLastWords
  readonly #log: FastifyBaseLogger
  #active = false

  /** Call before Parley adds request listeners of its own: the ones found now are Fastify's. */
  constructor(server: unknown, base: string, take: TakeLastWords, log: FastifyBaseLogger) {
    this.#paths = new Map(
      (Object.entries(httpSegments) as [HttpTransportName, string][]).map(([kind, segment]) => [
        `${base}/${segment}`,
        kind,
      ]),
    )
    this.#take = take
    this.#log = log
    if (!(server instanceof HttpServer || server instanceof HttpsServer)) return
    this.#server = server
    this.#fastify = server.listeners('request') as RequestListener[]
  }

  /** From now on, a GET for a session with last words gets them, whatever Fastify would say. */
  takeOver(): void {
    const server = this.#server
    if (!server || this.#active) return
    this.#active = true
    const fastify = this.#fastify.filter((listener) => server.listeners('request').includes(listener))
    for (const listener of fastify) server.off('request', listener)
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#answered(req, res)) return
      for (const listener of fastify) listener.call(server, req, res)
    })
  }

  #answered(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url
    if (req.method !== 'GET' || url === undefined) return false
    const query = url.indexOf('?')
    if (query < 0) return false
    const kind = this.#paths.get(url.slice(0, query))
    const sid = kind && new URLSearchParams(url.slice(query + 1)).get('sid')
    if (!kind || !sid) return false
    const last = this.#take(sid, kind)
    if (!last) return false
    try {
      last.serveLast(res, lastWordsHeaders(req))
    } catch (err) {
      this.#log.warn({ err }, 'parley: could not hand a client its last words at close')
      res.destroy()
    }
    return true
  }
}

/**
 * CORS for a cross-origin page: the answer holds only the CLOSE (or MOVED) of the session its
 * request names, whose sid only that session's client knows; that client's origin passed the
 * origin check when the session began. The connection ends with the answer.
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
