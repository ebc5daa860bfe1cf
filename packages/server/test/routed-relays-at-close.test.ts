// A node that closes while it relays a stream or a held poll through its adapter's own
// `routeRequest` (an adapter whose nodes have no URL: the owner answers in the same process). As
// over the network (forwarding.test.ts), the session lives on at its owner, so the client is
// told what a drained session's client is told, CLOSE 'server handoff', and resumes elsewhere,
// where a relay cut at close would fail its transport; the owner sees its request let go. And
// so a relayed stream's owner sees its request closed when the client leaves, as it would over
// the network. A request the node sends on while Fastify refuses requests at close names its
// client as the routes do, by Fastify's trustProxy; a trustProxy that throws on what a client's
// X-Forwarded-For names does not end the process there. A request routed in at close whose
// sending on fails inside the node (a bug) is answered as a route answers such a failure, a
// coded 503 that the node which routed it passes back to its client, not a destroyed response;
// so is a POST of a session of its own routed in whose taking fails inside it, and a GET of one
// whose last words or poll fail inside it as they are served. Once the head of that GET's answer
// has gone, the failure can only cut it: the node that routed it in cuts its client's stream
// too, which the client resumes from, rather than leave it open and silent. Cut inside the node
// before its head went, at close or while open, it gets that coded 503 too.
import type { ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { decodeText, ErrorCode, encodeText, type Packet, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import type { ParleyServerOptions } from '@parley/server'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { afterEach, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { Forwarder } from '../src/http/forward.js'
import { ROUTED_HEADER } from '../src/http/routing.js'
import { UpstreamPosts } from '../src/http/upstream-post.js'
import type { HeaderBag } from '../src/transports/http.js'
import { PollingTransport } from '../src/transports/polling.js'
import { SseTransport } from '../src/transports/sse.js'
import { Cluster } from './cluster-adapter.js'
import { expectFailedInside, expectWarned, frozenBug, type LoggedLine, warnLogger } from './failed-inside.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const apps: FastifyInstance[] = []
const raws: RawClient[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  for (const raw of raws.splice(0)) raw.close()
  for (const app of apps.splice(0)) await closeApp(app)
})

/**
 * Node `b` (`options`, Fastify's `trustProxy`; its warnings in `lines`), whose close waits for an event its own session's
 * middleware holds until `letGo()`: meanwhile Fastify refuses requests, and b answers those of
 * the endpoints by itself (see last-words.ts). `closeHeld()` opens that session (on `transport`;
 * over SSE, its client opens no stream), sends the event, and begins b's close (`closing`).
 */
async function heldOpenAtClose(options: ParleyServerOptions, trustProxy: FastifyServerOptions['trustProxy']) {
  let letGo: () => void = () => {}
  const held = new Promise<void>((resolve) => {
    letGo = resolve
  })
  let inMiddleware = false
  const lines: LoggedLine[] = []
  const b = await startServer(
    options,
    (app) => {
      app.parley.on('connection', (socket) =>
        socket.use(async () => {
          inMiddleware = true
          await held
        }),
      )
    },
    { trustProxy, logger: warnLogger(lines) },
  )
  apps.push(b.app)
  async function closeHeld(
    transport: 'sse' | 'polling' = 'polling',
  ): Promise<{ closing: Promise<undefined>; sid: string }> {
    // Its stream, if any, is the test's to open.
    const own = await rawConnect(
      transport,
      b.base,
      {},
      transport === 'sse' ? { firstGetAfter: new Promise(() => {}) } : {},
    )
    raws.push(own)
    await own.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await until(() => inMiddleware, 3000, "the event in b's middleware")
    const closing = b.app.close()
    await until(() => b.app.parley.closing, 3000, 'b closing')
    return { closing, sid: own.sid }
  }
  return { b, letGo, closeHeld, lines }
}

/**
 * Node `b` held open at close (`heldOpenAtClose`, its trustProxy off) and node `c` beside it on
 * `cluster`, both allowing `page`: the page's requests to c that c routes to b are answered by b
 * at close, with the CORS headers the page reads them by.
 */
async function heldBesideC(cluster: Cluster) {
  const page = 'https://page.test'
  const held = await heldOpenAtClose({ adapter: cluster.adapter('b'), allowedOrigins: [page] }, false)
  const c = await startServer({ adapter: cluster.adapter('c'), allowedOrigins: [page] })
  apps.push(c.app)
  return { ...held, c, page }
}

/**
 * Has the polling transport's `method` do `instead` with the GETs routed in from another node, as
 * a bug inside the node would (nothing else can make it fail), and serve the others as always.
 */
function breakRoutedPolls(method: 'serveLast' | 'downstream', instead: (res: ServerResponse) => void): void {
  const serve = PollingTransport.prototype[method]
  vi.spyOn(PollingTransport.prototype, method).mockImplementation(function (
    this: PollingTransport,
    res: ServerResponse,
    ...rest: [HeaderBag, number?]
  ) {
    if (res.req.headers[ROUTED_HEADER] === undefined) return serve.call(this, res, ...rest)
    instead(res)
  })
}

/** The packets of an SSE stream's events, or of a poll's lines. */
function packets(text: string, sse: boolean): Packet[] {
  const lines = sse
    ? text
        .split('\n\n')
        .filter((event) => event.startsWith('data: '))
        .map((event) => event.slice(6))
    : text.split('\n').filter((line) => line !== '')
  return lines.map((line) => {
    const decoded = decodeText(line)
    if (!decoded.ok) throw new Error(`not a packet: ${line}`)
    return decoded.packet
  })
}

it.each(['sse', 'polling'] as const)(
  'ends a %s GET relayed through routeRequest with CLOSE server handoff when the relaying node closes',
  async (transport) => {
    const cluster = new Cluster()
    const a = await startServer({ adapter: cluster.adapter('a') })
    apps.push(a.app)
    const b = await startServer({ adapter: cluster.adapter('b') })
    apps.push(b.app)
    const raw = await rawConnect(transport, a.base)
    raws.push(raw)
    const sid = raw.sid
    const session = () => a.app.parley.sessionFor(sid)
    // The client's own GET goes; its next one comes through b.
    if (transport === 'polling') raw.close()
    const path = transport === 'sse' ? 'sse' : 'poll'
    const answer = fetch(`${b.base}/${path}?v=1&sid=${sid}`)
    if (transport === 'sse') expect((await answer).status).toBe(200)
    else
      await until(() => session()?.transport?.http?.nextGetWithin() === undefined, 3000, 'a poll held at a')

    await within(b.app.close(), 3000, 'b closed')
    const res = await within(answer, 3000, 'the answer through b')
    expect(res.status).toBe(200)
    const got = packets(await within(res.text(), 3000, 'the end of what b relayed'), transport === 'sse')
    expect(got.at(-1)).toMatchObject({ type: PacketType.CLOSE, reason: 'server handoff' })
    // The session lives on at a, its request through b let go.
    expect(session()?.state).not.toBe('closed')
    expect(session()?.transport?.name).toBe(transport)
  },
)

it("lets the owner's stream go when the client of a stream relayed through routeRequest leaves", async () => {
  const cluster = new Cluster()
  const a = await startServer({ adapter: cluster.adapter('a') })
  apps.push(a.app)
  const b = await startServer({ adapter: cluster.adapter('b') })
  apps.push(b.app)
  // What b lets go of through the adapter: the owner then sees its request closed.
  let aborted = 0
  const onB = cluster.nodes.get('b')!
  const routeRequest = onB.routeRequest.bind(onB)
  onB.routeRequest = async (node, request) => {
    const response = await routeRequest(node, request)
    const abort = response.abort
    response.abort = () => {
      aborted++
      abort()
    }
    return response
  }
  const raw = await rawConnect('sse', a.base)
  raws.push(raw)
  const leaving = new AbortController()
  const res = await fetch(`${b.base}/sse?v=1&sid=${raw.sid}`, { signal: leaving.signal })
  expect(res.status).toBe(200)
  expect(aborted).toBe(0)
  leaving.abort()
  await until(() => aborted > 0, 3000, 'the stream let go at the owner')
})

it('names the client as its routes do (trustProxy) in a request it sends on while Fastify closes', async () => {
  const cluster = new Cluster()
  const a = await startServer({ adapter: cluster.adapter('a') })
  apps.push(a.app)
  // b's close waits for an event its own session's middleware holds: meanwhile Fastify refuses
  // requests, and b sends those of a's sessions on by itself (see last-words.ts).
  const { b, letGo, closeHeld } = await heldOpenAtClose({ adapter: cluster.adapter('b') }, true)
  const addresses: string[] = []
  const onB = cluster.nodes.get('b')!
  const routeRequest = onB.routeRequest.bind(onB)
  onB.routeRequest = (node, request) => {
    addresses.push(request.address)
    return routeRequest(node, request)
  }
  const onA = await rawConnect('polling', a.base)
  raws.push(onA)
  const { closing } = await closeHeld()
  const headers = { 'x-forwarded-for': '203.0.113.7' }
  // Through b, routed to a: its own poll is answered, since none is held there.
  const res = await within(
    fetch(`${b.base}/poll?v=1&sid=${onA.sid}`, { headers }),
    3000,
    'the poll through b',
  )
  expect(res.status).toBe(200)
  expect(addresses).toEqual(['203.0.113.7'])
  letGo()
  await within(closing, 5000, 'b closed')
})

it("takes a WebSocket upgrade while Fastify closes whose X-Forwarded-For the application's trustProxy throws on", async () => {
  // proxy-addr hands the function the addresses the header names, as the client wrote them, but
  // the first (the client's own).
  const trustProxy = (address: string) => {
    if (!isIP(address)) throw new Error(`not an address: ${address}`)
    return true
  }
  const { b, letGo, closeHeld } = await heldOpenAtClose({}, trustProxy)
  const { closing } = await closeHeld()
  // Taken while Fastify refuses requests (see last-words.ts): a new session is refused, coded.
  const ws = new WebSocket(`${b.base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL, {
    headers: { 'x-forwarded-for': '203.0.113.7, not-an-address' },
  })
  try {
    const first = new Promise<Packet>((resolve, reject) => {
      ws.once('message', (data) => {
        const decoded = decodeText(String(data))
        if (decoded.ok) resolve(decoded.packet)
        else reject(new Error(`not a packet: ${String(data)}`))
      })
      ws.once('error', reject)
    })
    ws.once('open', () => ws.send(encodeText({ type: PacketType.HELLO })))
    const answer = await within(first, 3000, 'the answer to the HELLO')
    expect(answer).toMatchObject({ type: PacketType.ERROR, code: ErrorCode.SERVER_SHUTTING_DOWN })
  } finally {
    ws.terminate()
    letGo()
  }
  await within(closing, 5000, 'b closed')
})

it.each(['GET', 'POST'])(
  'answers a %s routed in at close whose sending on fails inside 503 PARLEY_SERVER_SHUTTING_DOWN',
  async (method) => {
    const cluster = new Cluster()
    const a = await startServer({ adapter: cluster.adapter('a') })
    apps.push(a.app)
    const { letGo, closeHeld, lines, c, page } = await heldBesideC(cluster)
    const onA = await rawConnect('polling', a.base)
    raws.push(onA)
    // c's view of the session lags: it routes the request to b, which sends it on from there.
    const onC = cluster.nodes.get('c')!
    onC.sessionOwner = async () => ({ node: 'b' })
    const { closing } = await closeHeld()
    // b's look-up of the owner fails as a bug would (an error its logger cannot serialize):
    // nothing else can make it throw. c's own look-up (the client's request, not routed) goes on
    // as always.
    const ownerOf = Forwarder.prototype.ownerOf
    vi.spyOn(Forwarder.prototype, 'ownerOf').mockImplementation(function (
      this: Forwarder,
      sid,
      request,
      ...rest
    ) {
      if (request.headers[ROUTED_HEADER] !== undefined)
        return Promise.reject(frozenBug('a bug in the look-up'))
      return ownerOf.call(this, sid, request, ...rest)
    })

    const body =
      method === 'POST'
        ? encodeText({ type: PacketType.EVENT, seq: 1, name: 'hi', args: [], ackId: 0 })
        : undefined
    const res = await within(
      fetch(`${c.base}/poll?v=1&sid=${onA.sid}`, { method, body, headers: { origin: page } }),
      5000,
      'the answer through c',
    )
    // b's answer, with the CORS headers the page reads it by.
    await expectFailedInside(res, page)
    expectWarned(lines, 'parley: could not send a request on at close', 'a bug in the look-up')
    // The session stays its owner's, where the client's next try finds it.
    expect(a.app.parley.sessionFor(onA.sid)).toBeDefined()
    letGo()
    await within(closing, 5000, 'b closed')
  },
)

it('answers a POST of its own session routed in at close whose taking fails inside 503 PARLEY_SERVER_SHUTTING_DOWN', async () => {
  const { letGo, closeHeld, lines, c, page } = await heldBesideC(new Cluster())
  // b's own session holds an event in its middleware: it is live at close, its POSTs taken.
  const { closing, sid } = await closeHeld()
  // Taking the POST fails as a bug would (an error its logger cannot serialize): nothing else
  // can make it reject.
  vi.spyOn(UpstreamPosts.prototype, 'take').mockRejectedValue(frozenBug('a bug in the POST'))

  const body = encodeText({ type: PacketType.EVENT, seq: 2, name: 'hi', args: [], ackId: 0 })
  const res = await within(
    fetch(`${c.base}/poll?v=1&sid=${sid}`, { method: 'POST', body, headers: { origin: page } }),
    5000,
    'the answer through c',
  )
  await expectFailedInside(res, page)
  expectWarned(lines, 'parley: could not take a POST at close', 'a bug in the POST')
  letGo()
  await within(closing, 5000, 'b closed')
})

it.each(['its last words', 'its poll'] as const)(
  'answers a GET of its own session routed in at close whose serving of %s fails inside 503 PARLEY_SERVER_SHUTTING_DOWN',
  async (what) => {
    const cluster = new Cluster()
    const { b, letGo, closeHeld, lines, c, page } = await heldBesideC(cluster)
    // A second session of b's, its client between two GETs: at close it keeps its last words.
    const between = await rawConnect('polling', b.base)
    raws.push(between)
    between.close()
    const onC = cluster.nodes.get('c')!
    onC.sessionOwner = async () => ({ node: 'b' })
    const { closing, sid: held } = await closeHeld()
    await until(() => b.app.parley.sessionFor(between.sid) === undefined, 3000, "the second session's end")
    // Serving it fails as a bug would (an error its logger cannot serialize), on the routed GET
    // alone.
    breakRoutedPolls(what === 'its last words' ? 'serveLast' : 'downstream', () => {
      throw frozenBug('a bug in the GET')
    })

    const sid = what === 'its last words' ? between.sid : held
    const res = await within(
      fetch(`${c.base}/poll?v=1&sid=${sid}`, { headers: { origin: page } }),
      5000,
      'the answer through c',
    )
    await expectFailedInside(res, page)
    expectWarned(lines, 'parley: could not hand a client its last words at close', 'a bug in the GET')
    letGo()
    await within(closing, 5000, 'b closed')
  },
)

it('cuts the stream of a GET routed in at close whose serving fails inside once its head has gone', async () => {
  const cluster = new Cluster()
  const { b, letGo, closeHeld } = await heldOpenAtClose({ adapter: cluster.adapter('b') }, false)
  const c = await startServer({ adapter: cluster.adapter('c') })
  apps.push(c.app)
  cluster.nodes.get('c')!.sessionOwner = async () => ({ node: 'b' })
  const { closing, sid } = await closeHeld('sse')
  // Serving the stream fails as a bug would once its head went: nothing else can make it throw.
  vi.spyOn(SseTransport.prototype, 'downstream').mockImplementation((res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    throw new Error('a bug in the stream')
  })

  const res = await within(fetch(`${c.base}/sse?v=1&sid=${sid}`), 5000, 'the head through c')
  // The head went before the failure: a cut stream is all that is left, which the client resumes
  // from; no coded refusal, which would start a new session beside its own.
  expect(res.status).toBe(200)
  await expect(within(res.text(), 5000, 'the stream through c cut')).rejects.toThrow(TypeError)
  expect(b.app.parley.sessionFor(sid)).toBeDefined()
  letGo()
  await within(closing, 5000, 'b closed')
})

it.each(['destroys it', 'destroys it and throws'] as const)(
  'answers a GET of its own session routed in at close whose serving %s before its head 503 PARLEY_SERVER_SHUTTING_DOWN',
  async (what) => {
    const cluster = new Cluster()
    const { b, letGo, closeHeld, c, page } = await heldBesideC(cluster)
    cluster.nodes.get('c')!.sessionOwner = async () => ({ node: 'b' })
    const { closing, sid } = await closeHeld()
    // The poll is cut inside b before anything of its answer went, as a bug would cut it.
    breakRoutedPolls('downstream', (res) => {
      res.destroy()
      if (what === 'destroys it and throws') throw new Error('a bug in the poll')
    })

    const res = await within(
      fetch(`${c.base}/poll?v=1&sid=${sid}`, { headers: { origin: page } }),
      5000,
      'the answer through c',
    )
    // The client tries again, its session still at b: no 400 PARLEY_UNKNOWN_SESSION, which would
    // start a new session beside its own, and b is not taken for a node c cannot reach.
    await expectFailedInside(res, page)
    expect(c.app.parley.unreachableOwnerCount).toBe(0)
    expect(b.app.parley.sessionFor(sid)).toBeDefined()
    letGo()
    await within(closing, 5000, 'b closed')
  },
)

it('answers a GET routed in while open whose serving destroys its response before its head 503 PARLEY_SERVER_SHUTTING_DOWN', async () => {
  const cluster = new Cluster()
  const page = 'https://page.test'
  const b = await startServer({ adapter: cluster.adapter('b'), allowedOrigins: [page] })
  apps.push(b.app)
  const c = await startServer({ adapter: cluster.adapter('c'), allowedOrigins: [page] })
  apps.push(c.app)
  const raw = await rawConnect('polling', b.base)
  raws.push(raw)
  raw.close()
  cluster.nodes.get('c')!.sessionOwner = async () => ({ node: 'b' })
  breakRoutedPolls('downstream', (res) => res.destroy())

  const res = await within(
    fetch(`${c.base}/poll?v=1&sid=${raw.sid}`, { headers: { origin: page } }),
    5000,
    'the answer through c',
  )
  await expectFailedInside(res, page)
  expect(c.app.parley.unreachableOwnerCount).toBe(0)
})
