// What Parley writes to the application's log: its routes are quiet by default (SSE and polling
// clients make thousands of requests a minute), at the level the application chooses.
import http from 'node:http'
import http2 from 'node:http2'
import { Writable } from 'node:stream'
import { PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import parley, { type ParleyServerOptions } from '@parley/server'
import Fastify, {
  type FastifyInstance,
  type FastifyLoggerOptions,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { upgradeStatus } from './upgrade-status.js'

const clients: RawClient[] = []
let close: (() => Promise<void>) | undefined

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await close?.()
  close = undefined
})

/** A server whose log lines are kept, with one route of the application's own. */
async function logged(
  options: ParleyServerOptions,
  level = 'info',
  logger: FastifyLoggerOptions = {},
  server: FastifyServerOptions = {},
) {
  const lines: { msg: string; url?: string; req?: { url?: string; own?: boolean } }[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  const app = Fastify({ ...server, logger: { ...logger, level, stream } })
  await app.register(parley, options)
  app.get('/mine', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  close = () => app.close()
  const { port } = app.server.address() as { port: number }
  return { app, base: `http://127.0.0.1:${port}/parley`, lines, port }
}

/** Closes the server, then gives `[count, total]` of each line that says `text`: a burst's rest comes at close. */
async function burstAfterClose(lines: { msg: string }[], text: string) {
  await close?.()
  close = undefined
  return lines
    .filter((l) => l.msg.includes(text))
    .map((line) => {
      const { count, total } = line as { count?: number; total?: number }
      return [count, total]
    })
}

const requestLines = (lines: { msg: string; req?: { url?: string } }[], path: string) =>
  lines.filter((l) => l.msg === 'incoming request' && l.req?.url?.startsWith(path))

describe("Parley's routes", () => {
  it('write no request lines by default, while the application’s own routes still do', async () => {
    const { app, base, lines } = await logged({})
    clients.push(await rawConnect('polling', base))
    await app.inject({ url: '/mine' })
    expect(requestLines(lines, '/parley')).toEqual([])
    expect(requestLines(lines, '/mine')).toHaveLength(1)
  })

  it('log at the level the application chose', async () => {
    const { base, lines } = await logged({ logLevel: 'info' })
    clients.push(await rawConnect('polling', base))
    expect(requestLines(lines, '/parley/poll').length).toBeGreaterThan(0)
  })

  it('log the session id of an SSE or polling request cut to its first six characters', async () => {
    const { base, lines } = await logged({ logLevel: 'info' })
    for (const transport of ['sse', 'polling'] as const) {
      const client = await rawConnect(transport, base)
      clients.push(client)
      // A POST too, and a request the endpoint refuses (405).
      await client.send({ type: PacketType.ACK, ack: 0 })
      await fetch(`${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${client.sid}`, { method: 'PUT' })
      const path = `/parley/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${client.sid.slice(0, 6)}...`
      await until(() => requestLines(lines, path).length >= 3, 3000, `${transport} request lines`)
      expect(JSON.stringify(lines)).not.toContain(client.sid)
    }
  })

  it('mask a session id whose key is written in another way the router reads as sid', async () => {
    const { base, lines, port } = await logged({ logLevel: 'info' })
    const client = await rawConnect('polling', base)
    clients.push(client)
    // Percent-encoded, and after a '#' (where the router's query begins when no '?' came first):
    // each is a GET of the session, served as such.
    const targets = [
      `/parley/poll?v=1&%73id=${client.sid}`,
      `/parley/poll?v=1&s%69d=${client.sid}&ack=0`,
      `/parley/poll#sid=${client.sid}&v=1`,
    ]
    for (const path of targets) {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const request = http.request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
          res.resume()
          resolve(res.statusCode)
        })
        request.on('error', reject)
        request.end()
      })
      expect(status).toBe(200)
    }
    await until(() => targets.every((path) => requestLines(lines, path.split('=')[0]!).length > 0))
    expect(JSON.stringify(lines)).not.toContain(client.sid)
    expect(JSON.stringify(lines)).toContain(`${client.sid.slice(0, 6)}...`)
  })

  it('mask a session id after a ; where the application has the router read a query there', async () => {
    // Fastify hands the option on to its router, whose types do not list it.
    const routerOptions: NonNullable<FastifyServerOptions['routerOptions']> & {
      useSemicolonDelimiter: boolean
    } = {
      useSemicolonDelimiter: true,
    }
    const { base, lines, port } = await logged({ logLevel: 'info' }, 'info', {}, { routerOptions })
    const client = await rawConnect('polling', base)
    clients.push(client)
    const path = `/parley/poll;sid=${client.sid}&v=1`
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
        res.resume()
        resolve(res.statusCode)
      })
      request.on('error', reject)
      request.end()
    })
    // Served as a GET of the session: the router read its sid after the ';'.
    expect(status).toBe(200)
    await until(() => requestLines(lines, '/parley/poll;sid=').length > 0, 3000, 'the request line')
    expect(requestLines(lines, '/parley/poll;sid=')[0]!.req!.url).toBe(
      `/parley/poll;sid=${client.sid.slice(0, 6)}...&v=1`,
    )
    expect(JSON.stringify(lines)).not.toContain(client.sid)
  })

  it('keep the application’s own request serializer, with session ids masked in what it gives', async () => {
    const { base, lines } = await logged({ logLevel: 'info' }, 'info', {
      serializers: { req: (req: { url: string }) => ({ url: req.url, own: true }) },
    })
    const client = await rawConnect('polling', base)
    clients.push(client)
    await until(() => requestLines(lines, '/parley/poll?v=1&sid=').length > 0)
    const line = requestLines(lines, '/parley/poll?v=1&sid=')[0]!
    expect(line.req).toEqual({ url: `/parley/poll?v=1&sid=${client.sid.slice(0, 6)}...`, own: true })
    expect(JSON.stringify(lines)).not.toContain(client.sid)
  })

  const loud: [string, FastifyServerOptions][] = [
    ['by default', {}],
    ['disableRequestLogging: false', { disableRequestLogging: false }],
    ['a logController that keeps them', { logController: new LogController() }],
  ]
  it.each(loud)(
    'mask a session id in the lines of a URL under their path that no route serves: %s',
    async (_, server) => {
      const { base, lines, port } = await logged({}, 'info', {}, server)
      const client = await rawConnect('polling', base)
      clients.push(client)
      // A mistyped endpoint, and one past the end of a real one: Fastify's 404, its lines masked.
      const paths = [`/parley/pol?v=1&sid=${client.sid}&ack=0`, `/parley/poll/x;sid=${client.sid}`]
      for (const path of paths) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`)
        expect(res.status).toBe(404)
        expect(await res.json()).toEqual({
          message: `Route GET:${path} not found`,
          error: 'Not Found',
          statusCode: 404,
        })
      }
      const masked = [
        `/parley/pol?v=1&sid=${client.sid.slice(0, 6)}...&ack=0`,
        `/parley/poll/x;sid=${client.sid.slice(0, 6)}...`,
      ]
      await until(() => lines.filter((l) => l.msg.endsWith('not found')).length === 2, 3000, 'the 404 lines')
      expect(requestLines(lines, '/parley/pol').map((l) => l.req?.url)).toEqual(masked)
      expect(lines.filter((l) => l.msg.endsWith('not found')).map((l) => l.msg)).toEqual(
        masked.map((url) => `Route GET:${url} not found`),
      )
      expect(JSON.stringify(lines)).not.toContain(client.sid)
    },
  )

  it.each([
    ['by default', {}],
    ['where the router takes // for /', { routerOptions: { ignoreDuplicateSlashes: true } }],
  ] as [string, FastifyServerOptions][])(
    'mask a session id in the 404 lines of a URL under their path with more slashes before it: %s',
    async (_, server) => {
      const { base, lines, port } = await logged({}, 'info', {}, server)
      const client = await rawConnect('polling', base)
      clients.push(client)
      // What a client whose URL ends in `/` (or `//`, or `///`) asks for once `/parley` is joined
      // to it: no endpoint (unless the router takes `//` for `/`), and a mistyped one.
      const paths = [
        `//parley/poll?v=1&sid=${client.sid}&ack=0`,
        `//parley/pol?v=1&sid=${client.sid}`,
        `///parley/poll?v=1&sid=${client.sid}&ack=0`,
        `////parley/pol?v=1&sid=${client.sid}`,
      ]
      const reached: string[] = []
      for (const path of paths) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`)
        await res.arrayBuffer()
        if (res.status === 404) reached.push(path)
      }
      expect(reached.length).toBeGreaterThan(0)
      await until(
        () => lines.filter((l) => l.msg.endsWith('not found')).length === reached.length,
        3000,
        'the 404 lines',
      )
      // Logged as the other 404s under their path: the first six characters of the sid.
      const masked = reached.map((path) => path.replace(client.sid, `${client.sid.slice(0, 6)}...`))
      expect(lines.filter((l) => l.msg.endsWith('not found')).map((l) => l.msg)).toEqual(
        masked.map((url) => `Route GET:${url} not found`),
      )
      expect(JSON.stringify(lines)).not.toContain(client.sid)
    },
  )

  it('mask a session id in the 404 lines of a URL with more slashes before their path, under a prefix', async () => {
    const lines: { msg: string; req?: { url?: string } }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const app = Fastify({ logger: { level: 'info', stream } })
    await app.register(async (scope) => scope.register(parley, {}), { prefix: '/api' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    close = () => app.close()
    const { port } = app.server.address() as { port: number }
    const client = await rawConnect('polling', `http://127.0.0.1:${port}/api/parley`)
    clients.push(client)
    // What a client whose URL is `.../api/` (or `.../api//`) asks for once `/parley` is joined to it.
    const paths = [`/api//parley/poll?v=1&sid=${client.sid}&ack=0`, `/api///parley/pol?v=1&sid=${client.sid}`]
    for (const path of paths) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      await res.arrayBuffer()
      expect(res.status).toBe(404)
    }
    await until(() => lines.filter((l) => l.msg.endsWith('not found')).length === 2, 3000, 'the 404 lines')
    const masked = paths.map((path) => path.replace(client.sid, `${client.sid.slice(0, 6)}...`))
    expect(lines.filter((l) => l.msg.endsWith('not found')).map((l) => l.msg)).toEqual(
      masked.map((url) => `Route GET:${url} not found`),
    )
    expect(JSON.stringify(lines)).not.toContain(client.sid)
  })

  it("mask a session id in the 404 lines of a URL with slashes before the prefix, given the README's rewriteUrl", async () => {
    const lines: { msg: string; req?: { url?: string } }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    // Fastify gives the 404 of `//api/...` to a context above Parley's, which Parley cannot reach:
    // the application folds the leading slashes (see the README's Security).
    const app = Fastify({
      logger: { level: 'info', stream },
      rewriteUrl: (req) => (req.url ?? '/').replace(/^\/{2,}/, '/'),
    })
    await app.register(async (scope) => scope.register(parley, {}), { prefix: '/api' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    close = () => app.close()
    const { port } = app.server.address() as { port: number }
    // A client whose URL is the origin with a `/` (or `//`) at its end: its endpoints are served.
    const client = await rawConnect('polling', `http://127.0.0.1:${port}//api/parley`)
    clients.push(client)
    const paths = [`//api/parley/pol?v=1&sid=${client.sid}`, `///api/parley/pol?v=1&sid=${client.sid}`]
    for (const path of paths) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      await res.arrayBuffer()
      expect(res.status).toBe(404)
    }
    await until(() => lines.filter((l) => l.msg.endsWith('not found')).length === 2, 3000, 'the 404 lines')
    const masked = `/api/parley/pol?v=1&sid=${client.sid.slice(0, 6)}...`
    expect(lines.filter((l) => l.msg.endsWith('not found')).map((l) => l.msg)).toEqual([
      `Route GET:${masked} not found`,
      `Route GET:${masked} not found`,
    ])
    expect(JSON.stringify(lines)).not.toContain(client.sid)
  })

  it('mask the whole session id of a 404 line whose URL holds whitespace', async () => {
    // Node's HTTP/1.1 parser refuses whitespace in a request's target, even with
    // `insecureHTTPParser`; an HTTP/2 `:path` takes a 0xA0 byte, which reaches `request.url` as
    // U+00A0: whitespace to a pattern, in the middle of the sid.
    const sid = 'abcdefgh\u00a0ijklmnop'
    const lines: { msg: string; req?: { url?: string } }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const app = Fastify({ http2: true, logger: { level: 'info', stream } })
    await app.register(parley, {})
    await app.listen({ port: 0, host: '127.0.0.1' })
    close = () => app.close()
    const { port } = app.server.address() as { port: number }
    const session = http2.connect(`http://127.0.0.1:${port}`)
    try {
      const status = await new Promise<unknown>((resolve, reject) => {
        const request = session.request({ ':path': `/parley/pol?v=1&sid=${sid}&ack=0` })
        request.on('response', (headers) => resolve(headers[':status']))
        request.on('error', reject)
        request.resume()
        request.end()
      })
      expect(status).toBe(404)
    } finally {
      session.close()
    }
    await until(() => lines.some((l) => l.msg.endsWith('not found')), 3000, 'the 404 line')
    const masked = '/parley/pol?v=1&sid=abcdef...&ack=0'
    expect(requestLines(lines, '/parley/pol').map((l) => l.req?.url)).toEqual([masked])
    expect(lines.filter((l) => l.msg.endsWith('not found')).map((l) => l.msg)).toEqual([
      `Route GET:${masked} not found`,
    ])
    expect(JSON.stringify(lines)).not.toContain('ijklmnop')
  })

  /** A controller that turns every request line off, as an application may write its own. */
  class Quiet extends LogController {
    override isLogDisabled(): boolean {
      return true
    }
  }
  const quiet: [string, FastifyServerOptions][] = [
    ['disableRequestLogging: true', { disableRequestLogging: true }],
    ['disableRequestLogging as a function', { disableRequestLogging: () => true }],
    [
      'a logController that disables them',
      { logController: new LogController({ disableRequestLogging: true }) },
    ],
    ['a logController of its own', { logController: new Quiet() }],
  ]
  it.each(quiet)(
    'write no 404 line where the application turned request lines off: %s',
    async (_, server) => {
      const { lines, port } = await logged({}, 'info', {}, server)
      expect((await fetch(`http://127.0.0.1:${port}/parley/pol?v=1&sid=abcdefghij`)).status).toBe(404)
      expect((await fetch(`http://127.0.0.1:${port}/elsewhere`)).status).toBe(404)
      expect((await fetch(`http://127.0.0.1:${port}/mine`)).status).toBe(200)
      expect(lines.filter((l) => l.msg.endsWith('not found') || l.msg === 'incoming request')).toEqual([])
    },
  )

  it('write the 404 line of the application’s own logController, its session id masked', async () => {
    class Own extends LogController {
      override routeNotFound(request: FastifyRequest): void {
        request.log.warn(`no such page: ${request.url}`)
      }
    }
    const sid = 'abcdefghijklmnop'
    const { lines, port } = await logged({}, 'info', {}, { logController: new Own() })
    expect((await fetch(`http://127.0.0.1:${port}/parley/pol?v=1&sid=${sid}`)).status).toBe(404)
    await until(() => lines.some((l) => l.msg.startsWith('no such page')), 3000, 'the 404 line')
    expect(lines.filter((l) => l.msg.startsWith('no such page')).map((l) => l.msg)).toEqual([
      'no such page: /parley/pol?v=1&sid=abcdef...',
    ])
    expect(lines.filter((l) => l.msg.endsWith('not found'))).toEqual([])
    expect(JSON.stringify(lines)).not.toContain(sid)
  })

  it('answer the 404s under their path, and leave the application’s own to its handler', async () => {
    /** What the application's not-found handler and Parley's answer, with Parley at `path`. */
    async function answers(path: string) {
      const app = Fastify()
      app.setNotFoundHandler((_request, reply) => reply.code(404).send('not here'))
      await app.register(parley, { path })
      try {
        const outside = await app.inject({ url: '/elsewhere?sid=abcdefghij' })
        const inside = await app.inject({ url: `${path === '/' ? '' : path}/pol?sid=abcdefghij` })
        return [outside.body, inside.body]
      } finally {
        await app.close()
      }
    }
    const fastify404 = {
      message: 'Route GET:/parley/pol?sid=abcdefghij not found',
      error: 'Not Found',
      statusCode: 404,
    }
    expect(await answers('/parley')).toEqual(['not here', JSON.stringify(fastify404)])
    // With `path: '/'` every URL is the application's.
    expect(await answers('/')).toEqual(['not here', 'not here'])
  })

  it('refuse at start a not-found handler of the application’s for their path', async () => {
    // Parley in a context of the application's without a prefix, or prefixed `/api` or `/api/`, where the
    // application's not-found handler is set in a context of its own.
    const cases = [
      { outer: '', prefix: '/parley', message: 'is "/parley", where Parley answers' },
      { outer: '', prefix: '/parley/', message: 'is "/parley", where Parley answers' },
      { outer: '/api', prefix: '/parley', message: 'is "/parley" (under "/api"), where' },
      // Fastify joins `/api/` and `/parley` into `/api/parley`, without a double slash.
      { outer: '/api/', prefix: '/parley', message: 'is "/parley" (under "/api/"), where' },
    ]
    for (const { outer, prefix, message } of cases) {
      const app = Fastify()
      try {
        app.register(
          async (scope) => {
            await scope.register(parley, {})
            scope.register(
              async (own) => {
                own.setNotFoundHandler((_request, reply) => reply.code(404).send('mine'))
              },
              { prefix },
            )
          },
          { prefix: outer },
        )
        const refused = await app.ready().then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(refused).toMatchObject({
          name: 'ParleyOptionError',
          code: 'PARLEY_INVALID_OPTION',
          option: 'path',
          message: expect.stringContaining(message),
        })
        expect(refused).toMatchObject({
          message: expect.stringContaining('set your not-found handler for another prefix'),
        })
      } finally {
        await app.close().catch(() => undefined)
      }
    }
  })

  it('refuse at start a not-found handler of the application’s for their path, set before them', async () => {
    /** Sets the application's handler for `/parley` in a context of its own. */
    const own = (scope: FastifyInstance) =>
      scope.register(
        async (mine) => {
          mine.setNotFoundHandler((_request, reply) => reply.code(404).send('mine'))
        },
        { prefix: '/parley' },
      )
    // Before Parley in its own context; before the context Parley is in (a sibling of it).
    const cases = [
      {
        build: (app: FastifyInstance) => {
          own(app)
          app.register(parley, {})
        },
        message: 'is "/parley", where Parley answers',
      },
      {
        build: (app: FastifyInstance) => {
          app.register(async (scope) => own(scope))
          app.register(async (scope) => scope.register(parley, {}))
        },
        message: 'is "/parley", where Parley answers',
      },
      {
        build: (app: FastifyInstance) => {
          app.register(async (scope) => own(scope), { prefix: '/api' })
          app.register(async (scope) => scope.register(parley, {}), { prefix: '/api' })
        },
        message: 'is "/parley" (under "/api"), where',
      },
    ]
    for (const { build, message } of cases) {
      // Without the refusal, Fastify's router throws where nothing catches it: the test fails
      // by the plugin's timeout, not by the whole test's.
      const app = Fastify({ pluginTimeout: 3000 })
      try {
        build(app)
        const refused = await app.ready().then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(refused).toMatchObject({
          name: 'ParleyOptionError',
          code: 'PARLEY_INVALID_OPTION',
          option: 'path',
          message: expect.stringContaining(message),
        })
        expect(refused).toMatchObject({
          message: expect.stringContaining(
            'the application set a not-found handler for that prefix before Parley: set your not-found handler for another prefix',
          ),
        })
      } finally {
        await app.close().catch(() => undefined)
      }
    }
  })

  it('leave the application’s not-found handler for its root, set after theirs, the rest', async () => {
    const app = Fastify()
    try {
      await app.register(parley, {})
      app.setNotFoundHandler((_request, reply) => reply.code(404).send('not here'))
      expect((await app.inject({ url: '/elsewhere' })).body).toBe('not here')
      expect(await app.inject({ url: '/parley/pol' }).then((r) => r.json())).toMatchObject({
        error: 'Not Found',
      })
    } finally {
      await app.close()
    }
  })

  it('leave a not-found handler deeper in their path to the application', async () => {
    const app = Fastify()
    try {
      await app.register(parley, {})
      await app.register(
        async (scope) => {
          scope.setNotFoundHandler((_request, reply) => reply.code(404).send('admin’s'))
        },
        { prefix: '/parley/admin' },
      )
      expect((await app.inject({ url: '/parley/admin/x?sid=abcdefghij' })).body).toBe('admin’s')
      expect(await app.inject({ url: '/parley/pol' }).then((r) => r.json())).toMatchObject({
        error: 'Not Found',
      })
    } finally {
      await app.close()
    }
  })

  it('let a catch-all route of the application take the URLs of their path no endpoint serves', async () => {
    const app = Fastify()
    try {
      await app.register(parley, {})
      app.all('/parley/*', async () => 'yours')
      expect((await app.inject({ url: '/parley/pol?sid=abcdefghij' })).body).toBe('yours')
      // Parley's own endpoints still answer: Fastify's router takes a static route first.
      expect(await app.inject({ url: '/parley/poll?v=1' }).then((r) => r.json())).toMatchObject({
        code: 'PARLEY_BAD_REQUEST',
      })
    } finally {
      await app.close()
    }
  })

  it('refuse a level that is not one', async () => {
    const app = Fastify()
    await expect(app.register(parley, { logLevel: 'loud' as never })).rejects.toThrow(
      /logLevel.*must be one of/,
    )
  })
})

describe('an open WebSocket', () => {
  it('has its errors logged once, at debug, by the endpoints’ logger', async () => {
    const { base, lines } = await logged({ maxPayload: 1000 }, 'debug')
    const client = await rawConnect('websocket', base)
    clients.push(client)
    // Past maxPayload, ws reports an error and closes with 1009 by itself.
    await client.sendRaw(`[5,1,"chat",[${JSON.stringify('x'.repeat(2000))}],0]`)
    expect(await client.ended).toBe(1009)
    await until(() => lines.some((l) => l.msg === 'parley: websocket error'))
    expect(lines.filter((l) => l.msg === 'parley: websocket error')).toHaveLength(1)
  })
})

describe('a refused origin', () => {
  it('is logged at warn with the origin seen and the own origin computed, once per burst', async () => {
    const { base, lines, port } = await logged({})
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/sse?v=1`, {
        method: 'POST',
        body: '[8,{}]',
        headers: { origin: 'https://app.example' },
      })
      expect(res.status).toBe(403)
    }
    const refusals = lines.filter((l) => l.msg.includes('refused a request from origin'))
    expect(refusals).toHaveLength(1)
    expect(refusals[0]).toMatchObject({
      origin: 'https://app.example',
      ownOrigin: `http://127.0.0.1:${port}`,
    })
    // The rest of the burst is logged at close, not lost.
    expect(await burstAfterClose(lines, 'refused a request from origin')).toEqual([
      [1, 1],
      [2, 3],
    ])
  })

  it('is computed behind a proxy from X-Forwarded-Host and -Proto when Fastify trusts the proxy', async () => {
    const app = Fastify({ trustProxy: true })
    await app.register(parley)
    await app.listen({ port: 0, host: '127.0.0.1' })
    close = () => app.close()
    const { port } = app.server.address() as { port: number }
    // nginx with `proxy_set_header Host $host` drops the port: the forwarded headers keep it.
    const res = await fetch(`http://127.0.0.1:${port}/parley/sse?v=1`, {
      method: 'POST',
      body: '[8,{}]',
      headers: {
        origin: 'https://chat.example:8443',
        'x-forwarded-host': 'chat.example:8443',
        'x-forwarded-proto': 'https',
      },
    })
    expect(res.status).toBe(200)
  })
})

describe('a request of another protocol version', () => {
  it('is logged at warn with its endpoint and what it asked for, once per burst, the rest at close', async () => {
    const { base, lines } = await logged({})
    for (const url of [`${base}/sse?v=2`, `${base}/poll`, `${base}/poll?v=1&v=1`]) {
      expect((await fetch(url, { method: 'POST', body: '[8,{}]' })).status).toBe(400)
    }
    const ws = base.replace('http', 'ws')
    expect(await upgradeStatus(`${ws}/ws?v=0`, [WS_SUBPROTOCOL])).toBe(400)
    expect(await upgradeStatus(`${ws}/ws?v=1`, ['parley.v2', 'chat'])).toBe(400)
    const refusals = lines.filter((l) => l.msg.includes('for another protocol version'))
    expect(refusals).toHaveLength(1)
    expect(refusals[0]).toMatchObject({ level: 40, transport: 'sse', v: '2', count: 1, total: 1 })
    expect(refusals[0]!.msg).toContain('(the first: sse, v=2): this server speaks v=1')
    expect(await burstAfterClose(lines, 'for another protocol version')).toEqual([
      [1, 1],
      [4, 5],
    ])
    // The rest of the burst names its first: the polling request without a v.
    const rest = lines.filter((l) => l.msg.includes('for another protocol version'))[1]
    expect(rest).toMatchObject({ transport: 'polling', v: null })
  })

  it('names the subprotocols a refused WebSocket upgrade offered', async () => {
    const { base, lines } = await logged({})
    const ws = base.replace('http', 'ws')
    expect(await upgradeStatus(`${ws}/ws?v=1`, ['parley.v2', 'chat'])).toBe(400)
    const refusals = lines.filter((l) => l.msg.includes('for another protocol version'))
    expect(refusals).toHaveLength(1)
    expect(refusals[0]).toMatchObject({ transport: 'websocket', v: '1', subprotocols: 'parley.v2,chat' })
    expect(refusals[0]!.msg).toContain('(the first: websocket, v=1, subprotocols parley.v2,chat)')
  })
})

describe('sessions a client ends with invalid packets', () => {
  it('are logged at warn once per burst, with the first reason, not once each, the rest at close', async () => {
    const { base, lines } = await logged({})
    for (let i = 0; i < 3; i++) {
      const client = await rawConnect('websocket', base)
      clients.push(client)
      await client.sendRaw('not a packet')
      await client.ended
    }
    const invalid = lines.filter((l) => l.msg.includes('for invalid packets'))
    expect(invalid).toHaveLength(1)
    expect(invalid[0]).toMatchObject({ level: 40, code: 'PARLEY_INVALID_JSON', count: 1 })
    expect(invalid[0]!.msg).toContain('the first: PARLEY_INVALID_JSON: ')
    expect(await burstAfterClose(lines, 'for invalid packets')).toEqual([
      [1, 1],
      [2, 3],
    ])
  })
})
