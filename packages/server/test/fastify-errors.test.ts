// Fastify's own errors (FST_ERR_*) never answer Parley's routes: each is answered with a code of
// Parley's, the endpoints' CORS headers and all, while the application's own errors still reach
// the client as the application made them.
import { request as httpRequest } from 'node:http'
import { decodeLines, PacketType } from '@parley/protocol'
import type { AdapterFactory } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { type Started, sleep, startServer } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'

const PAGE = 'http://page.test'

let started: Started | undefined
/** Other nodes of a test's cluster. */
const others: Started[] = []
const clients: RawClient[] = []
const raws: RawHttp[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const r of raws.splice(0)) r.destroy()
  await started?.app.close()
  started = undefined
  for (const node of others.splice(0)) await node.app.close()
})

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: { code?: unknown; message?: unknown }
}

/** One request through `node:http`, on a connection of its own; its answer, the body as JSON. */
function exchange(url: string, method: string, headers: Record<string, string>, body = ''): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => {
        const json = res.headers['content-type']?.startsWith('application/json')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: json ? JSON.parse(text) : {} })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

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

  it('answers an upstream POST whose body outlasts it with 408 PARLEY_BAD_REQUEST, and closes', async () => {
    started = await startServer({ allowedOrigins: [PAGE] }, undefined, { handlerTimeout: 100 })
    const client = await rawConnect('polling', started.base)
    clients.push(client)
    const url = `${started.base}/poll?v=1&sid=${client.sid}`
    await postCutShort(url, '[3]', 408, 'PARLEY_BAD_REQUEST', `the request took longer than ${limit}`)
  })
})

describe.each([
  ['over node:http', (directory: Directory, _: Cluster, name: string) => directory.adapter(name)],
  [
    "through the adapter's routeRequest",
    (_: Directory, cluster: Cluster, name: string) => cluster.adapter(name),
  ],
] as const)("Fastify's handlerTimeout on a held poll forwarded to its owner (%s)", (_how, adapterOf) => {
  it("answers it, and drops the owner's later answer, which the client still gets", async () => {
    const directory = new Directory()
    const cluster = new Cluster()
    const adapter = (name: string): AdapterFactory => adapterOf(directory, cluster, name)
    // The owner pings at once and waits long for the PONG: the next GET, held there.
    const owner = await startServer({ adapter: adapter('a'), pingInterval: 50, pingTimeout: 10_000 })
    others.push(owner)
    const warnings: string[] = []
    const stream = { write: (line: string) => void warnings.push(JSON.parse(line).msg) }
    const logger = { level: 'warn', stream }
    started = await startServer({ adapter: adapter('b') }, undefined, { handlerTimeout: 100, logger })
    const client = await rawConnect('polling', owner.base, {}, { autoPong: false })
    clients.push(client)
    await client.next((p) => p.type === PacketType.PING)

    const { port, pathname, search } = new URL(`${started.base}/poll?v=1&sid=${client.sid}&ack=0`)
    const raw = await RawHttp.open(Number(port))
    raws.push(raw)
    raw.write(head('GET', `${pathname}${search}`))
    const answer = await raw.answer()
    expect({ status: answer.status, body: JSON.parse(answer.body) }).toEqual({
      status: 408,
      body: {
        code: 'PARLEY_BAD_REQUEST',
        message: "the request took longer than the server's handlerTimeout (100 ms)",
      },
    })
    // The owner answers the poll it held: the forwarding node, which answered already, drops it
    // (writing it would throw).
    for (const socket of owner.app.parley.sockets.values()) socket.emit('news', 'after')
    await sleep(50)
    // Never read, it comes again to the client's next poll.
    const next = await fetch(`${owner.base}/poll?v=1&sid=${client.sid}&ack=0`)
    const decoded = decodeLines((await next.text()).split('\n'), { maxPayload: 1_000_000 })
    expect(decoded.ok && decoded.packets.map((p) => p.type)).toContain(PacketType.EVENT)
    // Nor is the owner taken for one that could not be reached.
    expect(warnings).toEqual([])
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
