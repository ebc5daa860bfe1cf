// Two copies of the client in one page: the script tag beside the package as a user's bundler
// built it (or two versions of either). Each copy has its own ParleyError class, and
// `error instanceof ParleyError` must hold for the errors of either, with either's class: a page
// that catches with one copy's class hears the other's errors. Real errors of real sockets, each
// copy's own, against the real server, in Chromium. Nothing here times anything.
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { ensureBundle } from './bundle.js'
import { closeServer, parleyOf, startServer, type TestServer } from './helpers.js'

const clientDir = fileURLToPath(new URL('..', import.meta.url))

const skip = skipBrowserSuites()
/** dist/parley.min.js, and dist/parley.browser.js as a user's esbuild bundles it. */
let scriptTag = ''
let bundled = ''
let browser: Browser | undefined
const servers: TestServer[] = []
const contexts: BrowserContext[] = []

beforeAll(async () => {
  if (skip) return
  scriptTag = ensureBundle()
  const built = await build({
    stdin: {
      contents: "import * as Parley from '@parley/client'\nglobalThis.Bundled = Parley\n",
      resolveDir: clientDir,
    },
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'iife',
    write: false,
  })
  bundled = built.outputFiles[0]!.text
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
})

afterEach(async () => {
  await closeTabs(contexts.splice(0))
  await Promise.all(servers.splice(0).map((s) => closeServer(s)))
})

// Both copies, each with a socket to the page's origin; `window.ready` once both connected.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>two copies</title></head><body>
<script src="/parley.min.js"></script>
<script src="/bundled.js"></script>
<script>
  const fromTag = Parley.connect(undefined, { transports: ['websocket'] })
  const fromBundle = Bundled.connect(undefined, { transports: ['polling'] })
  const up = (socket) => new Promise((resolve) => socket.once('connect', resolve))
  window.ready = Promise.all([up(fromTag), up(fromBundle)])
  addEventListener('pagehide', () => {
    fromTag.disconnect()
    fromBundle.disconnect()
  })
</script>
</body></html>`

describe.skipIf(skip)('two copies of the client in one page', () => {
  it("takes each copy's errors for ParleyErrors of the other copy, and nothing else", async () => {
    const server = await startServer(
      (app) => {
        app.get('/', (_request, reply) => reply.type('text/html').send(PAGE))
        app.get('/parley.min.js', (_request, reply) => reply.type('text/javascript').send(scriptTag))
        app.get('/bundled.js', (_request, reply) => reply.type('text/javascript').send(bundled))
        parleyOf(app).on('connection', (socket) => {
          socket.on('fail', () => {
            throw new Error('the handler failed on purpose')
          })
        })
      },
      { pingInterval: 30_000, pingTimeout: 30_000 },
    )
    servers.push(server)
    const context = await openContext(browser!)
    contexts.push(context)
    const page = await context.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
    await page.goto(server.url)
    await page.evaluate('window.ready')
    const seen = await page.evaluate(`(async () => {
      const thrown = (f) => { try { f() } catch (error) { return error } }
      // A refusal each copy throws at once, and a reply each copy rejects with (the server's code).
      const tagThrew = thrown(() => fromTag.emit('price', 10n))
      const bundleThrew = thrown(() => fromBundle.emit('price', 10n))
      const tagRejected = await fromTag.emitWithAck('fail').catch((error) => error)
      const bundleRejected = await fromBundle.emitWithAck('fail').catch((error) => error)
      class Refused extends Parley.ParleyError {}
      const mine = new Refused('MINE', 'a subclass of the script tag copy')
      const is = (value) => [value instanceof Parley.ParleyError, value instanceof Bundled.ParleyError]
      return {
        distinct: Parley.ParleyError !== Bundled.ParleyError,
        codes: [tagThrew.code, bundleThrew.code, tagRejected.code, bundleRejected.code],
        errors: [tagThrew, bundleThrew, tagRejected, bundleRejected].map(is),
        subclass: [is(mine), mine instanceof Refused, tagThrew instanceof Refused, bundleThrew instanceof Refused],
        others: [new Error('x'), { code: 'PARLEY_ACK_TIMEOUT' }, null, undefined, 'ParleyError'].map(is),
      }
    })()`)
    expect(seen).toEqual({
      distinct: true,
      codes: [
        'PARLEY_UNSERIALIZABLE',
        'PARLEY_UNSERIALIZABLE',
        'PARLEY_HANDLER_ERROR',
        'PARLEY_HANDLER_ERROR',
      ],
      errors: [
        [true, true],
        [true, true],
        [true, true],
        [true, true],
      ],
      subclass: [[true, true], true, false, false],
      others: [
        [false, false],
        [false, false],
        [false, false],
        [false, false],
        [false, false],
      ],
    })
    expect(pageErrors).toEqual([])
  })
})
