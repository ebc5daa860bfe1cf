// While app.close() runs, no route of Parley's can answer: Fastify refuses every request itself
// (its `return503OnClosing`, upgrades included) and every `inject` (the requests other nodes
// route here). The plugin answers the endpoints in their place as the routes would: a preflight
// its 204, a wrong method 405, another version 400, a foreign page 403, a disabled transport
// 404, a POST past maxPayload 413 (ending its live session, as the route does), the rest a coded
// 503 the client reads as "try again"; refusals are logged as the routes'.
import { Writable } from 'node:stream'
import websocket from '@fastify/websocket'
import { decodeText, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, startServer, until } from './helpers.js'
import { exchange } from './http-exchange.js'
import { head, type RawAnswer, RawHttp } from './raw-http.js'
import { RawWebSocket, rawUpgradeHead } from './raw-websocket.js'

const PAGE = 'http://page.test'
const ELSEWHERE = 'http://elsewhere.test'
const MAX_PAYLOAD = 4096

const apps: FastifyInstance[] = []
const connections: RawHttp[] = []
afterEach(async () => {
  for (const connection of connections.splice(0)) connection.destroy()
  for (const app of apps.splice(0)) await closeApp(app)
})

/** A session opened by its handshake POST alone (polling), on the endpoint `base`. */
async function handshake(base: string): Promise<string> {
  const res = await fetch(`${base}/poll?v=1`, { method: 'POST', body: JSON.stringify([8, {}]) })
  const decoded = decodeText(await res.text())
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
  return decoded.packet.sid
}

/** What a client can tell of an answer: its status, code, and the headers that matter here. */
interface Seen {
  status: number
  code: unknown
  message: unknown
  allowOrigin: unknown
  allow: unknown
  allowMethods: unknown
}

function seen(answer: {
  status: number
  headers: Record<string, unknown>
  code: unknown
  message: unknown
}): Seen {
  return {
    status: answer.status,
    code: answer.code,
    message: answer.message,
    allowOrigin: answer.headers['access-control-allow-origin'],
    allow: answer.headers.allow,
    allowMethods: answer.headers['access-control-allow-methods'],
  }
}

/** An upgrade to `path` (`ws?v=1`) over a connection of its own, with `headers` added. */
function upgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<Seen> {
  return rawExchange(port, rawUpgradeHead(`/parley/${path}`, headers))
}

/** A request's `head` written as it is over a connection of its own: what its answer says. */
async function rawExchange(port: number, head: string): Promise<Seen> {
  const connection = await RawHttp.open(port)
  connections.push(connection)
  connection.write(head)
  const answer: RawAnswer = await connection.answer()
  connection.destroy()
  const json = answer.headers['content-type']?.startsWith('application/json')
  const body = (json ? JSON.parse(answer.body) : {}) as { code?: unknown; message?: unknown }
  return seen({ status: answer.status, headers: answer.headers, code: body.code, message: body.message })
}

async function request(url: string, method: string, headers: Record<string, string> = {}): Promise<Seen> {
  const answer = await exchange(url, method, headers)
  return seen({ ...answer, code: answer.body.code, message: answer.body.message })
}

/** Requests every endpoint answers the same way whether the server is open or closing. */
function sameAnswers(base: string, port: number): Promise<Seen>[] {
  const page = { Origin: PAGE }
  const elsewhere = { Origin: ELSEWHERE }
  const preflight = {
    'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'content-type',
  }
  return [
    request(`${base}/poll?v=1`, 'OPTIONS', { ...page, ...preflight }),
    request(`${base}/poll?v=1`, 'OPTIONS', { ...elsewhere, ...preflight }),
    request(`${base}/sse?v=1`, 'POST', page),
    request(`${base}/poll?v=1`, 'PUT', page),
    request(`${base}/poll?v=2&sid=nosuchsessionatall000`, 'GET', page),
    request(`${base}/poll?v=1&sid=nosuchsessionatall000`, 'GET', elsewhere),
    request(`${base}/poll?v=1`, 'GET', page),
    request(`${base}/ws?v=1`, 'DELETE', page),
    // A body past maxPayload, announced and never sent: answered by its head alone.
    request(`${base}/poll?v=1`, 'POST', { ...page, 'Content-Length': String(MAX_PAYLOAD + 1) }),
    request(`${base}/poll?v=1&sid=nosuchsessionatall000`, 'POST', {
      ...page,
      'Content-Length': String(MAX_PAYLOAD + 1),
    }),
    upgrade(port, 'ws?v=2'),
    upgrade(port, 'ws?v=1', elsewhere),
    upgrade(port, 'poll?v=1', page),
    upgrade(port, 'sse?v=1', page),
  ]
}

describe('the endpoints during the drain of app.close(), while Fastify refuses every request', () => {
  it('answer as when the server is open, upgrades included, and log refused origins and versions as always', async () => {
    const lines: { msg: string; count?: number }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    // A store that holds its answer: the drain goes on until the test lets it.
    const cluster = new Cluster({ handoff: true })
    let storeAnswers = () => {}
    cluster.storeAnswersAfter = new Promise<void>((resolve) => {
      storeAnswers = resolve
    })
    const { app, base } = await startServer(
      {
        adapter: cluster.adapter('a'),
        allowedOrigins: [PAGE],
        transports: ['websocket', 'polling'],
        handoff: { timeout: 5000 },
        maxPayload: MAX_PAYLOAD,
      },
      undefined,
      { logger: { level: 'warn', stream } },
    )
    apps.push(app)
    const port = Number(new URL(base).port)
    const open = await Promise.all(sameAnswers(base, port))
    expect(open.filter((answer) => answer.code === 'PARLEY_PAYLOAD_TOO_LARGE')).toHaveLength(2)
    // The WebSocket endpoint takes an upgrade while the server is open.
    expect((await upgrade(port, 'ws?v=1', { Origin: PAGE })).status).toBe(101)

    await handshake(base)
    const closing = app.close()
    try {
      await until(() => cluster.handOffSids.length > 0, 2000, 'the drain storing the session')
      expect(await Promise.all(sameAnswers(base, port))).toEqual(open)
      // An upgrade Fastify would answer with its bare 503 is taken, as the route takes it while
      // the server drains: a new session's HELLO is refused with Parley's code.
      expect((await upgrade(port, 'ws?v=1', { Origin: PAGE })).status).toBe(101)
      const fresh = await RawWebSocket.open(base, '[8,{}]')
      expect(await fresh.first()).toMatchObject({
        type: PacketType.ERROR,
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the server is shutting down',
      })
      expect(await fresh.closed).toBe(1008)
      // Still draining: what answered was the drain's, not the closed plugin's.
      expect(app.parley.closed).toBe(false)
    } finally {
      storeAnswers()
      await closing
    }
    // Each refused origin (three while open, three while closing) counted in the log as always.
    const refusals = lines.filter((line) => line.msg.includes(`refused a request from origin ${ELSEWHERE}`))
    expect(refusals.reduce((sum, line) => sum + (line.count ?? 0), 0)).toBe(6)
    // And each request of another version (two while open, two while closing).
    const versions = lines.filter((line) => line.msg.includes('for another protocol version'))
    expect(versions.reduce((sum, line) => sum + (line.count ?? 0), 0)).toBe(4)
  })
})

/** Fastify's `useSemicolonDelimiter`, which its router takes and whose types leave out. */
const semicolonRouter: NonNullable<FastifyServerOptions['routerOptions']> & {
  useSemicolonDelimiter: boolean
} = {
  useSemicolonDelimiter: true,
}

describe('a request whose target the router reads in another form, during the drain of app.close()', () => {
  // Each request in origin form, then in the forms Node and the router take as well.
  it.each([
    {
      forms: 'in absolute form (RFC 9112 3.2.2), or with its query begun by a #',
      fastify: {},
      targets: (port: number, path: string) => [
        `http://127.0.0.1:${port}/parley/${path}`,
        `/parley/${path.replace('?', '#')}`,
      ],
    },
    {
      forms: 'with its query begun by a ; where the application has the router read one there',
      fastify: { routerOptions: semicolonRouter },
      targets: (_port: number, path: string) => [`/parley/${path.replace('?', ';')}`],
    },
  ])('gets the answer its plain form gets, not Fastify’s bare 503: $forms', async ({ fastify, targets }) => {
    const cluster = new Cluster({ handoff: true })
    let storeAnswers = () => {}
    cluster.storeAnswersAfter = new Promise<void>((resolve) => {
      storeAnswers = resolve
    })
    const { app, base } = await startServer(
      { adapter: cluster.adapter('a'), allowedOrigins: [PAGE], handoff: { timeout: 5000 } },
      undefined,
      fastify,
    )
    apps.push(app)
    const port = Number(new URL(base).port)
    const forms = (path: string) => [`/parley/${path}`, ...targets(port, path)]
    const requests = async () => {
      const heads = [
        forms(`poll?v=1&sid=${'x'.repeat(21)}`).map((target) => head('GET', target, { Origin: PAGE })),
        forms('poll?v=1').map((target) => head('PUT', target, { Origin: PAGE })),
        forms('ws?v=2').map((target) => rawUpgradeHead(target)),
      ]
      return Promise.all(heads.map((group) => Promise.all(group.map((text) => rawExchange(port, text)))))
    }
    const alike = (answers: Seen[][]) => {
      for (const [plain, ...others] of answers) expect(others).toEqual(others.map(() => plain))
    }

    // Open, the routes answer each form alike.
    alike(await requests())

    await handshake(base)
    const closing = app.close()
    try {
      await until(() => cluster.handOffSids.length > 0, 2000, 'the drain storing the session')
      const answers = await requests()
      expect(answers.map(([plain]) => plain)).toMatchObject([
        { status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN', allowOrigin: PAGE },
        { status: 405, code: 'PARLEY_METHOD_NOT_ALLOWED' },
        { status: 400, code: 'PARLEY_UNSUPPORTED_VERSION' },
      ])
      alike(answers)
      expect(app.parley.closed).toBe(false)
    } finally {
      storeAnswers()
      await closing
    }
  })
})

describe("a WebSocket upgrade during the drain, with the application's own @fastify/websocket", () => {
  it("gets Parley's coded 503, not ws's bare one: that registration's close hook, run before the drain, closed its server", async () => {
    const cluster = new Cluster({ handoff: true })
    let storeAnswers = () => {}
    cluster.storeAnswersAfter = new Promise<void>((resolve) => {
      storeAnswers = resolve
    })
    const app = Fastify({ forceCloseConnections: true })
    apps.push(app)
    // Registered before the plugin: its preClose hook (closing its WebSocketServer) runs first.
    await app.register(websocket)
    await app.register(parley, {
      adapter: cluster.adapter('a'),
      transports: ['websocket', 'polling'],
      handoff: { timeout: 5000 },
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    const base = `http://127.0.0.1:${port}/parley`
    expect((await upgrade(port, 'ws?v=1')).status).toBe(101)

    await handshake(base)
    const closing = app.close()
    try {
      await until(() => cluster.handOffSids.length > 0, 2000, 'the drain storing the session')
      expect(await upgrade(port, 'ws?v=1')).toMatchObject({
        status: 503,
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the server is shutting down',
      })
      expect(app.parley.closed).toBe(false)
    } finally {
      storeAnswers()
      await closing
    }
  })
})

/**
 * Two nodes on one cluster: a, whose close an application hook holds (added before the plugin, so
 * Fastify already refuses every request and inject while a's sessions are still alive), and b,
 * which routes requests for a's sessions to a. `entered()` says a's close reached the hook;
 * `release()` lets it go on.
 */
async function heldOwnerAndRouter() {
  const cluster = new Cluster()
  const a = Fastify({ forceCloseConnections: true })
  let entered = false
  let release = () => {}
  a.addHook('preClose', async () => {
    entered = true
    await new Promise<void>((resolve) => {
      release = resolve
    })
  })
  await a.register(parley, { adapter: cluster.adapter('a'), allowedOrigins: [PAGE], maxPayload: MAX_PAYLOAD })
  await a.listen({ port: 0, host: '127.0.0.1' })
  apps.push(a)
  const aBase = `http://127.0.0.1:${(a.server.address() as { port: number }).port}/parley`
  const b = await startServer({
    adapter: cluster.adapter('b'),
    allowedOrigins: [PAGE],
    maxPayload: MAX_PAYLOAD,
  })
  apps.push(b.app)
  return { a, aBase, b, entered: () => entered, release: () => release() }
}

describe('requests another node routes to a node whose app.close() has begun', () => {
  it("get that node's coded 503 (413 past maxPayload) with the page's CORS headers, not an unreachable owner's new session", async () => {
    const { a, aBase, b, entered, release } = await heldOwnerAndRouter()

    const sid = await handshake(aBase)
    // Routed while a is open: b hands the POST (a PONG) to a, which takes it.
    expect((await exchange(`${b.base}/poll?v=1&sid=${sid}`, 'POST', { Origin: PAGE }, '[3]')).status).toBe(
      204,
    )

    const closing = a.close()
    try {
      await until(entered, 2000, "the application's close hook")
      // A POST of the session on a transport it is not on (its GET and POST on its own are served
      // there, as by the route: closing-parity.test.ts).
      const posted = await exchange(`${b.base}/sse?v=1&sid=${sid}`, 'POST', { Origin: PAGE }, '[3]')
      expect({ status: posted.status, body: posted.body }).toEqual({
        status: 503,
        body: { code: 'PARLEY_SERVER_SHUTTING_DOWN', message: 'the server is shutting down' },
      })
      expect(posted.headers['access-control-allow-origin']).toBe(PAGE)
      expect(posted.headers['cache-control']).toBe('no-store')
      // A body past maxPayload, sent on without it: a's 413, as its route would answer.
      const tooLarge = { Origin: PAGE, 'Content-Length': String(MAX_PAYLOAD + 1) }
      const answer = await exchange(`${b.base}/poll?v=1&sid=${sid}`, 'POST', tooLarge)
      expect({ status: answer.status, code: answer.body.code }).toEqual({
        status: 413,
        code: 'PARLEY_PAYLOAD_TOO_LARGE',
      })
      expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
    } finally {
      release()
      await closing
    }
  })
})

describe('a POST past maxPayload from a transport its session has left, during app.close()', () => {
  /** A session opened over WebSocket: its sid, and the socket (closed by the caller). */
  async function webSocketSession(base: string): Promise<{ sid: string; raw: RawWebSocket }> {
    const raw = await RawWebSocket.open(base, '[8,{}]')
    const open = await raw.first()
    if (open.type !== PacketType.OPEN) throw new Error('no OPEN')
    return { sid: open.sid, raw }
  }

  const tooLarge = { Origin: PAGE, 'Content-Length': String(MAX_PAYLOAD + 1) }
  const stale = {
    status: 400,
    code: 'PARLEY_TRANSPORT_MISMATCH',
    message: 'the session is not attached to polling',
  }

  it('gets the 400 PARLEY_TRANSPORT_MISMATCH the open route gives it, sent directly during the drain', async () => {
    // One session per batch, and a store that holds its answer: the first session waits in the
    // drain, frozen; the second is still live, on WebSocket.
    const cluster = new Cluster({ handoff: true })
    let storeAnswers = () => {}
    cluster.storeAnswersAfter = new Promise<void>((resolve) => {
      storeAnswers = resolve
    })
    const { app, base } = await startServer({
      adapter: cluster.adapter('a'),
      allowedOrigins: [PAGE],
      handoff: { timeout: 5000, batchSize: 1 },
      maxPayload: MAX_PAYLOAD,
    })
    apps.push(app)
    await handshake(base)
    const { sid, raw } = await webSocketSession(base)
    try {
      const open = await exchange(`${base}/poll?v=1&sid=${sid}`, 'POST', tooLarge)
      expect({ status: open.status, ...open.body }).toEqual(stale)
      const closing = app.close()
      try {
        await until(() => cluster.handOffSids.length === 1, 2000, 'the drain storing the first session')
        const answer = await exchange(`${base}/poll?v=1&sid=${sid}`, 'POST', tooLarge)
        expect({ status: answer.status, ...answer.body }).toEqual(stale)
        expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
        expect(app.parley.sessionFor(sid)?.state).toBe('attached')
      } finally {
        storeAnswers()
        await closing
      }
    } finally {
      raw.ws.terminate()
    }
  })

  it('gets the same 400 when another node routes it to the closing owner', async () => {
    const { a, aBase, b, entered, release } = await heldOwnerAndRouter()
    const { sid, raw } = await webSocketSession(aBase)
    try {
      const open = await exchange(`${b.base}/poll?v=1&sid=${sid}`, 'POST', tooLarge)
      expect({ status: open.status, ...open.body }).toEqual(stale)
      const closing = a.close()
      try {
        await until(entered, 2000, "the application's close hook")
        const answer = await exchange(`${b.base}/poll?v=1&sid=${sid}`, 'POST', tooLarge)
        expect({ status: answer.status, ...answer.body }).toEqual(stale)
        expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
      } finally {
        release()
        await closing
      }
    } finally {
      raw.ws.terminate()
    }
  })
})

describe('a GET another node routes to a closing owner that keeps its session’s last words', () => {
  it.each(['poll', 'sse'] as const)(
    'gets them through the adapter (routeRequest), as a GET sent to that node directly does (/%s)',
    async (path) => {
      const cluster = new Cluster({ handoff: true })
      // Nobody claims the session, so a's drain waits out its whole timeout: a second, where
      // what the test does during the drain takes some tens of ms.
      const a = await startServer({ adapter: cluster.adapter('a'), handoff: { timeout: 1000 } })
      apps.push(a.app)
      const b = await startServer({ adapter: cluster.adapter('b'), handoff: { timeout: 1000 } })
      apps.push(b.app)
      // b learns a's node but not its address, as from an adapter that carries no URLs: the
      // GET goes through routeRequest, where a's Fastify refuses inject once it closes.
      const onB = cluster.nodes.get('b')!
      const ownerOf = onB.sessionOwner!.bind(onB)
      onB.sessionOwner = async (sid: string) => {
        const owner = await ownerOf(sid)
        if (typeof owner !== 'object') return owner
        const { url: _, ...withoutUrl } = owner
        return withoutUrl
      }
      // A session opened by its handshake POST alone: no GET waits at a when the drain hands it
      // off, so its CLOSE 'server handoff' waits there for the client's next GET.
      const res = await fetch(`${a.base}/${path}?v=1`, { method: 'POST', body: JSON.stringify([8, {}]) })
      const open = decodeText(await res.text())
      if (!open.ok || open.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
      const sid = open.packet.sid
      const closing = a.app.close()
      try {
        await until(() => cluster.handOffSids.includes(sid), 2000, 'the drain storing the session')
        await until(() => a.app.parley.sessionFor(sid)?.state === 'frozen', 2000, 'the session handed off')
        const routed = await fetch(`${b.base}/${path}?v=1&sid=${sid}`)
        expect(routed.status).toBe(200)
        const text = await routed.text()
        const line = path === 'sse' ? text.slice(text.indexOf('data: ') + 6).trim() : text
        const close = decodeText(line)
        expect(close.ok && close.packet).toMatchObject({ type: PacketType.CLOSE, reason: 'server handoff' })
        // Taken once: the next GET, routed or not, gets the coded 503.
        const again = await fetch(`${a.base}/${path}?v=1&sid=${sid}`)
        expect({ status: again.status, body: await again.json() }).toEqual({
          status: 503,
          body: { code: 'PARLEY_SERVER_SHUTTING_DOWN', message: 'the server is shutting down' },
        })
      } finally {
        await closing
      }
    },
  )
})

describe('a POST past maxPayload of the transport its live session is attached to, during app.close()', () => {
  const tooLarge = { Origin: PAGE, 'Content-Length': String(MAX_PAYLOAD + 1) }
  const TOO_LARGE = { status: 413, code: 'PARLEY_PAYLOAD_TOO_LARGE', connection: 'close' }

  /** A session opened by its handshake POST alone over `path`: no GET waits for its CLOSE. */
  async function sessionOn(base: string, path: 'poll' | 'sse'): Promise<string> {
    const res = await fetch(`${base}/${path}?v=1`, { method: 'POST', body: JSON.stringify([8, {}]) })
    const decoded = decodeText(await res.text())
    if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
    return decoded.packet.sid
  }

  /** The announced POST's answer: status, code, and whether the connection closes after it. */
  async function postTooLarge(url: string) {
    const answer = await exchange(url, 'POST', tooLarge)
    return { status: answer.status, code: answer.body.code, connection: answer.headers.connection }
  }

  /** What the session's client hears on its next GET: the reason of the CLOSE it gets. */
  async function closeHeard(url: string, path: 'poll' | 'sse'): Promise<unknown> {
    const res = await fetch(url)
    const text = await res.text()
    expect(res.status).toBe(200)
    const line = path === 'sse' ? text.slice(text.indexOf('data: ') + 6).trim() : text
    const close = decodeText(line)
    return close.ok && close.packet.type === PacketType.CLOSE ? close.packet.reason : text
  }

  it.each(['poll', 'sse'] as const)(
    'gets 413 and ends the session with "payload too large" during the drain, as when the server is open (/%s)',
    async (path) => {
      // One session per batch, and a store that holds its answer: the first session waits in the
      // drain, frozen; the one the POST names is still live, attached to `path`.
      const cluster = new Cluster({ handoff: true })
      let storeAnswers = () => {}
      cluster.storeAnswersAfter = new Promise<void>((resolve) => {
        storeAnswers = resolve
      })
      const reasons: string[] = []
      const { app, base } = await startServer(
        {
          adapter: cluster.adapter('a'),
          allowedOrigins: [PAGE],
          handoff: { timeout: 5000, batchSize: 1 },
          maxPayload: MAX_PAYLOAD,
        },
        (app) => {
          app.parley.on('connection', (s) => s.on('disconnect', (reason) => reasons.push(reason)))
        },
      )
      apps.push(app)
      await sessionOn(base, path)
      const url = (sid: string) => `${base}/${path}?v=1&sid=${sid}`

      const open = await sessionOn(base, path)
      expect(await postTooLarge(url(open))).toEqual(TOO_LARGE)
      expect(await closeHeard(url(open), path)).toBe('payload too large')
      expect(reasons).toEqual(['payload too large'])

      const sid = await sessionOn(base, path)
      const closing = app.close()
      try {
        await until(() => cluster.handOffSids.length === 1, 2000, 'the drain storing the first session')
        expect(await postTooLarge(url(sid))).toEqual(TOO_LARGE)
        expect(app.parley.sessionFor(sid)).toBeUndefined()
        expect(reasons).toEqual(['payload too large', 'payload too large'])
        expect(await closeHeard(url(sid), path)).toBe('payload too large')
      } finally {
        storeAnswers()
        await closing
      }
    },
  )

  it('gets 413 and ends the session on its node when another node routes it to the closing owner', async () => {
    const { a, aBase, b, entered, release } = await heldOwnerAndRouter()
    const reasons: string[] = []
    a.parley.on('connection', (s) => s.on('disconnect', (reason) => reasons.push(reason)))
    const url = (sid: string) => `${b.base}/poll?v=1&sid=${sid}`

    const open = await sessionOn(aBase, 'poll')
    // From b, which sends it on without its body: the client's connection to b closes.
    expect(await postTooLarge(url(open))).toEqual(TOO_LARGE)
    expect(reasons).toEqual(['payload too large'])

    const sid = await sessionOn(aBase, 'poll')
    const closing = a.close()
    try {
      await until(entered, 2000, "the application's close hook")
      expect(await postTooLarge(url(sid))).toEqual(TOO_LARGE)
      expect(a.parley.sessionFor(sid)).toBeUndefined()
      expect(reasons).toEqual(['payload too large', 'payload too large'])
    } finally {
      release()
      await closing
    }
  })
})

describe('a POST of a session frozen for its handoff, during the drain of app.close()', () => {
  it.each(['poll', 'sse'] as const)(
    'gets the 204 the route gives it when Fastify lets the drain through, and the session is still handed off (/%s)',
    async (path) => {
      /** The answer to a POST of the frozen session on a node whose Fastify has `return503OnClosing`. */
      async function frozenPost(return503OnClosing: boolean) {
        const cluster = new Cluster({ handoff: true })
        let storeAnswers = () => {}
        cluster.storeAnswersAfter = new Promise<void>((resolve) => {
          storeAnswers = resolve
        })
        const { app, base } = await startServer(
          { adapter: cluster.adapter('a'), allowedOrigins: [PAGE], handoff: { timeout: 5000, batchSize: 1 } },
          undefined,
          { return503OnClosing },
        )
        apps.push(app)
        const res = await fetch(`${base}/${path}?v=1`, { method: 'POST', body: JSON.stringify([8, {}]) })
        const open = decodeText(await res.text())
        if (!open.ok || open.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
        const sid = open.packet.sid
        const closing = app.close()
        try {
          await until(() => cluster.handOffSids.includes(sid), 2000, 'the drain storing the session')
          expect(app.parley.sessionFor(sid)?.state).toBe('frozen')
          const answer = await exchange(`${base}/${path}?v=1&sid=${sid}`, 'POST', { Origin: PAGE }, '[3]')
          expect(app.parley.sessionFor(sid)?.state).toBe('frozen')
          return {
            status: answer.status,
            allowOrigin: answer.headers['access-control-allow-origin'],
            cacheControl: answer.headers['cache-control'],
          }
        } finally {
          storeAnswers()
          await closing
          expect(cluster.handoffs.get(sid)?.stored).toBe(true)
        }
      }
      const routes = await frozenPost(false)
      expect(routes).toEqual({ status: 204, allowOrigin: PAGE, cacheControl: 'no-store' })
      expect(await frozenPost(true)).toEqual(routes)
    },
  )
})
