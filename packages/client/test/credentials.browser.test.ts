// Cookie authentication from a page of another origin, in Chromium, on each transport: the
// WebSocket carries the page's cookies by itself, SSE and polling only with `withCredentials`.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { closeServer, parleyOf, startServer, type TestServer } from './helpers.js'

const clientDir = fileURLToPath(new URL('..', import.meta.url))
const bundlePath = join(clientDir, 'dist', 'parley.min.js')

/** The page: connects to the Parley server of another origin, with the options in its query. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body>
<script src="/parley.min.js"></script>
<script>
  const query = new URLSearchParams(location.search)
  const socket = Parley.connect(query.get('server'), JSON.parse(query.get('o')))
  window.outcome = new Promise((resolve) => {
    socket.on('connect', () => resolve({ connected: socket.transport }))
    socket.on('connect_error', (error) => resolve({ refused: error.code }))
  })
</script></body></html>`

const skip = skipBrowserSuites()
let browser: Browser | undefined
let pages: http.Server | undefined
let pagesUrl = ''
let server: TestServer | undefined

beforeAll(async () => {
  if (skip) return
  if (!existsSync(bundlePath))
    execFileSync(process.execPath, ['build.mjs'], { cwd: clientDir, stdio: 'inherit' })
  const bundle = readFileSync(bundlePath, 'utf8')
  pages = http.createServer((req, res) => {
    const script = req.url === '/parley.min.js'
    res.writeHead(200, { 'content-type': script ? 'text/javascript' : 'text/html' })
    res.end(script ? bundle : PAGE)
  })
  await new Promise<void>((resolve) => pages!.listen(0, '127.0.0.1', resolve))
  pagesUrl = `http://127.0.0.1:${(pages.address() as net.AddressInfo).port}`
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)))
})

afterEach(async () => {
  // The pages said no goodbye (a closed context does not run `pagehide` in the headless
  // shell): the sessions end here, so that the close waits for no GET.
  if (server) await closeServer(server)
  server = undefined
})

/** A Parley server on another port (another origin, the same site) that wants a cookie. */
async function cookieServer() {
  const cookies: (string | undefined)[] = []
  server = await startServer(
    (app) => {
      parleyOf(app).use(async (socket) => {
        const cookie = (socket.handshake as unknown as { headers: Record<string, string> }).headers.cookie
        cookies.push(cookie)
        if (cookie !== 'token=abc') throw Object.assign(new Error('log in first'), { code: 'NOT_LOGGED_IN' })
      })
    },
    { allowedOrigins: [pagesUrl] },
  )
  return { url: `${server.url}/parley`, cookies }
}

/** Opens the page in a fresh context that holds the cookie, and tells how the connect went. */
async function connectFromPage(serverUrl: string, options: Record<string, unknown>) {
  const context = await openContext(browser!)
  try {
    await context.addCookies([{ name: 'token', value: 'abc', url: serverUrl }])
    const page = await context.newPage()
    const query = new URLSearchParams({ server: serverUrl, o: JSON.stringify(options) })
    await page.goto(`${pagesUrl}/?${query}`)
    return await page.evaluate('window.outcome')
  } finally {
    await context.close()
  }
}

describe.skipIf(skip)('cookies from a page of another origin', () => {
  it.each(['websocket', 'sse', 'polling'] as const)(
    'reach the server over %s with withCredentials',
    async (t) => {
      const { url, cookies } = await cookieServer()
      const outcome = await connectFromPage(url, {
        transports: [t],
        withCredentials: true,
        reconnection: false,
      })
      expect(outcome).toEqual({ connected: t })
      expect(cookies).toEqual(['token=abc'])
    },
  )

  it.each(['sse', 'polling'] as const)('stay behind over %s without it (the refusal says so)', async (t) => {
    const { url, cookies } = await cookieServer()
    const outcome = await connectFromPage(url, { transports: [t], reconnection: false })
    expect(outcome).toEqual({ refused: 'NOT_LOGGED_IN' })
    expect(cookies).toEqual([undefined])
  })

  it('a page of an origin the server refuses learns PARLEY_ORIGIN_FORBIDDEN and stops', async () => {
    server = await startServer(() => {}, { allowedOrigins: ['https://someone-else.example'] })
    const outcome = await connectFromPage(`${server.url}/parley`, {})
    expect(outcome).toEqual({ refused: 'PARLEY_ORIGIN_FORBIDDEN' })
  })
})
