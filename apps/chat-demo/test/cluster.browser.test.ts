// The chat demo on three nodes (one Redis) behind nginx round-robin, in headless Chromium:
// three people on three transports, each page on whichever node the balancer picks for each
// request. They see each other, and each other's messages once and in order; a room made
// through one node is in every page's list, with its history.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type Nginx, skipNginxSuites } from '../../../test/support/nginx.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { type ChatClusterRun, startChatCluster } from './chat-cluster.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites(), skipNginxSuites()]

describe.skipIf(skips.some(Boolean))('chat demo on three nodes behind nginx, in Chromium', () => {
  let run: ChatClusterRun | undefined
  let browser: Browser
  let nginx: Nginx

  beforeAll(async () => {
    run = await startChatCluster(3)
    ;({ browser, nginx } = run)
  }, 60_000)

  afterAll(() => run?.stop())

  /** Opens the chat through nginx as `name` over `transport` alone; waits until it is in. */
  async function join(name: string, transport: string): Promise<Page> {
    const context = await openContext(browser)
    const page = await context.newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    await page.goto(`${nginx.url}/?transports=${transport}`)
    await page.fill('#nickname', name)
    await page.click('#join button')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
      timeout: 10_000,
    })
    return page
  }

  const texts = (page: Page) =>
    page.$$eval('#messages li:not(.notice) .text', (items) => items.map((i) => i.textContent ?? ''))
  const people = (page: Page) => page.$$eval('#people li', (items) => items.map((i) => i.textContent ?? ''))

  it('lets three people on three transports, spread over the nodes, chat once and in order', async () => {
    const everyone = [
      { name: 'ada', transport: 'websocket' },
      { name: 'bob', transport: 'sse' },
      { name: 'cy', transport: 'polling' },
    ] as const
    const pages: Page[] = []
    for (const { name, transport } of everyone) pages.push(await join(name, transport))
    for (const [i, page] of pages.entries()) {
      expect(await page.textContent('#transport')).toMatch(new RegExp(`^${everyone[i]!.transport}`))
    }

    // Presence comes from fetchSockets over every node: each page lists all three.
    for (const page of pages) {
      await page.waitForFunction(() => document.querySelectorAll('#people li').length === 3, null, {
        timeout: 10_000,
      })
      expect((await people(page)).join(' ')).toMatch(/ada.*bob.*cy/)
    }

    // Four rounds: each person sends, the next round starts when everyone has the last one.
    for (let round = 1; round <= 4; round++) {
      for (const [i, page] of pages.entries()) {
        await page.fill('#text', `${everyone[i]!.name} ${round}`)
        await page.click('#composer button')
      }
    }
    for (const page of pages) {
      await page.waitForFunction(
        () => document.querySelectorAll('#messages li:not(.notice)').length >= 12,
        null,
        {
          timeout: 15_000,
        },
      )
    }
    for (const page of pages) {
      const seen = await texts(page)
      expect(seen).toHaveLength(12)
      for (const { name } of everyone) {
        expect(seen.filter((t) => t.startsWith(`${name} `))).toEqual([1, 2, 3, 4].map((n) => `${name} ${n}`))
      }
      // Every own message acknowledged (✓✓).
      await page.waitForFunction(
        () => document.querySelectorAll('#messages .tick[data-state="delivered"]').length === 4,
        null,
        { timeout: 10_000 },
      )
    }

    // One store for all nodes: a room made through one node is in every page's list, whichever
    // node sent it, and a page opening it (on its own node) gets the history written there.
    await pages[0]!.fill('#room-name', 'plans')
    await pages[0]!.click('#new-room button')
    await pages[0]!.waitForSelector('#rooms [data-room="plans"][aria-current="true"]')
    await pages[0]!.fill('#text', 'ada in plans')
    await pages[0]!.click('#composer button')
    await pages[0]!.waitForSelector('#messages .tick[data-state="delivered"]')
    for (const page of pages) await page.waitForSelector('#rooms [data-room="plans"]', { timeout: 10_000 })
    const lists = await Promise.all(
      pages.map((page) => page.$$eval('#rooms button', (items) => items.map((i) => i.dataset.room))),
    )
    expect(lists).toEqual(pages.map(() => ['lobby', 'random', 'help', 'plans']))
    await pages[2]!.click('#rooms [data-room="plans"]')
    await pages[2]!.waitForSelector('#rooms [data-room="plans"][aria-current="true"]')
    expect(await texts(pages[2]!)).toEqual(['ada in plans'])

    await closeTabs(pages)
    // Nothing sticky: the Parley requests went to every node (nginx logs a request, a stream or
    // a WebSocket once it ended).
    const served = () =>
      new Set(
        nginx
          .requests()
          .filter((r) => r.url.startsWith('/parley/'))
          .map((r) => r.upstream),
      )
    const end = performance.now() + 5000
    while (served().size < 3 && performance.now() < end) await new Promise((r) => setTimeout(r, 100))
    expect(served().size).toBe(3)
  }, 60_000)
})
