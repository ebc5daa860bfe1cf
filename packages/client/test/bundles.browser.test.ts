// The browser bundle in headless Chromium, loaded with a plain <script> tag, and the package as a
// user's bundler builds it for a browser: each connects, hears the server, and gets replies to text
// and binary emits. Nothing here breaks or times: they run beside other files, on a heartbeat
// longer than the file (a PING late on a loaded machine ends no session here). What the client
// does when networks break, and how fast, is in browser.test.ts.
// Each page is one BrowserContext (its own connections and storage): one simulated user.
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { type PageEvent, type PagePeers, servePage } from './browser-page.js'
import { ensureBundle } from './bundle.js'
import { closeServer, startServer, type TestServer } from './helpers.js'

const clientDir = fileURLToPath(new URL('..', import.meta.url))

const skip = skipBrowserSuites()
/** The script the page loads: the script-tag bundle, or the user's bundle of the package. */
let bundle = ''
let browser: Browser | undefined
const servers = new Set<TestServer>()
const proxies: FaultProxy[] = []
const contexts: BrowserContext[] = []
let pageErrors: string[] = []

beforeAll(async () => {
  if (skip) return
  bundle = ensureBundle()
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
})

afterEach(async () => {
  await closeTabs(contexts.splice(0))
  await Promise.all(proxies.splice(0).map((p) => p.close()))
  await Promise.all([...servers].map((s) => closeServer(s)))
  servers.clear()
  const errors = pageErrors
  pageErrors = []
  expect(errors).toEqual([])
})

/** A server serving the page and `bundle`. */
async function backend(): Promise<PagePeers & { server: TestServer }> {
  let peers: PagePeers | undefined
  const server = await startServer(
    (app) => {
      peers = servePage(app, () => bundle)
    },
    { pingInterval: 30_000, pingTimeout: 30_000 },
  )
  servers.add(server)
  if (!peers) throw new Error('the server served no page')
  return { server, ...peers }
}

/** Opens the page at `origin` in a fresh context; `name` identifies it to the server. */
async function open(origin: string, name: string, options: object = {}): Promise<Page> {
  const context = await openContext(browser!)
  contexts.push(context)
  const page = await context.newPage()
  page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`))
  const o = encodeURIComponent(JSON.stringify({ auth: { name }, ...options }))
  await page.goto(`${origin}/?o=${o}`)
  return page
}

const events = (page: Page) => page.evaluate<PageEvent[]>('parley.log')

/** Waits until the page has connected; what it logged then. */
async function connected(page: Page): Promise<PageEvent> {
  await page.waitForFunction(`parley.log.some((e) => e.event === 'connect')`, undefined, { timeout: 10_000 })
  return (await events(page)).find((e) => e.event === 'connect')!
}

describe.skipIf(skip)('the browser bundle in Chromium', () => {
  it('connects on WebSocket, hears the server, and gets replies to text and binary emits', async () => {
    const { server, sockets } = await backend()
    // Through a proxy that passes everything: it counts the upgrades.
    const proxy = await startFaultProxy(server.port)
    proxies.push(proxy)
    const page = await open(proxy.url, 'a')
    const first = await connected(page)
    expect(first).toMatchObject({ transport: 'websocket', recovered: false })
    expect(sockets.get('a')!.transport).toBe('websocket')
    await page.waitForFunction('parley.got.news.length > 0', undefined, { timeout: 3000 })
    expect(await page.evaluate('parley.got.news')).toEqual([{ text: 'welcome' }])
    expect(
      await page.evaluate(`parley.socket.emitWithAck('echo', { text: 'héllo ✓', list: [1, null, true] })`),
    ).toEqual({
      echoed: { text: 'héllo ✓', list: [1, null, true] },
      transport: 'websocket',
    })
    expect(await page.evaluate('parley.binary(70000)')).toEqual({
      name: 'a.bin',
      serverSawBytes: true,
      size: 70000,
      isBytes: true,
      reversed: true,
      isBuffer: true,
      tail: [1, 2, 255],
    })
    expect(proxy.upgrades).toBe(1)
    expect(await events(page)).toHaveLength(1)
  })
})

// What a user's bundler makes of `import ... from '@parley/client'` for a browser: the package's
// `browser` condition gives it dist/parley.browser.js (the ESM build of the same sources). The
// page above loads it in place of the script-tag file.
describe.skipIf(skip)("the package, bundled for the browser by a user's esbuild, in Chromium", () => {
  beforeAll(async () => {
    const built = await build({
      stdin: {
        contents: "import * as Parley from '@parley/client'\nglobalThis.Parley = Parley\n",
        resolveDir: clientDir,
      },
      bundle: true,
      minify: true,
      platform: 'browser',
      format: 'iife',
      write: false,
      metafile: true,
    })
    expect(Object.keys(built.metafile.inputs)).toContainEqual(
      expect.stringMatching(/dist\/parley\.browser\.js$/),
    )
    bundle = built.outputFiles[0]!.text
  })

  it.each(['websocket', 'sse', 'polling'])(
    'connects over %s and gets replies to text and binary emits',
    async (transport) => {
      const { server, sockets } = await backend()
      const page = await open(server.url, 'a', { transports: [transport] })
      expect(await connected(page)).toMatchObject({ transport, recovered: false })
      expect(sockets.get('a')!.transport).toBe(transport)
      expect(await page.evaluate(`parley.socket.emitWithAck('echo', 'hi')`)).toEqual({
        echoed: 'hi',
        transport,
      })
      expect(await page.evaluate('parley.binary(1000)')).toMatchObject({
        size: 1000,
        reversed: true,
        tail: [1, 2, 255],
      })
    },
  )
})
