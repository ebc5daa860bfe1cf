// The chat demo in headless Chromium, for the suites that drive its page: the page built from
// this checkout, a shared server, the servers a test starts of its own, and what a person does on
// the page (join, write) and what the tests read back from it.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { launchChromium, openContext } from '../../../test/support/chromium.js'
import type { FaultProxy } from '../../../test/support/fault-proxy.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { buildChatApp, type ChatAppOptions } from '../src/app.js'
import { type ChatStore, MemoryStore } from '../src/store.js'
import { pageBuilt } from './page-build.js'

/** What `chatInChromium` gives a suite. */
export interface ChatInChromium {
  /** The browser, launched once for the suite. */
  readonly browser: Browser
  /** The port of the suite's shared server (a MemoryStore of its own). */
  readonly port: number
  /** Proxies the suite's tests start: closed after the suite. */
  readonly proxies: FaultProxy[]
  /** Starts a chat server on 127.0.0.1, on `at` or else a free port: closed after the suite. */
  startChat(
    store: ChatStore,
    at?: number,
    options?: Omit<ChatAppOptions, 'store'>,
  ): Promise<{ app: FastifyInstance; port: number }>
  /** Stops a server `startChat` started. */
  stopChat(server: FastifyInstance): Promise<void>
  /**
   * Opens the chat as `name`, through `base` (with `query`), and waits until it is connected.
   * With `clock`, the page runs on Playwright's clock (real time until the test jumps it ahead:
   * `page.clock.fastForward`), so that a wait for the page's own timers takes no wall time.
   */
  join(base: string, name: string, options?: JoinOptions): Promise<Page>
}

export type JoinOptions = BrowserContextOptions & { query?: string; clock?: boolean }

/**
 * Sets the suite up (in its `beforeAll`): the page script built from this checkout's sources,
 * the shared server, and Chromium; takes them down in its `afterAll`.
 */
export function chatInChromium(): ChatInChromium {
  let browser: Browser | undefined
  let port = 0
  const proxies: FaultProxy[] = []
  const servers = new Set<FastifyInstance>()

  async function startChat(store: ChatStore, at = 0, options: Omit<ChatAppOptions, 'store'> = {}) {
    const server = await buildChatApp({ ...options, store })
    servers.add(server)
    await server.listen({ port: at, host: '127.0.0.1' })
    return { app: server, port: (server.server.address() as AddressInfo).port }
  }

  async function stopChat(server: FastifyInstance): Promise<void> {
    servers.delete(server)
    await server.close()
  }

  const started = () => {
    if (!browser) throw new Error('the chat suite has not started (its beforeAll)')
    return browser
  }

  beforeAll(async () => {
    await pageBuilt()
    port = (await startChat(new MemoryStore())).port
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    for (const p of proxies) await p.close()
    for (const s of servers) await s.close()
  })

  return {
    get browser() {
      return started()
    },
    get port() {
      return port
    },
    proxies,
    startChat,
    stopChat,
    async join(base, name, { query = '', clock = false, ...options } = {}) {
      const context = await openContext(started(), options)
      if (clock) await context.clock.install()
      const page = await context.newPage()
      page.on('pageerror', (error) => {
        throw error
      })
      await page.goto(`${base}/${query}`)
      await page.fill('#nickname', name)
      await page.click('#join button')
      await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
        timeout: 10_000,
      })
      return page
    },
  }
}

/**
 * Plays `scene` on each transport, the three at once, each on a server of its own with two people
 * in a room there (named after the first), the first on that transport alone; closes them all
 * afterwards. A scene that fails says on which transport.
 */
export async function onEachTransport(
  suite: ChatInChromium,
  [first, second]: [string, string],
  scene: (on: { transport: string; room: string; store: ChatStore; pages: [Page, Page] }) => Promise<void>,
): Promise<void> {
  await Promise.all(
    ['websocket', 'sse', 'polling'].map(async (transport) => {
      const room = `${first}-${transport}`
      const store = new MemoryStore()
      const chat = await suite.startChat(store)
      const base = `http://127.0.0.1:${chat.port}`
      const pages = await Promise.all([
        suite.join(base, first, { query: `?room=${room}&transports=${transport}` }),
        suite.join(base, second, { query: `?room=${room}` }),
      ])
      try {
        for (const page of pages) await waitForPeople(page, 2)
        await scene({ transport, room, store, pages })
      } catch (error) {
        throw new Error(`on ${transport}: ${(error as Error).message}`, { cause: error })
      }
      await closeTabs(pages)
      await suite.stopChat(chat.app)
    }),
  )
}

/** A promise the test settles by hand: `passed` resolves once `open` is called. */
export function gate(): { passed: Promise<void>; open: () => void } {
  let open = () => {}
  const passed = new Promise<void>((resolve) => {
    open = resolve
  })
  return { passed, open }
}

/** Writes `text` and sends it with the button. */
export async function send(page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.click('#composer button')
}

/** The transport badge. */
export const badge = (page: Page) => page.textContent('#transport')

/** The texts of the messages shown, notices left out. */
export const texts = (page: Page) =>
  page.$$eval('#messages li:not(.notice) .text', (items) => items.map((i) => i.textContent ?? ''))

/**
 * Waits until `n` people are listed; past its bound, says who was listed instead (a session left
 * behind, or one missing, tell different stories).
 */
export async function waitForPeople(page: Page, n: number): Promise<void> {
  try {
    await page.waitForFunction((n) => document.querySelectorAll('#people li').length === n, n, {
      timeout: 10_000,
    })
  } catch (error) {
    const listed = await page
      .$$eval('#people li', (items) => items.map((i) => i.textContent ?? ''))
      .catch(() => ['(the page could not be read)'])
    throw new Error(`${n} people expected on ${page.url()}, listed: ${JSON.stringify(listed)}`, {
      cause: error,
    })
  }
}

/** Waits until `n` messages are shown, notices left out. */
export const waitForMessages = (page: Page, n: number) =>
  page.waitForFunction((n) => document.querySelectorAll('#messages li:not(.notice)').length === n, n, {
    timeout: 10_000,
  })

/** Waits until `n` of the page's own messages are ticked delivered. */
export const waitForDelivered = (page: Page, n: number) =>
  page.waitForFunction(
    (n) => document.querySelectorAll('#messages .tick[data-state="delivered"]').length === n,
    n,
    { timeout: 10_000 },
  )
