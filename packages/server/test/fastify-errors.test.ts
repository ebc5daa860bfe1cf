// Fastify's own errors (FST_ERR_*) never answer Parley's routes: each is answered with a code of
// Parley's, the endpoints' CORS headers and all, while the application's own errors still reach
// the client as the application made them.
import { connect, type Socket } from '@parley/client'
import { PacketType } from '@parley/protocol'
import type { AdapterFactory } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, sleep, startServer, until } from './helpers.js'
import { exchange } from './http-exchange.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'
import { bodyAfterAnswer, heldBody, splitFetch } from './split-fetch.js'

const PAGE = 'http://page.test'

let started: Started | undefined
/** Other nodes of a test's cluster. */
const others: Started[] = []
const clients: RawClient[] = []
const parleyClients: Socket[] = []
const raws: RawHttp[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const c of parleyClients.splice(0)) c.disconnect()
  for (const r of raws.splice(0)) r.destroy()
  await closeApp(started?.app)
  started = undefined
  for (const node of others.splice(0)) await closeApp(node.app)
})

/**
 * A POST from a page to `url` whose body announces more bytes than it brings (Parley waits for
 * the rest, Fastify's handlerTimeout does not); its answer, which must be `status`, `code` and
 * `message`, readable by the page, after which the connection closes.
 */
async function postCutShort(url: string, sent: string, status: number, code: string, message: string) {
  const { port, pathname, search } = new URL(url)
  const raw = await RawHttp.open(Number(port))
  raws.push(raw)
  raw.write(
    head('POST', `${pathname}${search}`, { Origin: PAGE, 'Content-Length': String(sent.length + 10) }),
  )
  raw.write(sent)
  const answer = await raw.answer()
  expect({ status: answer.status, body: JSON.parse(answer.body) }).toEqual({
    status,
    body: { code, message },
  })
  expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
  expect(answer.headers['cache-control']).toBe('no-store')
  expect(answer.headers.connection).toBe('close')
  await raw.closed
}

describe("Fastify's handlerTimeout on Parley's routes", () => {
  const limit = "the server's handlerTimeout (100 ms)"

  it('answers a handshake whose body outlasts it with 503 PARLEY_HANDSHAKE_TIMEOUT, readable by the page', async () => {
    started = await startServer({ allowedOrigins: [PAGE] }, undefined, { handlerTimeout: 100 })
    for (const path of ['poll', 'sse']) {
      const url = `${started.base}/${path}?v=1`
      await postCutShort(
        url,
        '[8,{}]\n',
        503,
        'PARLEY_HANDSHAKE_TIMEOUT',
        `the handshake took longer than ${limit}`,
      )
    }
  })

  it('logs the handshakes it cut short once per burst, the first at once with its err', async () => {
    const lines: { level: number; msg: string; count?: number; total?: number; code?: string }[] = []
    const logger = { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } }
    started = await startServer({}, undefined, { handlerTimeout: 100, logger })
    // A client whose handshake bodies come slower than the handlerTimeout: each body's rest
    // only once its answer came.
    let handshakes = 0
    const slow: typeof fetch = (input, init) => {
      handshakes++
      return bodyAfterAnswer(input, init)
    }
    const errors: string[] = []
    for (const transport of ['polling', 'sse', 'polling'] as const) {
      const client = connect(started.base, { transports: [transport], reconnection: false, fetch: slow })
      parleyClients.push(client)
      errors.push(
        await new Promise<string>((resolve) => client.once('connect_error', (e) => resolve(e.code))),
      )
    }
    expect(errors).toEqual([
      'PARLEY_HANDSHAKE_TIMEOUT',
      'PARLEY_HANDSHAKE_TIMEOUT',
      'PARLEY_HANDSHAKE_TIMEOUT',
    ])
    const about = () => lines.filter(({ msg }) => msg.includes('request failed'))
    expect(about()).toMatchObject([
      {
        level: 50,
        count: 1,
        total: 1,
        code: 'PARLEY_HANDSHAKE_TIMEOUT',
        err: { code: 'FST_ERR_HANDLER_TIMEOUT' },
      },
    ])
    await started.app.close()
    started = undefined
    // Each client may try its transport once more at once: one line at once, the rest at close.
    expect(about().map(({ count, total }) => [count, total])).toEqual([
      [1, 1],
      [handshakes - 1, handshakes],
    ])
  })

  it('answers an upstream POST whose body outlasts it with 408 PARLEY_BAD_REQUEST, and closes', async () => {
    started = await startServer({ allowedOrigins: [PAGE] }, undefined, { handlerTimeout: 100 })
    const client = await rawConnect('polling', started.base)
    clients.push(client)
    const url = `${started.base}/poll?v=1&sid=${client.sid}`
    await postCutShort(url, '[3]', 408, 'PARLEY_BAD_REQUEST', `the request took longer than ${limit}`)
  })
})

/** How a test's nodes get their adapters: one directory or cluster for all, a node's name. */
type AdapterOf = (directory: Directory, cluster: Cluster, name: string) => AdapterFactory

/**
 * The `owner`, node `a` (`setup` runs on it), and the `other`, node `b`, with
 * `handlerTimeout: 100`, which forwards to the owner.
 */
async function ownerAndOther(adapterOf: AdapterOf, setup?: (app: FastifyInstance) => void) {
  const directory = new Directory()
  const cluster = new Cluster()
  const owner = await startServer({ adapter: adapterOf(directory, cluster, 'a') }, setup)
  others.push(owner)
  const other = await startServer({ adapter: adapterOf(directory, cluster, 'b') }, undefined, {
    handlerTimeout: 100,
  })
  started = other
  return { owner, other }
}

describe.each([
  ['over node:http', (directory: Directory, _: Cluster, name: string) => directory.adapter(name)],
  [
    "through the adapter's routeRequest",
    (_: Directory, cluster: Cluster, name: string) => cluster.adapter(name),
  ],
] as const)("Fastify's handlerTimeout on requests forwarded to the owner (%s)", (_how, adapterOf) => {
  it.each(['polling', 'sse'] as const)(
    'never cuts a %s request the owner holds: the session goes on, never resumed',
    async (transport) => {
      const { owner, other } = await ownerAndOther(adapterOf)
      // The handshake goes to the owner; every request after it to the other node, which
      // forwards it: a held poll (an SSE stream) waits there far longer than its handlerTimeout.
      const sent: string[] = []
      const forwarding = splitFetch(() => other.base, sent)
      const client = connect(owner.base, { transports: [transport], fetch: forwarding })
      parleyClients.push(client)
      await until(() => client.connected, 3000, 'connect')
      const news: string[] = []
      client.on('news', (text: string) => void news.push(text))

      await sleep(600)
      for (const socket of owner.app.parley.sockets.values()) socket.emit('news', 'after the wait')
      await until(() => news.length === 1, 3000, 'the news')
      expect(news).toEqual(['after the wait'])
      // One handshake, never a resume: no request of the session was cut.
      expect(sent.filter((what) => what === 'handshake')).toEqual(['handshake'])
      expect(sent).toContain('GET forwarded')
      expect(client.recovered).toBe(false)
    },
  )

  it.each(['polling', 'sse'] as const)(
    'cuts a %s POST whose body is still coming (408, not forwarded): the client sends it again, nothing lost',
    async (transport) => {
      const up: number[] = []
      const { owner, other } = await ownerAndOther(adapterOf, (app) => {
        app.parley.on('connection', (socket) => socket.on('up', (n: number) => void up.push(n)))
      })
      // Every request but the handshake goes to the other node; the first POST's body comes
      // in two parts, the rest only once the client was told of the cut, so that its
      // handlerTimeout runs out in between however late a loaded machine runs it.
      let slow = true
      let told = () => {}
      const cut = new Promise<void>((resolve) => {
        told = resolve
      })
      const forwarding = splitFetch(
        () => other.base,
        [],
        (init) => {
          if (init?.method !== 'POST' || !slow) return undefined
          slow = false
          return heldBody(init, () => cut)
        },
      )
      const client = connect(owner.base, {
        transports: [transport],
        fetch: forwarding,
        reconnectionDelay: 50,
      })
      parleyClients.push(client)
      const errors: string[] = []
      client.on('transport_error', (_name, error) => {
        errors.push(error.code)
        told()
      })
      await until(() => client.connected, 3000, 'connect')

      client.emit('up', 1)
      await until(() => up.length === 1, 5000, "the POST's packet, sent again")
      client.emit('up', 2)
      await until(() => up.length === 2, 3000, 'the next packet')
      expect(up).toEqual([1, 2])
      expect(slow).toBe(false)
      // The cut POST failed the transport, and the client resumed its session.
      expect(errors).toEqual(['PARLEY_BAD_REQUEST'])
      expect(client.recovered).toBe(true)
      expect(client.connected).toBe(true)
    },
  )

  it("lets a resume forwarded to the owner take the owner's time: its hooks count there", async () => {
    // The owner's own onRequest hook (an application's check, say) takes longer than the other
    // node's handlerTimeout, on the resumes forwarded to it. (Fastify stops counting once a
    // request's body has been read, so this held before the forward was hijacked too: a guard.)
    const { owner, other } = await ownerAndOther(adapterOf, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method === 'POST' && request.headers['x-parley-routed'] !== undefined) await sleep(300)
      })
    })
    const first = await rawConnect('polling', owner.base)
    first.close()

    const again = await rawConnect('polling', other.base, { sid: first.sid, ack: 0 })
    clients.push(again)
    expect(again.open).toMatchObject({ sid: first.sid, recovered: true })
  })
})

describe("Fastify's handlerTimeout on a WebSocket relayed to the owner", () => {
  it('never cuts the relay: it carries messages long after', async () => {
    const directory = new Directory()
    const owner = await startServer({ adapter: directory.adapter('a') })
    others.push(owner)
    started = await startServer({ adapter: directory.adapter('b') }, undefined, { handlerTimeout: 100 })
    const first = await rawConnect('websocket', owner.base)
    first.close()
    const again = await rawConnect('websocket', started.base, { sid: first.sid, ack: 0 })
    clients.push(again)
    expect(again.open).toMatchObject({ sid: first.sid, recovered: true })

    await sleep(500)
    for (const socket of owner.app.parley.sockets.values()) socket.emit('news', 'after the wait')
    expect(await again.next((p) => p.type === PacketType.EVENT)).toMatchObject({ args: ['after the wait'] })
    expect(await Promise.race([again.ended, sleep(50).then(() => 'open')])).toBe('open')
  })
})

describe('a forwarded request whose owner cannot be reached', () => {
  it("is answered as before the forward: coded, readable by the page, closed after a large body, with the application's onSend headers", async () => {
    const directory = new Directory()
    const owner = await startServer({ adapter: directory.adapter('a') })
    started = await startServer(
      { adapter: directory.adapter('b'), allowedOrigins: [PAGE], maxPayload: 256 },
      // An application's security header, added to every answer.
      (app) => {
        app.addHook('onSend', async (_request, reply) => {
          reply.header('x-content-type-options', 'nosniff')
        })
      },
      { handlerTimeout: 100 },
    )
    const first = await rawConnect('polling', owner.base)
    first.close()
    // The owner dies without a word: the directory still names it.
    const entries = [...directory.owners]
    await owner.app.close()
    for (const [sid, entry] of entries) directory.owners.set(sid, entry)
    const url = `${started.base}/poll?v=1&sid=${first.sid}`

    const held = await exchange(url, 'GET', { Origin: PAGE })
    expect({ status: held.status, body: held.body }).toEqual({
      status: 400,
      body: { code: 'PARLEY_UNKNOWN_SESSION', message: 'the node of this session cannot be reached' },
    })
    const large = await exchange(url, 'POST', { Origin: PAGE }, 'x'.repeat(300))
    expect({ status: large.status, code: large.body.code }).toEqual({
      status: 413,
      code: 'PARLEY_PAYLOAD_TOO_LARGE',
    })
    expect(large.headers.connection).toBe('close')
    for (const answer of [held, large]) {
      expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
      expect(answer.headers['cache-control']).toBe('no-store')
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(answer.headers['x-content-type-options']).toBe('nosniff')
    }
  })
})

describe("the client script's route", () => {
  it('answers every other method with 405 PARLEY_METHOD_NOT_ALLOWED, a body Fastify cannot parse too', async () => {
    started = await startServer()
    const url = `${started.base}/parley.min.js`
    const asks: [string, Record<string, string>, string][] = [
      ['POST', { 'Content-Type': ';;;' }, 'x'],
      ['PUT', { 'Content-Type': 'application/json' }, ''],
      // Fastify asks a QUERY for a Content-Type, with a 400 of its own.
      ['QUERY', {}, ''],
    ]
    for (const [method, headers, body] of asks) {
      const answer = await exchange(url, method, headers, body)
      expect({ method, status: answer.status, code: answer.body.code }).toEqual({
        method,
        status: 405,
        code: 'PARLEY_METHOD_NOT_ALLOWED',
      })
      expect(answer.headers.allow).toBe('GET, HEAD')
    }
    expect((await exchange(url, 'GET', {})).status).toBe(200)
  })
})

describe("the application's own errors on Parley's routes", () => {
  it("reach the client with the application's code and status, as on its other routes", async () => {
    started = await startServer({}, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.headers.authorization !== 'Bearer ok') {
          throw Object.assign(new Error('sign in first'), { statusCode: 401, code: 'APP_UNAUTHORIZED' })
        }
      })
      app.get('/app', async () => 'ok')
    })
    const mine = await exchange(started.base.replace('/parley', '/app'), 'GET', {})
    expect(mine).toMatchObject({ status: 401, body: { code: 'APP_UNAUTHORIZED', message: 'sign in first' } })
    for (const [method, path] of [
      ['POST', 'poll?v=1'],
      ['GET', 'sse?v=1&sid=x'],
      ['GET', 'ws?v=1'],
      ['POST', 'ws?v=1'],
      ['GET', 'parley.min.js'],
      ['POST', 'parley.min.js'],
    ] as const) {
      const answer = await exchange(`${started.base}/${path}`, method, {}, method === 'POST' ? '[8,{}]' : '')
      expect({ path, status: answer.status, body: answer.body }).toMatchObject({
        path,
        status: 401,
        body: { code: 'APP_UNAUTHORIZED', message: 'sign in first' },
      })
    }
  })
})
