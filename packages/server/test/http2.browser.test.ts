// Parley on a Fastify served over HTTP/2 with TLS, in Chromium, with the browser bundle: the page,
// SSE and polling go over h2 (one connection, past the six per host of HTTP/1.1), WebSocket over
// an HTTP/1.1 upgrade beside it (`allowHTTP1: true`), or nowhere without it, where the client
// steps down to SSE. The README's "HTTP/2" section says the same.
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest, SecureServerOptions } from 'node:http2'
import parley, { type ServerSocket } from '@parley/server'
import Fastify from 'fastify'
import type { Browser, BrowserContext, Page, Route } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { ensureBundle } from '../../client/test/bundle.js'
import { type ClosableApp, closeApp, until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

// The page connects to its own origin; it answers the server's 'ask' with twice the number.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body>
<script src="/parley.min.js"></script>
<script>
  const options = JSON.parse(new URLSearchParams(location.search).get('o') || '{}')
  const log = []
  const failures = []
  const news = []
  const socket = Parley.connect(undefined, options)
  socket.on('connect', () => log.push({ event: 'connect', transport: socket.transport, id: socket.id }))
  socket.on('disconnect', (reason) => log.push({ event: 'disconnect', reason }))
  socket.on('transport', (now, before, why) => log.push({ event: 'transport', now, before, why }))
  socket.on('transport_error', (transport, error) => failures.push({ transport, code: error.code }))
  socket.on('news', (n) => news.push(n))
  socket.on('ask', (n, ack) => ack(n * 2))
  window.parley = { socket, log, failures, news }
  addEventListener('pagehide', () => socket.disconnect())
</script></body></html>`

/** What the page logs about its connection. */
interface PageEvent {
  event: 'connect' | 'disconnect' | 'transport'
  transport?: string
  id?: string
  reason?: string
  now?: string
  before?: string
  why?: string
}

const skip = skipBrowserSuites()
let browser: Browser | undefined
let tls: { key: Buffer; cert: Buffer } | undefined
let app: ClosableApp | undefined
let context: BrowserContext | undefined

beforeAll(async () => {
  if (skip) return
  tls = selfSigned()
  browser = await launchChromium(['--ignore-certificate-errors'])
})

afterAll(async () => {
  await browser?.close()
})

afterEach(async () => {
  if (context) await closeTabs(context)
  context = undefined
  await closeApp(app)
  app = undefined
})

/** A request as the HTTP/2 server hands it over: HTTP/2's own, or HTTP/1.1's beside it. */
type RawRequest = IncomingMessage | Http2ServerRequest

/**
 * An HTTP/2 Fastify with TLS on 127.0.0.1: the page, the bundle and Parley. `seen` lists each of
 * Parley's requests as `<HTTP version> <what>`; `refuseUpgrades` WebSocket upgrades are refused
 * (401) by an application hook before Parley sees them.
 */
async function h2Server(https: Omit<SecureServerOptions, 'key' | 'cert'>, refuseUpgrades = 0) {
  const bundle = ensureBundle()
  const server = Fastify({ http2: true, https: { ...tls, ...https } })
  app = server
  const seen: string[] = []
  // The HTTP/2 connections (sessions) that carried Parley's requests.
  const connections = new Set<unknown>()
  const note = (req: RawRequest, what: string) => {
    if (!req.url?.startsWith('/parley/')) return
    seen.push(`${req.httpVersion} ${what}`)
    if ('stream' in req) connections.add(req.stream.session)
  }
  server.server.on('request', (req: RawRequest) => note(req, `${req.method} ${req.url?.split('?')[0]}`))
  server.server.on('upgrade', (req: IncomingMessage) => note(req, `upgrade ${req.url?.split('?')[0]}`))
  let refused = 0
  server.addHook('onRequest', async (request, reply) => {
    if (request.headers.upgrade === undefined || refused >= refuseUpgrades) return
    refused++
    return reply.code(401).send({ message: 'not yet' })
  })
  // No cast: the plugin and `app.parley` are typed on an HTTP/2 instance (see types.test.ts).
  await server.register(parley, {})
  server.get('/', (_request, reply) => reply.type('text/html').send(PAGE))
  server.get('/parley.min.js', (_request, reply) => reply.type('text/javascript').send(bundle))
  const sockets: ServerSocket[] = []
  const notes: number[] = []
  server.parley.on('connection', (socket) => {
    sockets.push(socket)
    socket.on('note', (n: number) => notes.push(n))
    socket.on('add', (n: number, ack?: (sum: number) => void) => ack?.(n + 1))
  })
  await server.listen({ port: 0, host: '127.0.0.1' })
  const { port } = server.server.address() as { port: number }
  return { server, url: `https://127.0.0.1:${port}`, seen, connections, sockets, notes }
}

type Backend = Awaited<ReturnType<typeof h2Server>>

/** Opens the page in a context of its own (one user), with the client's options. */
async function open(backend: Backend, options: Record<string, unknown>): Promise<Page> {
  context = await openContext(browser!, { ignoreHTTPSErrors: true })
  const page = await context.newPage()
  await page.goto(`${backend.url}/?o=${encodeURIComponent(JSON.stringify(options))}`)
  return page
}

const log = (page: Page) => page.evaluate<PageEvent[]>('window.parley.log')
const failures = (page: Page) =>
  page.evaluate<{ transport: string; code: string }[]>('window.parley.failures')

/** How the page loaded what it asked of the server: `h2` or `http/1.1`, per path. */
async function protocols(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(
    `performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname + ' ' + e.nextHopProtocol)`,
  )
}

/** Polls `check` in the page until it is true, at most `ms`. */
async function pageUntil(page: Page, check: string, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms
  while (!(await page.evaluate<boolean>(check))) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * Events and acks both ways on the page's session, numbered from `from`: the page's emit and
 * `emitWithAck`, the server's emit and `emitWithAck` (which the page answers).
 */
async function exchange(page: Page, backend: Backend, from: number): Promise<void> {
  const socket = backend.sockets.at(-1)!
  await page.evaluate(`window.parley.socket.emit('note', ${from})`)
  const sum = await within(
    page.evaluate<number>(`window.parley.socket.emitWithAck('add', ${from})`),
    5000,
    'ack',
  )
  expect(sum).toBe(from + 1)
  await until(() => backend.notes.includes(from), 5000, `note ${from}`)
  socket.emit('news', from)
  const doubled = await within(socket.timeout(5000).emitWithAck('ask', from), 6000, "the page's ack")
  expect(doubled).toBe(from * 2)
  await pageUntil(page, `window.parley.news.includes(${from})`, 5000, `news ${from}`)
}

describe.skipIf(skip)('Parley on HTTP/2 with TLS, in Chromium', () => {
  it('allowHTTP1: the page and its fetches on h2, WebSocket over an HTTP/1.1 upgrade beside it', async () => {
    const backend = await h2Server({ allowHTTP1: true })
    const page = await open(backend, {})
    await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
    expect(await log(page)).toMatchObject([{ event: 'connect', transport: 'websocket' }])
    await exchange(page, backend, 1)
    expect(backend.seen).toEqual(['1.1 upgrade /parley/ws'])
    expect(await protocols(page)).toEqual(['/parley.min.js h2'])
    expect(await failures(page)).toEqual([])
  })

  it('allowHTTP1: SSE over h2, then the probe climbs to WebSocket, the session kept', async () => {
    // The first upgrade refused: the client lands on SSE and probes WebSocket at once.
    const backend = await h2Server({ allowHTTP1: true }, 1)
    const page = await open(backend, { upgradeDelay: 0 })
    await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
    expect((await log(page))[0]).toMatchObject({ event: 'connect', transport: 'sse' })
    await exchange(page, backend, 1)
    await pageUntil(page, `window.parley.socket.transport === 'websocket'`, 8000, 'the climb')
    const events = await log(page)
    expect(events).toMatchObject([
      { event: 'connect', transport: 'sse' },
      { event: 'transport', now: 'websocket', before: 'sse', why: 'upgrade' },
    ])
    await exchange(page, backend, 2)
    // One session throughout, which saw every event once.
    expect(backend.sockets).toHaveLength(1)
    expect(backend.notes).toEqual([1, 2])
    expect(await page.evaluate('window.parley.news')).toEqual([1, 2])
    expect(backend.seen).toContain('2.0 GET /parley/sse')
    expect(backend.seen).toContain('2.0 POST /parley/sse')
    // The event stream and its POSTs: streams of the page's one connection.
    expect(backend.connections.size).toBe(1)
    expect(backend.seen.filter((line) => line.includes('upgrade'))).toEqual([
      '1.1 upgrade /parley/ws',
      '1.1 upgrade /parley/ws',
    ])
    expect(
      backend.seen.filter((line) => !line.includes('upgrade')).every((line) => line.startsWith('2.0 ')),
    ).toBe(true)
    expect(await failures(page)).toEqual([{ transport: 'websocket', code: 'PARLEY_TRANSPORT_ERROR' }])
  })

  it('polling over h2 alone: requests side by side on one connection', async () => {
    const backend = await h2Server({ allowHTTP1: true })
    const page = await open(backend, { transports: ['polling'] })
    await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
    await exchange(page, backend, 1)
    expect(backend.seen.length).toBeGreaterThan(0)
    expect(backend.seen.every((line) => line.startsWith('2.0 ') && line.includes('/parley/poll'))).toBe(true)
    // The held GET and the POSTs beside it: streams of one connection.
    expect(backend.seen).toContain('2.0 POST /parley/poll')
    expect(backend.connections.size).toBe(1)
  })

  it('without allowHTTP1: WebSocket cannot open, the client steps down to SSE over h2', async () => {
    const backend = await h2Server({ allowHTTP1: false })
    const page = await open(backend, {})
    await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
    expect(await log(page)).toMatchObject([{ event: 'connect', transport: 'sse' }])
    expect(await failures(page)).toEqual([{ transport: 'websocket', code: 'PARLEY_TRANSPORT_ERROR' }])
    await exchange(page, backend, 1)
    // Chromium's upgrade never reached the server: it speaks only h2.
    expect(backend.seen.filter((line) => line.includes('upgrade'))).toEqual([])
    expect(backend.seen.every((line) => line.startsWith('2.0 '))).toBe(true)
  })

  it('enableConnectProtocol: Chromium tries WebSocket over h2 (RFC 8441), the client steps down to SSE', async () => {
    const backend = await h2Server({ allowHTTP1: true, settings: { enableConnectProtocol: true } })
    const connects: string[] = []
    backend.server.server.on('stream', (_stream, headers) => {
      if (headers[':method'] === 'CONNECT')
        connects.push(`${headers[':protocol']} ${headers[':path']?.split('?')[0]}`)
    })
    const page = await open(backend, {})
    await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
    expect(await log(page)).toMatchObject([{ event: 'connect', transport: 'sse' }])
    expect(await failures(page)).toEqual([{ transport: 'websocket', code: 'PARLEY_TRANSPORT_ERROR' }])
    expect(connects).toEqual(['websocket /parley/ws'])
    await exchange(page, backend, 1)
  })

  // Node's close() of an HTTP/2 server (before Node 24) leaves its sessions open: the page's,
  // which a retrying client keeps busy with the closing server's 503s, would hold the close.
  it.each(['sse', 'polling'] as const)(
    'a server closing with a page on %s over h2 says so, and closes',
    async (t) => {
      const backend = await h2Server({ allowHTTP1: true })
      const page = await open(backend, { transports: [t] })
      await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
      await exchange(page, backend, 1)
      const closing = app!.close()
      app = undefined
      await within(closing, 8000, 'the close')
      await pageUntil(page, `window.parley.log.some((e) => e.event === 'disconnect')`, 5000, 'the disconnect')
      expect((await log(page)).filter((e) => e.event === 'disconnect')).toEqual([
        { event: 'disconnect', reason: 'server shutdown' },
      ])
    },
  )

  // A polling client between two polls at close: its CLOSE waits for its next GET, which the
  // closing server (Fastify refusing every request with its bare 503) must answer with it.
  it('a server closing with a page between two polls over h2 hands the CLOSE to its next poll', async () => {
    const backend = await h2Server({ allowHTTP1: true })
    const page = await open(backend, { transports: ['polling'] })
    await pageUntil(page, 'window.parley.socket.connected', 8000, 'connect')
    await exchange(page, backend, 1)
    // The page's next poll, held in the browser until the server has closed.
    let hold = false
    const held: Route[] = []
    await page.route(
      (url) => url.pathname === '/parley/poll',
      (route) => {
        if (hold && route.request().method() === 'GET') held.push(route)
        else void route.continue()
      },
    )
    hold = true
    // Answers the held poll: the page asks again at once.
    backend.sockets.at(-1)!.emit('news', 2)
    await pageUntil(page, 'window.parley.news.includes(2)', 5000, 'news 2')
    await until(() => held.length === 1, 5000, "the page's next poll")
    const closing = app!.close()
    app = undefined
    await until(() => backend.server.parley.closed, 5000, 'the server closing')
    await held[0]!.continue()
    await within(closing, 8000, 'the close')
    await pageUntil(page, `window.parley.log.some((e) => e.event === 'disconnect')`, 5000, 'the disconnect')
    expect((await log(page)).filter((e) => e.event === 'disconnect')).toEqual([
      { event: 'disconnect', reason: 'server shutdown' },
    ])
  })
})
