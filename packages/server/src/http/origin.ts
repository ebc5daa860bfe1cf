import type { IncomingMessage } from 'node:http'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { BurstLog } from '../burst-log.js'
import type { AllowedOrigins } from '../options.js'
import type { HeaderBag } from '../transports/http.js'
import { requestHost } from './request-host.js'

/** The verdict on a request's `Origin`, with the CORS headers its answers need. */
export interface OriginVerdict {
  allowed: boolean
  cors: HeaderBag
  /** For a refusal: the origin the request came from, and the one this server computed. */
  seen?: string
  own?: string | undefined
}

// Shared by every request they fit (never changed: answers copy them): a held poll or an SSE
// stream keeps its verdict's headers for as long as it is open.
const SAME_ORIGIN: OriginVerdict = { allowed: true, cors: {} }
const ANY_ORIGIN: OriginVerdict = { allowed: true, cors: { 'Access-Control-Allow-Origin': '*' } }

/**
 * A refusal a browser page can read: without CORS headers on the 403 a page sees only a failed
 * request, retries forever and never learns PARLEY_ORIGIN_FORBIDDEN. The body says no more
 * than its code and message.
 */
function forbidden(origin: string, own: string | undefined): OriginVerdict {
  return {
    allowed: false,
    cors: { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' },
    seen: origin,
    own,
  }
}

/**
 * Requests without `Origin` (not from a browser page) and same-origin requests always pass.
 * A cross-origin page passes only when `allowedOrigins` lets it; then it gets CORS headers:
 * its exact origin with credentials, or `*` without them when `allowedOrigins` is '*'. An
 * `allowedOrigins` function that throws refuses the origin, and is logged in `refusals`.
 */
export function checkOrigin(
  request: FastifyRequest,
  allowed: AllowedOrigins | undefined,
  refusals: OriginRefusals,
): OriginVerdict {
  const origin = request.headers.origin
  // Most requests have no Origin (a same-origin GET from a page, any request from outside a
  // browser): they pass without the server's own origin, which is a URL to parse per request.
  if (origin === undefined) return SAME_ORIGIN
  const own = ownOrigin(request)
  return judge(origin, (normalised) => normalised === own, own, allowed, refusals)
}

/**
 * `checkOrigin` for a request the plugin answers itself, before Fastify (while Fastify closes:
 * see last-words.ts). Fastify's view of the server's own origin (`request.host`,
 * `request.protocol`) follows its `trustProxy`, which a plugin cannot read, so here a page is
 * the server's own when its host is the request's Host (over HTTP/2 its `:authority`, see
 * `requestHost`) or one of its X-Forwarded-Host, whatever
 * the scheme: looser than `checkOrigin`, never stricter. A page the routes let through is never
 * refused here; one that forges X-Forwarded-Host to look like the server's own gains an answer
 * that says nothing but what this one answers any page (that the server is shutting down).
 */
export function checkRawOrigin(
  request: Pick<IncomingMessage, 'headers'>,
  allowed: AllowedOrigins | undefined,
  refusals: OriginRefusals,
): OriginVerdict {
  const hosts = [requestHost(request.headers), ...listed(request.headers['x-forwarded-host'])]
  const own = hosts[0] === undefined ? undefined : toOrigin(`http://${hosts[0]}`)
  const isOwn = (normalised: string) => {
    const page = new URL(normalised)
    return hosts.some(
      (candidate) => candidate !== undefined && hostOf(candidate, page.protocol) === page.host,
    )
  }
  return judge(request.headers.origin, isOwn, own, allowed, refusals)
}

/** The verdict on `origin`, `isOwn` saying whether a normalised origin is the server's own. */
function judge(
  origin: string | undefined,
  isOwn: (normalised: string) => boolean,
  own: string | undefined,
  allowed: AllowedOrigins | undefined,
  refusals: OriginRefusals,
): OriginVerdict {
  if (origin === undefined) return SAME_ORIGIN
  const normalised = toOrigin(origin)
  if (normalised !== undefined && isOwn(normalised)) return SAME_ORIGIN
  if (allowed === '*') return ANY_ORIGIN
  let ok = false
  if (Array.isArray(allowed)) ok = normalised !== undefined && allowed.includes(normalised)
  else if (typeof allowed === 'function') {
    try {
      ok = allowed(origin) === true
    } catch (err) {
      refusals.functionThrew(err, origin)
    }
  }
  if (!ok) return forbidden(origin, own)
  return {
    allowed: true,
    cors: {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Credentials': 'true',
      Vary: 'Origin',
    },
  }
}

/** What a 403 PARLEY_ORIGIN_FORBIDDEN says to the page refused (`OriginVerdict.seen`). */
export function forbiddenMessage(verdict: OriginVerdict): string {
  return `the origin ${verdict.seen} is not allowed here (the server's allowedOrigins)`
}

/** Extra headers for an answer to a CORS preflight (OPTIONS). */
export function preflightHeaders(request: Pick<FastifyRequest, 'headers'>): HeaderBag {
  const asked = request.headers['access-control-request-headers']
  return {
    'Access-Control-Allow-Methods': 'GET, POST',
    'Access-Control-Allow-Headers': typeof asked === 'string' && asked.length < 1024 ? asked : 'content-type',
    'Access-Control-Max-Age': '600',
  }
}

/**
 * This server's origin as the request shows it: the protocol and Host, or, with Fastify's
 * `trustProxy`, X-Forwarded-Proto and X-Forwarded-Host (behind a proxy that rewrites Host).
 */
function ownOrigin(request: FastifyRequest): string | undefined {
  const host = request.host
  if (!host) return undefined
  return toOrigin(`${request.protocol}://${host}`)
}

/** The values of a header that may come more than once and list several, comma-separated. */
function listed(header: string | string[] | undefined): string[] {
  if (header === undefined) return []
  return (Array.isArray(header) ? header : [header]).flatMap((value) =>
    value.split(',').map((part) => part.trim()),
  )
}

/**
 * `host[:port]` as a URL of `scheme` (`'https:'`) reads it (lower case, the scheme's default port
 * left out); undefined if it is not one.
 */
function hostOf(value: string, scheme: string): string | undefined {
  try {
    return new URL(`${scheme}//${value}`).host
  } catch {
    return undefined
  }
}

function toOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}

/** Logs refused origins at warn, one line per burst (see `BurstLog`), with what a user needs to act. */
export class OriginRefusals {
  readonly #burst: BurstLog<{ origin: string | undefined; ownOrigin: string | undefined }>
  /**
   * The `allowedOrigins` function threw. It runs for every cross-origin request, so a bug in it
   * (or one that a crafted Origin reaches) would write a line per request: one per burst, whose
   * first holds the `err` (its stack says where to fix it) and the origin it was given.
   */
  readonly #threw: BurstLog<{ err: unknown; origin: string }>

  constructor(log: FastifyBaseLogger) {
    this.#burst = new BurstLog(
      log,
      'warn',
      (count, first) =>
        `refused a request from origin ${first?.origin} (${count} since the last such line): not this server's own origin ` +
        `(${first?.ownOrigin ?? 'unknown: no Host'}) and not in allowedOrigins. Behind a proxy that ` +
        'changes Host, set trustProxy and forward X-Forwarded-Host and X-Forwarded-Proto',
    )
    this.#threw = new BurstLog(
      log,
      'warn',
      (count, first) =>
        `allowedOrigins function threw for ${count} request(s) since the last such line (the first: its err, for origin ${first?.origin}); each origin was refused`,
    )
  }

  /** The `allowedOrigins` function threw `err` for `origin`, which was refused. */
  functionThrew(err: unknown, origin: string): void {
    this.#threw.record({ err, origin })
  }

  record(verdict: OriginVerdict): void {
    this.#burst.record({ origin: verdict.seen, ownOrigin: verdict.own })
  }

  /** The server closes: logs what is left of a burst. */
  close(): void {
    this.#burst.close()
    this.#threw.close()
  }
}
