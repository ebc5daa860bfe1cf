import type { FastifyRequest } from 'fastify'
import type { AllowedOrigins } from '../options.js'
import type { HeaderBag } from '../transports/http.js'

/** The verdict on a request's `Origin`, with the CORS headers its answers need. */
export interface OriginVerdict {
  allowed: boolean
  cors: HeaderBag
}

const SAME_ORIGIN: OriginVerdict = { allowed: true, cors: {} }
const FORBIDDEN: OriginVerdict = { allowed: false, cors: {} }

/**
 * Requests without `Origin` (not from a browser page) and same-origin requests always pass.
 * A cross-origin page passes only when `allowedOrigins` lets it; then it gets CORS headers:
 * its exact origin with credentials, or `*` without them when `allowedOrigins` is '*'.
 */
export function checkOrigin(request: FastifyRequest, allowed: AllowedOrigins | undefined): OriginVerdict {
  const origin = request.headers.origin
  if (origin === undefined) return SAME_ORIGIN
  const normalised = toOrigin(origin)
  if (normalised !== undefined && normalised === ownOrigin(request)) return SAME_ORIGIN
  if (allowed === '*') return { allowed: true, cors: { 'Access-Control-Allow-Origin': '*' } }
  let ok = false
  if (Array.isArray(allowed)) ok = normalised !== undefined && allowed.includes(normalised)
  else if (typeof allowed === 'function') {
    try {
      ok = allowed(origin) === true
    } catch (err) {
      request.log.warn({ err }, 'parley: allowedOrigins function threw; origin refused')
    }
  }
  if (!ok) return FORBIDDEN
  return {
    allowed: true,
    cors: {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Credentials': 'true',
      Vary: 'Origin',
    },
  }
}

/** Extra headers for an answer to a CORS preflight (OPTIONS). */
export function preflightHeaders(request: FastifyRequest): HeaderBag {
  const asked = request.headers['access-control-request-headers']
  return {
    'Access-Control-Allow-Methods': 'GET, POST',
    'Access-Control-Allow-Headers': typeof asked === 'string' && asked.length < 1024 ? asked : 'content-type',
    'Access-Control-Max-Age': '600',
  }
}

function ownOrigin(request: FastifyRequest): string | undefined {
  const host = request.headers.host
  if (!host) return undefined
  return toOrigin(`${request.protocol}://${host}`)
}

function toOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}
