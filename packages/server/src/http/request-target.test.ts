import Fastify, { type FastifyServerOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import {
  LITERAL_PATHS,
  originForm,
  pathRules,
  queryStart,
  routedPath,
  routePath,
  routerReading,
  semicolonQueries,
  settleRouterReading,
} from './request-target.js'

describe('originForm', () => {
  it('keeps a target in origin form', () => {
    expect(originForm('/parley/poll?v=1')).toBe('/parley/poll?v=1')
  })

  it('reads a target in absolute form as the router does: from the first / or ? after the authority', () => {
    expect(originForm('http://host:3000/parley/poll?v=1')).toBe('/parley/poll?v=1')
    expect(originForm('HTTPS://user@host/parley/ws?v=1')).toBe('/parley/ws?v=1')
    expect(originForm('http://host?v=1')).toBe('/?v=1')
    expect(originForm('http://host')).toBe('/')
  })

  it('leaves as it came a target the router refuses as a bad URL, or one of another scheme', () => {
    for (const url of [
      'http://host#/parley/poll',
      'http://host/parley/poll?v=1#x',
      'http:///parley/poll',
      'http://[host/p',
      'ftp://host/p',
      '*',
    ]) {
      expect(originForm(url)).toBe(url)
    }
  })
})

describe('queryStart', () => {
  it('is the first ? or #, and ; only where the router reads a query there', () => {
    expect(queryStart('/p?v=1#x;y', false)).toBe(2)
    expect(queryStart('/p#v=1?x', false)).toBe(2)
    expect(queryStart('/p;v=1?x', false)).toBe(6)
    expect(queryStart('/p;v=1?x', true)).toBe(2)
    expect(queryStart('/p', true)).toBe(-1)
  })
})

describe('semicolonQueries', () => {
  it('reads useSemicolonDelimiter where the application gave it', async () => {
    // Fastify hands the option on to its router, whose types do not list it.
    const routerOptions: NonNullable<FastifyServerOptions['routerOptions']> & {
      useSemicolonDelimiter: boolean
    } = {
      useSemicolonDelimiter: true,
    }
    expect(semicolonQueries(Fastify())).toBe(false)
    expect(semicolonQueries(Fastify({ routerOptions }))).toBe(true)
    // At the top of the options, deprecated (Fastify warns so), as applications still give it.
    expect(semicolonQueries(Fastify({ useSemicolonDelimiter: true }))).toBe(true)
  })
})

describe('routedPath', () => {
  const all = { anyCase: true, duplicateSlashes: true, trailingSlash: true }

  it("decodes the escapes the router decodes, and keeps those of a URL's delimiters and of %", () => {
    expect(routedPath('/parley/%70oll', LITERAL_PATHS)).toBe('/parley/poll')
    expect(routedPath('/parley%2Fpoll', LITERAL_PATHS)).toBe('/parley%2Fpoll')
    expect(routedPath('/parley/%3Fpoll', LITERAL_PATHS)).toBe('/parley/%3Fpoll')
    expect(routedPath('/parley/%25poll', LITERAL_PATHS)).toBe('/parley/%25poll')
    expect(routedPath('/parley/%E2%82%ACpoll', LITERAL_PATHS)).toBe('/parley/€poll')
  })

  it('refuses what the router refuses as a bad URL', () => {
    expect(routedPath('/parley/%zzpoll', LITERAL_PATHS)).toBeUndefined()
    expect(routedPath('/parley/%C3poll', LITERAL_PATHS)).toBeUndefined()
  })

  it('folds slashes, drops one trailing slash and lowers letters only where the router does', () => {
    expect(routedPath('//Parley//POLL//', LITERAL_PATHS)).toBe('//Parley//POLL//')
    expect(routedPath('//Parley//POLL//', all)).toBe('/parley/poll')
    expect(routedPath('/parley/poll//', { ...LITERAL_PATHS, trailingSlash: true })).toBe('/parley/poll/')
    expect(routedPath('/', all)).toBe('/')
  })
})

describe('routePath', () => {
  it("holds a route's escapes and `%` as written, as a request's routedPath reads them", () => {
    expect(routePath('/b%61/parley/ws', LITERAL_PATHS)).toBe('/b%2561/parley/ws')
    expect(routedPath('/b%61/parley/ws', LITERAL_PATHS)).toBe('/ba/parley/ws')
    expect(routePath('/caf%C3%A9/parley/poll', LITERAL_PATHS)).toBe('/caf%25C3%25A9/parley/poll')
    expect(routedPath('/caf%25C3%25A9/parley/poll', LITERAL_PATHS)).toBe('/caf%25C3%25A9/parley/poll')
    expect(routePath('/a::b/parley/poll', LITERAL_PATHS)).toBe('/a:b/parley/poll')
  })

  it('folds slashes, drops one trailing slash and lowers letters only where the router does', () => {
    const all = { anyCase: true, duplicateSlashes: true, trailingSlash: true }
    expect(routePath('//Api//Parley/', LITERAL_PATHS)).toBe('//Api//Parley/')
    expect(routePath('//Api//Parley/', all)).toBe('/api/parley')
    expect(routePath('/B%61//Parley/', all)).toBe('/b%2561/parley')
  })
})

describe('pathRules', () => {
  it('reads the router options at the top of Fastify options or in routerOptions', () => {
    expect(pathRules(Fastify())).toEqual(LITERAL_PATHS)
    const given = pathRules(
      Fastify({ routerOptions: { ignoreDuplicateSlashes: true, ignoreTrailingSlash: true } }),
    )
    expect(given).toEqual({ anyCase: false, duplicateSlashes: true, trailingSlash: true })
    // Deprecated at the top (Fastify warns so), taken there when routerOptions leaves it out.
    const top = pathRules(Fastify({ ignoreTrailingSlash: true, routerOptions: { caseSensitive: false } }))
    expect(top).toEqual({ anyCase: true, duplicateSlashes: false, trailingSlash: true })
  })
})

describe('settleRouterReading', () => {
  // Fastify takes an option of routerOptions over the same one at the top of its options, but
  // initialConfig fills in routerOptions' own (false): the router alone tells which it took.
  it.each([
    [{ ignoreTrailingSlash: true, routerOptions: { ignoreTrailingSlash: false } }, false],
    [{ ignoreTrailingSlash: false, routerOptions: { ignoreTrailingSlash: true } }, true],
    [{ ignoreTrailingSlash: true, routerOptions: { caseSensitive: false } }, true],
    [{ ignoreTrailingSlash: true }, true],
    [{}, false],
  ] satisfies [FastifyServerOptions, boolean][])(
    'reads a trailing slash as the router does, given %o',
    async (options, trailingSlash) => {
      const app = Fastify(options)
      app.get('/parley/ws', async () => 'ws')
      const reading = routerReading(app)
      settleRouterReading(app, '/parley/ws', reading)
      expect(reading.rules.trailingSlash).toBe(trailingSlash)
      expect((await app.inject('/parley/ws/')).statusCode).toBe(trailingSlash ? 200 : 404)
      await app.close()
    },
  )

  it('reads doubled slashes as the router does, whichever option it took', async () => {
    const app = Fastify({ ignoreDuplicateSlashes: true, routerOptions: { ignoreDuplicateSlashes: false } })
    app.get('/parley/ws', async () => 'ws')
    const reading = routerReading(app)
    settleRouterReading(app, '/parley/ws', reading)
    expect(reading.rules.duplicateSlashes).toBe(false)
    expect((await app.inject('/parley//ws')).statusCode).toBe(404)
    await app.close()
  })

  it("takes no route of the application's with parameters for Parley's", async () => {
    const app = Fastify()
    app.get('/parley/ws', async () => 'ws')
    app.get('/*', async () => 'anything')
    const reading = routerReading(app)
    settleRouterReading(app, '/parley/ws', reading)
    expect(reading).toEqual({ semicolon: false, rules: LITERAL_PATHS })
    await app.close()
  })

  // Fastify hands useSemicolonDelimiter on to its router, whose types do not list it.
  const router = (options: object) => options as NonNullable<FastifyServerOptions['routerOptions']>
  it.each([
    [{ useSemicolonDelimiter: true, routerOptions: router({ useSemicolonDelimiter: false }) }, false],
    [{ useSemicolonDelimiter: true, routerOptions: { caseSensitive: false } }, true],
    [{ routerOptions: router({ useSemicolonDelimiter: true }) }, true],
  ] satisfies [FastifyServerOptions, boolean][])(
    'reads a ; as the router does, given %o',
    async (options, semicolon) => {
      const app = Fastify(options)
      app.get('/parley/ws', async () => 'ws')
      const reading = routerReading(app)
      settleRouterReading(app, '/parley/ws', reading)
      expect(reading.semicolon).toBe(semicolon)
      expect((await app.inject('/parley/ws;v=1')).statusCode).toBe(semicolon ? 200 : 404)
      await app.close()
    },
  )
})
