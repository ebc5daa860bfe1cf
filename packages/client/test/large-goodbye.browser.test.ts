// A page that emits a lot in its `pagehide` listener and then says goodbye, in Chromium, over
// SSE and polling, behind a slow way up: the server must hear the goodbye at once, however much
// went before it in that turn. Browsers refuse `keepalive` for bodies past 64 KiB, and cancel a
// page's other requests as it goes: a goodbye in such a POST never arrived, and the session lived
// out its recovery window, the user still present for everyone else.
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { ensureBundle } from './bundle.js'
import { closeServer, parleyOf, startServer, until } from './helpers.js'

/** Connects over the transport `t`; on its way out, emits `n` notes of 10 000 characters, then leaves. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body>
<script src="/parley.min.js"></script>
<script>
  const query = new URLSearchParams(location.search)
  const socket = Parley.connect(undefined, { transports: [query.get('t')] })
  window.connected = new Promise((resolve) => socket.on('connect', resolve))
  addEventListener('pagehide', () => {
    for (let i = 0; i < Number(query.get('n')); i++) socket.emit('note', i, 'x'.repeat(10_000))
    socket.disconnect()
  })
</script></body></html>`

const skip = skipBrowserSuites()
let bundle = ''
let browser: Browser | undefined

beforeAll(async () => {
  if (skip) return
  bundle = ensureBundle()
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
})

// The four cases side by side: each waits out its slow POSTs (a second each), on a server, proxy
// and page of its own, which it closes itself once it is over.
describe.skipIf(skip).concurrent.each(['sse', 'polling'])('a page closed over %s', (transport) => {
  it.for([
    // About 70 KB with the goodbye: past the browsers' keepalive bound, the goodbye goes with the
    // first six alone, in order, and the seventh is dropped.
    [
      'ends its session at once, the emits of its last turn that fit in 64 KiB delivered, the rest dropped',
      7,
      ['0', '1', '2', '3', '4', '5'],
    ],
    [
      'ends its session at once, the emits of its last turn delivered, when they fit in 64 KiB',
      3,
      ['0', '1', '2'],
    ],
  ] as const)('%s', async ([, notes, delivered], { expect, onTestFinished }) => {
    const seen: string[] = []
    const server = await startServer(
      (app) => {
        app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
        app.get('/parley.min.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(bundle))
        parleyOf(app).on('connection', (socket) => {
          socket.on('note', (i: number) => seen.push(String(i)))
          socket.on('disconnect', (reason: string) => seen.push(`end: ${reason}`))
        })
      },
      // No heartbeat while the test runs: the session can only end on the page's goodbye.
      { pingInterval: 20_000, pingTimeout: 20_000 },
    )
    onTestFinished(() => closeServer(server))
    const proxy = await startFaultProxy(server.port)
    onTestFinished(() => proxy.close())
    const context = await openContext(browser!)
    // Closed already, unless the test failed before closing its page.
    onTestFinished(() => context.close())
    const page = await context.newPage()
    await page.goto(`${proxy.url}/?t=${transport}&n=${notes}`)
    await page.evaluate('window.connected')
    // From now on a POST takes a second to cross: the page is gone long before, and only what
    // the browser keeps alive for it (keepalive) gets there.
    proxy.slowBy = 1000
    proxy.posts = 'slow'
    const ended = () => until(() => seen.some((s) => s.startsWith('end: ')), 5000, 'the end of the session')
    await closeTabs(page, { heard: ended })
    expect(seen).toEqual([...delivered, 'end: client disconnect'])
  })
})
