// What the page says when the connection fails, in words a person can act on, with the client's
// own words in a tooltip: a WebSocket refused on the way (the page goes on over SSE), a people
// list the server could not make, and a server that stops. Each on one server, timing nothing:
// they run beside other files. A session a draining node hands to another one, whose page
// resumes after the drain's random delay, is in failure-words-drain.browser.test.ts.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { buildChatApp } from '../src/app.js'
import { MemoryStore } from '../src/store.js'
import { BreakingAdapter } from './breaking-adapter.js'
import { pageBuilt } from './page-build.js'

/** Opens the chat as `name` at `base` (with `query`), in a context of its own, and waits until it is in. */
async function join(browser: Browser, base: string, name: string, query = ''): Promise<Page> {
  const page = await (await openContext(browser)).newPage()
  await page.goto(`${base}/${query}`)
  await page.fill('#nickname', name)
  await page.click('#join button')
  await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
    timeout: 10_000,
  })
  return page
}

/** Waits until `selector`'s text is `text`; on timeout, says what it showed instead. */
async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  try {
    await page.waitForFunction(
      ([selector, text]) => {
        const element = document.querySelector<HTMLElement>(selector)
        return element !== null && !element.hidden && element.textContent === text
      },
      [selector, text] as const,
      { timeout: 10_000 },
    )
  } catch (error) {
    const shown = await page.textContent(selector, { timeout: 1000 }).catch(() => null)
    throw new Error(`${selector} never said "${text}" (it said "${shown}")`, { cause: error })
  }
}

describe.skipIf(skipBrowserSuites())('the words of a failure, on one server', () => {
  let browser: Browser
  let proxy: FaultProxy | undefined
  const servers = new Set<FastifyInstance>()

  beforeAll(async () => {
    await pageBuilt()
    browser = await launchChromium()
  })

  afterAll(async () => {
    await proxy?.close()
    for (const server of servers) await server.close()
    await browser?.close()
  })

  async function startChat(): Promise<{ app: FastifyInstance; url: string }> {
    const app = await buildChatApp({ store: new MemoryStore() })
    servers.add(app)
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
  }

  it('says WebSocket is blocked on this network when it is refused, and that SSE is used instead', async () => {
    const { app } = await startChat()
    proxy = await startFaultProxy((app.server.address() as AddressInfo).port)
    proxy.ws = 'reject'
    const page = await join(browser, proxy.url, 'ada')
    await waitForText(page, '#transport', 'sse: WebSocket is blocked on this network: using SSE instead')
    expect(await page.getAttribute('#transport', 'title')).toMatch(
      /^sse: websocket WebSocket ws:.+ closed \(1006\)$/,
    )
    await closeTabs(page)
  })

  it('says the people list is unavailable when a join cannot make it, until the next list', async () => {
    let adapter: BreakingAdapter | undefined
    const app = await buildChatApp({
      store: new MemoryStore(),
      adapter: (sockets) => {
        adapter = new BreakingAdapter(sockets)
        return adapter
      },
    })
    servers.add(app)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const page = await join(browser, url, 'dee')
    expect(await page.isHidden('#people-unavailable')).toBe(true)
    if (!adapter) throw new Error('the server made no adapter')
    adapter.broken = true
    await page.click('#rooms [data-room="help"]', { timeout: 10_000 })
    await waitForText(page, '#people-unavailable', 'People list unavailable just now.')
    expect(await page.locator('#people li').allTextContents()).toEqual(['dee'])
    adapter.broken = false
    // Someone else comes: the room's next list is whole, and the note goes.
    const other = await join(browser, url, 'eli', '?room=help')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length === 2, null, {
      timeout: 10_000,
    })
    expect(await page.isHidden('#people-unavailable')).toBe(true)
    await closeTabs(other)
    await closeTabs(page)
  })

  it('says the server is restarting, and that the page reconnects, when the server stops', async () => {
    const { app, url } = await startChat()
    const page = await join(browser, url, 'bob')
    servers.delete(app)
    await app.close()
    await page.waitForFunction(
      () =>
        /^The server is restarting: reconnecting( \(attempt \d+\))?…$/.test(
          document.querySelector('#banner')?.textContent ?? '',
        ),
      null,
      { timeout: 10_000 },
    )
    await waitForText(page, '#transport', 'offline: the server is restarting')
    expect(await page.getAttribute('#transport', 'title')).toBe('offline: server shutdown')
    expect(await page.getAttribute('#banner', 'title')).toMatch(/^disconnect: server shutdown/)
    await closeTabs(page)
  })
})
