// The origin check the plugin makes itself while Fastify closes (`checkRawOrigin`) reads the
// raw request, without Fastify's `trustProxy`: it must never refuse a page the routes' own check
// (`checkOrigin`, through Fastify's request) lets through, whatever trustProxy says.
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import type { AllowedOrigins } from '../options.js'
import { checkOrigin, checkRawOrigin, OriginRefusals } from './origin.js'

interface Case {
  origin?: string
  host?: string
  forwardedHost?: string
  forwardedProto?: string
}

const cases: Case[] = []
for (const origin of [
  undefined,
  'http://app.test',
  'https://app.test',
  'http://app.test:8080',
  'http://page.test',
  'null',
])
  for (const host of ['app.test', 'APP.test:80', 'app.test:8080', 'proxy.internal:3000'])
    for (const forwardedHost of [undefined, 'app.test', 'page.test, app.test'])
      for (const forwardedProto of [undefined, 'https'])
        cases.push({
          ...(origin !== undefined && { origin }),
          host,
          ...(forwardedHost !== undefined && { forwardedHost }),
          ...(forwardedProto !== undefined && { forwardedProto }),
        })

/** Both verdicts on each case, from a Fastify app with `trustProxy`. */
async function verdicts(trustProxy: boolean, allowed: AllowedOrigins | undefined) {
  const app = Fastify({ trustProxy })
  const refusals = new OriginRefusals(app.log)
  app.get('/', async (request) => ({
    routes: checkOrigin(request, allowed, refusals).allowed,
    raw: checkRawOrigin(request.raw, allowed, refusals).allowed,
  }))
  const seen: { case: Case; routes: boolean; raw: boolean }[] = []
  try {
    for (const c of cases) {
      const headers: Record<string, string> = { host: c.host ?? '' }
      if (c.origin !== undefined) headers.origin = c.origin
      if (c.forwardedHost !== undefined) headers['x-forwarded-host'] = c.forwardedHost
      if (c.forwardedProto !== undefined) headers['x-forwarded-proto'] = c.forwardedProto
      const answer = await app.inject({ method: 'GET', url: '/', headers })
      seen.push({ case: c, ...(answer.json() as { routes: boolean; raw: boolean }) })
    }
  } finally {
    refusals.close()
    await app.close()
  }
  return seen
}

describe('the origin check on a raw request', () => {
  it.each([
    [false, undefined],
    [true, undefined],
    [false, ['http://page.test']],
    [true, ['http://page.test']],
  ] satisfies [boolean, AllowedOrigins | undefined][])(
    'never refuses a page the routes allow (trustProxy %s, allowedOrigins %j)',
    async (trustProxy, allowed) => {
      for (const seen of await verdicts(trustProxy, allowed)) {
        if (seen.routes) expect(seen.raw, JSON.stringify(seen.case)).toBe(true)
      }
    },
  )

  it('refuses as the routes do a page that is neither allowed nor of the host the request names', async () => {
    const seen = await verdicts(false, ['http://page.test'])
    const foreign = seen.filter(
      (s) => s.case.origin === 'http://app.test:8080' && s.case.host === 'app.test' && !s.case.forwardedHost,
    )
    expect(foreign.length).toBeGreaterThan(0)
    for (const s of foreign) expect([s.routes, s.raw]).toEqual([false, false])
    // Without forwarded headers, the two agree on every case of the same scheme.
    for (const s of seen) {
      if (s.case.forwardedHost || s.case.forwardedProto || s.case.origin?.startsWith('https')) continue
      expect(s.raw, JSON.stringify(s.case)).toBe(s.routes)
    }
  })
})
