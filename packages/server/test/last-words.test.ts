// At close, a session whose client had no GET waiting keeps its CLOSE 'server shutdown' for
// that client's next GET, whatever Fastify answers other requests while it closes; once the
// plugin has closed, or from the start of its close when Fastify refuses every request then, the
// endpoints' other requests get its coded 503 rather than Fastify's. Whatever the plugin answers
// in Fastify's place, a page of an origin the endpoints do not allow gets their 403 first.
import { connect } from '@parley/client'
import { decodeText, PacketType, type ParleyError } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { Cluster } from './cluster-adapter.js'
import { closeApp, sleep, startServer, until, within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { stepWallClock } from './wall-clock.js'

const apps: FastifyInstance[] = []
afterEach(async () => {
  for (const app of apps.splice(0)) await closeApp(app)
})

/** A session opened by its handshake POST alone: the client has not sent a GET yet. */
async function handshake(endpoint: string): Promise<string> {
  const res = await fetch(`${endpoint}?v=1`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify([8, {}]),
  })
  const decoded = decodeText(await res.text())
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
  return decoded.packet.sid
}

const closed = (app: FastifyInstance) => app.parley.closed

/** The page the servers below allow (`allowedOrigins`), and one they do not. */
const PAGE = 'http://page.test'
const ELSEWHERE = 'http://elsewhere.test'

describe.each([
  ['default Fastify options', {}],
  ['return503OnClosing: false', { return503OnClosing: false }],
] satisfies [string, FastifyServerOptions][])(
  'at close, with %s',
  (_name, fastifyOptions: FastifyServerOptions) => {
    it.each([
      ['sse', 'sse'],
      ['poll', 'polling'],
    ])('hands the CLOSE to the next GET of a %s client that had none waiting', async (segment) => {
      const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, fastifyOptions)
      apps.push(app)
      const endpoint = `${base}/${segment}`
      const sid = await handshake(endpoint)
      const closing = app.close()
      await until(() => closed(app), 2000, 'the server closing')

      const res = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: 'http://page.test' } })
      expect(res.status).toBe(200)
      // The page that holds the session can read it, and the connection goes with the server.
      expect(res.headers.get('access-control-allow-origin')).toBe('http://page.test')
      expect(res.headers.get('connection')).toBe('close')
      expect(packetsOf(await res.text())).toEqual([
        expect.objectContaining({
          type: PacketType.CLOSE,
          reason: 'server shutdown',
          retryAfter: expect.any(Number),
        }),
      ])
      await closing

      // Handed out once: the sid is unknown from then on (the server no longer listens).
      await expect(fetch(`${endpoint}?v=1&sid=${sid}`)).rejects.toThrow()
    })

    it('refuses the last words to a page of an origin not allowed, and keeps them for the client', async () => {
      const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, fastifyOptions)
      apps.push(app)
      const endpoint = `${base}/poll`
      const sid = await handshake(endpoint)
      const closing = app.close()
      await until(() => closed(app), 2000, 'the server closing')

      const foreign = await exchange(`${endpoint}?v=1&sid=${sid}`, 'GET', { Origin: ELSEWHERE })
      expect({ status: foreign.status, code: foreign.body.code }).toEqual({
        status: 403,
        code: 'PARLEY_ORIGIN_FORBIDDEN',
      })
      expect(foreign.headers['access-control-allow-origin']).toBe(ELSEWHERE)
      const res = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
      expect(packetsOf(await res.text())).toEqual([
        expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
      ])
      await closing
    })

    it("answers the endpoints' other requests with Parley's 503, readable by the page, and closes without the late client", async () => {
      const { app, base } = await startServer(
        { allowedOrigins: [PAGE] },
        (app) => {
          app.get('/app', async () => 'mine')
        },
        fastifyOptions,
      )
      apps.push(app)
      await handshake(`${base}/poll`)
      const closing = app.close()
      await until(() => closed(app), 2000, 'the server closing')
      const page = { Origin: 'http://page.test' }
      const requests: [string, string, string][] = [
        ['GET', 'poll?v=1&sid=nosuchsessionatall000', ''],
        ['GET', 'sse?v=1&sid=nosuchsessionatall000', ''],
        ['POST', 'poll?v=1', '[8,{}]'],
        ['POST', 'sse?v=1&sid=nosuchsessionatall000', '[3]'],
      ]
      for (const [method, path, body] of requests) {
        const answer = await exchange(`${base}/${path}`, method, page, body)
        // A code the client reads as "try again elsewhere", where Fastify's own has none and,
        // without CORS headers, cannot even be read by a page on another origin.
        expect({ method, path, status: answer.status, body: answer.body }).toEqual({
          method,
          path,
          status: 503,
          body: { code: 'PARLEY_SERVER_SHUTTING_DOWN', message: 'the server is shutting down' },
        })
        expect(answer.headers['access-control-allow-origin']).toBe('http://page.test')
        expect(answer.headers['cache-control']).toBe('no-store')
      }
      // A page of an origin the endpoints do not allow is refused as they always refuse it.
      for (const [method, path, body] of requests) {
        const answer = await exchange(`${base}/${path}`, method, { Origin: ELSEWHERE }, body)
        expect({ method, path, status: answer.status, code: answer.body.code }).toEqual({
          method,
          path,
          status: 403,
          code: 'PARLEY_ORIGIN_FORBIDDEN',
        })
        expect(answer.headers['access-control-allow-origin']).toBe(ELSEWHERE)
      }
      // The application's own routes are answered as Fastify answers them while it closes.
      const mine = await exchange(base.replace('/parley', '/app'), 'GET', page)
      expect(mine.status).toBe(fastifyOptions.return503OnClosing === false ? 200 : 503)
      expect(mine.body.code).toBeUndefined()
      // Parley's client reads it as the shutdown, with the server's own message.
      const client = connect(base, { transports: ['sse'], reconnection: false })
      const error = await new Promise<ParleyError<string>>((resolve) => client.once('connect_error', resolve))
      client.disconnect()
      expect({ code: error.code, message: error.message }).toEqual({
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the server is shutting down',
      })
      // The session's own client never asks for its CLOSE: the close ends without it.
      await closing
      expect(app.server.listening).toBe(false)
    })
  },
)

describe.each([
  ['default Fastify options', {}],
  ['return503OnClosing: false', { return503OnClosing: false }],
] satisfies [string, FastifyServerOptions][])(
  'during the drain of app.close() alone, with %s',
  (_name, fastifyOptions: FastifyServerOptions) => {
    it("answers the endpoints' handshakes with Parley's coded 503, readable by the page, and other origins' with 403", async () => {
      // A store that holds its answer: the drain goes on until the test lets it.
      const cluster = new Cluster({ handoff: true })
      let storeAnswers = () => {}
      cluster.storeAnswersAfter = new Promise<void>((resolve) => {
        storeAnswers = resolve
      })
      const { app, base } = await startServer(
        { adapter: cluster.adapter('a'), allowedOrigins: [PAGE], handoff: { timeout: 5000 } },
        undefined,
        fastifyOptions,
      )
      apps.push(app)
      await handshake(`${base}/poll`)
      const closing = app.close()
      try {
        await until(() => cluster.handOffSids.length > 0, 2000, 'the drain storing the session')
        const page = { Origin: 'http://page.test' }
        for (const path of ['poll?v=1', 'sse?v=1']) {
          const answer = await exchange(`${base}/${path}`, 'POST', page, '[8,{}]')
          // Fastify's own 503 (return503OnClosing) has no code, and no CORS headers for the page.
          expect({ path, status: answer.status, body: answer.body }).toEqual({
            path,
            status: 503,
            body: { code: 'PARLEY_SERVER_SHUTTING_DOWN', message: 'the server is shutting down' },
          })
          expect(answer.headers['access-control-allow-origin']).toBe('http://page.test')
          const foreign = await exchange(`${base}/${path}`, 'POST', { Origin: ELSEWHERE }, '[8,{}]')
          expect({ path, status: foreign.status, code: foreign.body.code }).toEqual({
            path,
            status: 403,
            code: 'PARLEY_ORIGIN_FORBIDDEN',
          })
        }
        const client = connect(base, { transports: ['polling'], reconnection: false })
        const error = await new Promise<ParleyError<string>>((resolve) =>
          client.once('connect_error', resolve),
        )
        client.disconnect()
        expect({ code: error.code, message: error.message }).toEqual({
          code: 'PARLEY_SERVER_SHUTTING_DOWN',
          message: 'the server is shutting down',
        })
        // Still draining: what answered was the drain's, not the closed plugin's.
        expect(closed(app)).toBe(false)
      } finally {
        storeAnswers()
        await closing
      }
    })
  },
)

describe('last words while the server runs', () => {
  it.each([
    ['sse', 'sse'],
    ['poll', 'polling'],
  ])(
    'answer a POST of their %s transport 204, unread, so that the next GET still gets them',
    async (segment) => {
      let ended = false
      const { app, base } = await startServer({}, (app) => {
        app.parley.on('connection', (socket) => {
          socket.on('n', () => {
            ended = true
            socket.disconnect()
          })
        })
      })
      apps.push(app)
      const endpoint = `${base}/${segment}`
      const sid = await handshake(endpoint)
      const url = `${endpoint}?v=1&sid=${sid}`
      // The event ends the session: its ACK and CLOSE wait for the next GET.
      expect((await fetch(url, { method: 'POST', body: '[5,1,"n",[],0]' })).status).toBe(204)
      await until(() => ended)
      const post = await fetch(url, { method: 'POST', body: '[5,2,"n",[],0]' })
      expect(post.status).toBe(204)
      expect(packetsOf(await (await fetch(url)).text())).toEqual([
        { type: PacketType.ACK, ack: 1 },
        expect.objectContaining({ type: PacketType.CLOSE, reason: 'server disconnect' }),
      ])
      // Once they are taken, the session is unknown.
      const after = await fetch(url, { method: 'POST', body: '[5,2,"n",[],0]' })
      expect(after.status).toBe(400)
      expect(((await after.json()) as { code?: string }).code).toBe('PARLEY_UNKNOWN_SESSION')
    },
  )

  it('wait for the next GET under the longest pingInterval too, past what a Node timer holds', async () => {
    let ended = false
    // The last words are kept for pingInterval + pingTimeout: here past 2^31-1 ms, which a Node
    // timer would take for 1 ms.
    const { app, base } = await startServer({ pingInterval: 2 ** 31 - 1 }, (app) => {
      app.parley.on('connection', (socket) => {
        socket.on('n', () => {
          ended = true
          socket.disconnect()
        })
      })
    })
    apps.push(app)
    const endpoint = `${base}/poll`
    const sid = await handshake(endpoint)
    const url = `${endpoint}?v=1&sid=${sid}`
    expect((await fetch(url, { method: 'POST', body: '[5,1,"n",[],0]' })).status).toBe(204)
    await until(() => ended)
    await sleep(50)
    expect(packetsOf(await (await fetch(url)).text())).toEqual([
      { type: PacketType.ACK, ack: 1 },
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server disconnect' }),
    ])
  })

  it('keeps at most eight maxBufferedBytes of them: the oldest go, and their resume still learns why', async () => {
    // 64 KiB per socket: 512 KiB of last words at most, about twenty sessions' worth below.
    const { app, base } = await startServer({ maxBufferedBytes: 64 * 1024 }, (app) => {
      app.parley.on('connection', (socket) => {
        socket.emit('history', 'h'.repeat(20_000))
        socket.disconnect()
      })
    })
    apps.push(app)
    const endpoint = `${base}/poll`
    const sids: string[] = []
    // Each session ends at once, its last words (the history and the CLOSE) kept for a GET that
    // never comes: a client that made sessions end could have the server keep them all.
    for (let i = 0; i < 40; i++) sids.push(await handshake(endpoint))

    const newest = await fetch(`${endpoint}?v=1&sid=${sids.at(-1)}`)
    const kept = packetsOf(await newest.text())
    expect(kept[0]).toMatchObject({ type: PacketType.EVENT, name: 'history' })
    expect(kept.at(-1)).toMatchObject({ type: PacketType.CLOSE, reason: 'server disconnect' })
    const oldest = await fetch(`${endpoint}?v=1&sid=${sids[0]}`)
    expect(oldest.status).toBe(400)
    expect(((await oldest.json()) as { code?: string }).code).toBe('PARLEY_UNKNOWN_SESSION')
    // Its resume is answered with the session's CLOSE all the same.
    const resumed = await fetch(`${endpoint}?v=1`, {
      method: 'POST',
      body: JSON.stringify([8, { sid: sids[0] }]),
    })
    expect(packetsOf(await resumed.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server disconnect' }),
    ])
  })
})

/** A listening server with Parley registered under `prefix`, and the instance it decorates. */
async function underPrefix(
  prefix: string,
  options: FastifyServerOptions = {},
): Promise<{ app: FastifyInstance; scoped: FastifyInstance; port: number }> {
  const app = Fastify(options)
  apps.push(app)
  let scoped: FastifyInstance | undefined
  await app.register(
    async (api) => {
      await api.register(parley, { allowedOrigins: [PAGE] })
      scoped = api
    },
    { prefix },
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  if (scoped === undefined) throw new Error(`Parley was not registered under ${prefix}`)
  return { app, scoped, port }
}

describe.each(['/api', '/api/'])('at close, with Parley under the prefix %s', (prefix) => {
  it('hands the CLOSE to the next GET of a poll client that had none waiting', async () => {
    const { app, scoped, port } = await underPrefix(prefix)
    // Fastify joins `/api/` and `/parley` into `/api/parley`.
    const endpoint = `http://127.0.0.1:${port}/api/parley/poll`
    const sid = await handshake(endpoint)
    const closing = app.close()
    await until(() => closed(scoped), 2000, 'the server closing')
    const res = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBe(PAGE)
    expect(packetsOf(await res.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })
})

describe('at close, with Parley under a prefix the router holds as written', () => {
  // The router decodes a request's path, never a route's: a `%` of the prefix is matched by a
  // `%25` of the URL, and `::` (Fastify's escaped colon) by one `:`. The answers at close are for
  // the URLs the routes served, and leave the others to Fastify.
  it.each([
    ['a percent sign', '/100%', '/100%25', '/100%2525'],
    ['an escaped colon', '/a::b', '/a:b', '/a::b'],
  ])(
    'with %s, hands the CLOSE to the URL the routes served, and no answer to another',
    async (_name, prefix, served, unserved) => {
      const { app, scoped, port } = await underPrefix(prefix)
      const origin = `http://127.0.0.1:${port}`
      const sid = await handshake(`${origin}${served}/parley/poll`)
      const elsewhere = await exchange(
        `${origin}${unserved}/parley/poll?v=1`,
        'POST',
        { Origin: PAGE },
        '[8,{}]',
      )
      expect(elsewhere.status).toBe(404)
      const closing = app.close()
      await until(() => closed(scoped), 2000, 'the server closing')
      const refused = await exchange(
        `${origin}${unserved}/parley/poll?v=1`,
        'POST',
        { Origin: PAGE },
        '[8,{}]',
      )
      // Fastify's bare 503, as for any URL of the application's while it closes.
      expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 503, code: undefined })
      const res = await fetch(`${origin}${served}/parley/poll?v=1&sid=${sid}`, { headers: { origin: PAGE } })
      expect(res.status).toBe(200)
      expect(packetsOf(await res.text())).toEqual([
        expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
      ])
      await closing
    },
  )

  it.each([
    // The router reads `/a:b//parley//poll` as the route `/a::b/parley/poll` holds it.
    [
      'an escaped colon',
      'a URL of doubled slashes the router folds',
      '/a::b',
      { ignoreDuplicateSlashes: true },
      '/a:b//parley//poll',
    ],
    // The router reads `/acme/parley/poll/` as the route `/:tenant/parley/poll`.
    [
      'a parameter',
      'a URL with a trailing slash the router ignores',
      '/:tenant',
      { ignoreTrailingSlash: true },
      '/acme/parley/poll/',
    ],
  ])('with %s, hands the CLOSE to %s', async (_name, _url, prefix, routerOptions, path) => {
    const { app, scoped, port } = await underPrefix(prefix, { routerOptions })
    const endpoint = `http://127.0.0.1:${port}${path}`
    const sid = await handshake(endpoint)
    const closing = app.close()
    await until(() => closed(scoped), 2000, 'the server closing')
    const res = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
    expect(res.status).toBe(200)
    expect(packetsOf(await res.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })

  it('with a percent sign, leaves a URL with a trailing slash to Fastify, as the router keeps it', async () => {
    // Fastify's default router serves `/100%25/parley/poll`, not `/100%25/parley/poll/`.
    const { app, scoped, port } = await underPrefix('/100%')
    const endpoint = `http://127.0.0.1:${port}/100%25/parley/poll`
    const sid = await handshake(endpoint)
    const slashed = `${endpoint}/?v=1&sid=${sid}`
    expect((await fetch(slashed, { headers: { origin: PAGE } })).status).toBe(404)
    const closing = app.close()
    await until(() => closed(scoped), 2000, 'the server closing')
    // Fastify's bare 503, as at any URL no route serves; the last words wait for the endpoint.
    const res = await fetch(slashed, { headers: { origin: PAGE } })
    expect(res.status).toBe(503)
    expect(await res.text()).not.toMatch(/PARLEY_|server shutdown/)
    const last = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
    expect(packetsOf(await last.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })
})

describe('at close, with a router that ignores letter case (caseSensitive: false)', () => {
  it('hands the CLOSE to the next GET of a poll client whose URL has other letters', async () => {
    const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, {
      routerOptions: { caseSensitive: false },
    })
    apps.push(app)
    const sid = await handshake(`${base}/poll`)
    const closing = app.close()
    await until(() => closed(app), 2000, 'the server closing')
    // The route served this URL while the server ran: its last words are for it too.
    const shouting = `${base.replace('/parley', '/PARLEY')}/Poll`
    const res = await fetch(`${shouting}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
    expect(res.status).toBe(200)
    expect(packetsOf(await res.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })

  it("answers a handshake in other letters with Parley's coded 503, not Fastify's bare one", async () => {
    const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, {
      routerOptions: { caseSensitive: false },
    })
    apps.push(app)
    // A session waiting for its GET holds the close open, for the handshake to come meanwhile.
    const sid = await handshake(`${base}/poll`)
    const closing = app.close()
    await until(() => closed(app), 2000, 'the server closing')
    const answer = await exchange(
      `${base.replace('/parley', '/Parley')}/POLL?v=1`,
      'POST',
      { Origin: PAGE },
      '[8,{}]',
    )
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
    await fetch(`${base}/poll?v=1&sid=${sid}`)
    await closing
  })
})

describe('at close, for every URL the router serves', () => {
  // Each URL reaches the polling endpoint while the server runs, as the application set its
  // router: the handshake below proves it. Its answers at close are for it too.
  it.each([
    ['a percent-encoded letter', {}, (base: string) => `${base}/%70oll`],
    [
      'a trailing slash (ignoreTrailingSlash)',
      { routerOptions: { ignoreTrailingSlash: true } },
      (base: string) => `${base}/poll/`,
    ],
    [
      'doubled slashes (ignoreDuplicateSlashes)',
      { routerOptions: { ignoreDuplicateSlashes: true } },
      (base: string) => `${base.replace('/parley', '//parley')}//poll`,
    ],
    [
      'a trailing slash given at the top of the options',
      { ignoreTrailingSlash: true },
      (base: string) => `${base}/poll/`,
    ],
    [
      'a trailing slash in routerOptions, which the router takes over the top of the options',
      { ignoreTrailingSlash: false, routerOptions: { ignoreTrailingSlash: true } },
      (base: string) => `${base}/poll/`,
    ],
  ] satisfies [string, FastifyServerOptions, (base: string) => string][])(
    'hands the CLOSE to the next GET of a poll client whose URL has %s',
    async (_name, fastifyOptions, endpointOf) => {
      const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, fastifyOptions)
      apps.push(app)
      const endpoint = endpointOf(base)
      const sid = await handshake(endpoint)
      const closing = app.close()
      await until(() => closed(app), 2000, 'the server closing')
      const res = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
      expect(res.status).toBe(200)
      expect(res.headers.get('access-control-allow-origin')).toBe(PAGE)
      expect(packetsOf(await res.text())).toEqual([
        expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
      ])
      await closing
    },
  )

  it('leaves a URL with a trailing slash to Fastify where routerOptions refuses what the top allows', async () => {
    // The router takes routerOptions' own ignoreTrailingSlash over the one at the top.
    const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, {
      ignoreTrailingSlash: true,
      routerOptions: { ignoreTrailingSlash: false },
    })
    apps.push(app)
    const sid = await handshake(`${base}/poll`)
    // While the server runs, no endpoint is served there: the session's GET gets a 404.
    const slashed = `${base}/poll/?v=1&sid=${sid}`
    expect((await fetch(slashed, { headers: { origin: PAGE } })).status).toBe(404)
    const closing = app.close()
    await until(() => closed(app), 2000, 'the server closing')
    // Nor while it closes: not the session's last words, nor a coded answer of Parley's, but
    // Fastify's own 503, as at any URL no route serves.
    const res = await fetch(slashed, { headers: { origin: PAGE } })
    expect(res.status).toBe(503)
    expect(await res.text()).not.toMatch(/PARLEY_|server shutdown/)
    // The last words wait for the session's GET at its endpoint.
    const last = await fetch(`${base}/poll?v=1&sid=${sid}`, { headers: { origin: PAGE } })
    expect(packetsOf(await last.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })

  it('hands the CLOSE to a client whose URL has slashes before the prefix, as the README sets the router', async () => {
    // The README's Fastify: its rewriteUrl folds the leading slashes (for the masked 404s), and
    // ignoreDuplicateSlashes has the router, and so the answers at close, read them as one.
    const app = Fastify({
      forceCloseConnections: true,
      rewriteUrl: (req) => (req.url ?? '/').replace(/^\/{2,}/, '/'),
      routerOptions: { ignoreDuplicateSlashes: true },
    })
    let api: FastifyInstance | undefined
    await app.register(
      async (context) => {
        api = context
        await context.register(parley, { allowedOrigins: [PAGE] })
      },
      { prefix: '/api' },
    )
    apps.push(app)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const address = app.server.address()
    if (!address || typeof address === 'string') throw new Error('no port')
    const endpoint = `http://127.0.0.1:${address.port}//api/parley/poll`
    const sid = await handshake(endpoint)
    const closing = app.close()
    await until(() => api?.parley.closed === true, 2000, 'the server closing')
    const res = await fetch(`${endpoint}?v=1&sid=${sid}`, { headers: { origin: PAGE } })
    expect(res.status).toBe(200)
    expect(packetsOf(await res.text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })

  it("answers a handshake whose URL has a percent-encoded letter with Parley's coded 503", async () => {
    const { app, base } = await startServer({ allowedOrigins: [PAGE] }, undefined, {})
    apps.push(app)
    // A session waiting for its GET holds the close open, for the handshake to come meanwhile.
    const sid = await handshake(`${base}/poll`)
    const closing = app.close()
    await until(() => closed(app), 2000, 'the server closing')
    const answer = await exchange(`${base}/p%6Fll?v=1`, 'POST', { Origin: PAGE }, '[8,{}]')
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
    await fetch(`${base}/poll?v=1&sid=${sid}`)
    await closing
  })
})

describe('at close, when the wall clock steps', () => {
  it("hands the CLOSE to a GET that comes once the wall clock stepped past the close's bound", async (context) => {
    // The close's waits are bounded within Fastify's pluginTimeout on the monotonic clock: NTP
    // setting the wall clock an hour on while the sessions end must not leave them no time.
    context.onTestFinished(() => void vi.restoreAllMocks())
    let stepped = () => {}
    const ended = new Promise<void>((resolve) => {
      stepped = resolve
    })
    const { app, base } = await startServer({}, (app) => {
      app.parley.on('connection', (socket) => {
        // The session ends in Parley's preClose hook, once the hook's bound is set.
        socket.on('disconnect', () => {
          stepWallClock(60 * 60 * 1000)
          stepped()
        })
      })
    })
    apps.push(app)
    const endpoint = `${base}/poll`
    const sid = await handshake(endpoint)
    const closing = app.close()
    await within(ended, 2000, 'the session to end at close')
    const res = await fetch(`${endpoint}?v=1&sid=${sid}`).catch((error: unknown) => error)
    expect(res).toMatchObject({ status: 200 })
    expect(packetsOf(await (res as Response).text())).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await closing
  })
})
