// The script-tag bundle in a dedicated Worker, in Chromium: a page's way to keep one connection
// off its main thread. A worker has no document, but it has navigator.onLine and the `online`
// event, on its global scope.
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { ensureBundle } from './bundle.js'
import { startServer, type TestServer } from './helpers.js'

/** The page: starts the worker and keeps what it says in `log`; `online()` tells it. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body><script>
  const worker = new Worker('/worker.js' + location.search)
  window.log = []
  worker.onmessage = (e) => log.push(e.data)
  window.online = () => worker.postMessage('online')
</script></body></html>`

/**
 * The worker: connects with the options in its query and reports the socket's events to the
 * page. On the page's word it waits (at most 5 s) for navigator.onLine, then fires `online` on
 * its own global scope (see the test for why).
 */
const WORKER = `importScripts('/parley.min.js')
  const socket = Parley.connect(undefined, JSON.parse(new URLSearchParams(location.search).get('o')))
  for (const event of ['connect', 'disconnect']) socket.on(event, () => postMessage(event))
  onmessage = async () => {
    for (let i = 0; i < 250 && !navigator.onLine; i++) await new Promise((r) => setTimeout(r, 20))
    postMessage('online:' + navigator.onLine)
    dispatchEvent(new Event('online'))
  }`

const skip = skipBrowserSuites()
let browser: Browser | undefined
let context: BrowserContext | undefined
let server: TestServer | undefined

beforeAll(async () => {
  if (skip) return
  const bundle = ensureBundle()
  server = await startServer(
    (app) => {
      app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
      app.get('/worker.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(WORKER))
      app.get('/parley.min.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(bundle))
    },
    // The client gives up on a server silent for pingInterval + pingTimeout: 1.25 s here, not
    // the helpers' 2 s, since the test waits for it once the network is gone. A PING may still
    // come 750 ms late before the client takes the server for gone.
    { pingInterval: 500, pingTimeout: 750 },
  )
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

afterEach(async () => {
  await context?.close()
  context = undefined
})

/** Waits until the page's log holds `entry` `count` times. */
const logged = (page: Page, entry: string, count = 1) =>
  page.waitForFunction(`log.filter((e) => e === '${entry}').length >= ${count}`, undefined, {
    timeout: 10_000,
  })

describe.skipIf(skip)('the client in a dedicated Worker', () => {
  it('reconnects as soon as the network is back after an outage', async () => {
    context = await openContext(browser!)
    const page = await context.newPage()
    // A backoff far longer than the test: only the `online` event can bring the client back.
    const options = { reconnectionDelay: 60_000, reconnectionDelayMax: 60_000, randomization: 0 }
    await page.goto(`${server!.url}/?${new URLSearchParams({ o: JSON.stringify(options) })}`)
    await logged(page, 'connect')
    // Offline, the server's PINGs stop coming: the client gives the transport up (1.25 s here).
    await context.setOffline(true)
    await logged(page, 'disconnect')
    await context.setOffline(false)
    // Chromium's offline emulation changes a worker's navigator.onLine without firing `online`
    // there, as a real network change does: the worker fires it on its own global scope.
    await page.evaluate('online()')
    await logged(page, 'online:true')
    await logged(page, 'connect', 2)
    expect(await page.evaluate('log')).toEqual(['connect', 'disconnect', 'online:true', 'connect'])
  })
})
