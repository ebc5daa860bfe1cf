// The chat page while the chat's Redis is away, in headless Chromium: a join it refuses for want
// of its store tells the person why and is tried again by the page, which ends up in the room
// with its history once Redis is back; a message written meanwhile waits, and then goes once,
// in order, into the history as well.
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'
import { pageBuilt } from './page-build.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites()]

// The page's wait before it asks again for what the store refused (`?storeRetry=`, 2000 without
// it), and the longest wait of the node's Redis client between two tries to reach Redis again
// (`reconnectDelay`, 2000 without it): short, so that the pages are in once Redis is back, not
// seconds later.
const STORE_RETRY = 100
const RECONNECT_DELAY = 50

describe.skipIf(skips.some(Boolean))('chat page while Redis is away, in Chromium', () => {
  let browser: Browser
  let redis: RedisServer
  let app: FastifyInstance
  let cluster: ChatCluster
  let base: string
  /** How many joins reached the store (refused or not). */
  let joins: number

  beforeAll(async () => {
    await pageBuilt()
    browser = await launchChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
  })

  beforeEach(async () => {
    redis = await startRedis()
    cluster = await connectRedis(redis.url, { label: 'node', reconnectDelay: RECONNECT_DELAY })
    joins = 0
    const join = cluster.store.join.bind(cluster.store)
    cluster.store.join = (room) => {
      joins++
      return join(room)
    }
    app = await buildChatApp({ adapter: cluster.adapter, store: cluster.store })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    base = `http://127.0.0.1:${port}`
  })

  afterEach(async () => {
    await closeTabs(browser.contexts())
    await app?.close()
    await cluster?.close()
    await redis?.stop()
  })

  /** Opens the chat as `name` (with `query`); `waitForPeople`: until it is in a room. */
  async function open(
    name: string,
    waitForPeople = true,
    query = `storeRetry=${STORE_RETRY}`,
  ): Promise<Page> {
    const context = await openContext(browser)
    const page = await context.newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    await page.goto(`${base}/?transports=polling&${query}`)
    await page.fill('#nickname', name)
    await page.click('#join button')
    if (waitForPeople) await page.waitForSelector('#people li', { timeout: 10_000 })
    return page
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill('#text', text)
    await page.click('#composer button')
  }

  const texts = (page: Page) =>
    page.$$eval('#messages li:not(.notice) .text', (items) => items.map((i) => i.textContent ?? ''))
  const bannerOf = (page: Page) =>
    page.$eval('#banner', (b) => ((b as HTMLElement).hidden ? '' : (b.textContent ?? '')))

  it('says the history is unavailable while a join is refused, and joins by itself once Redis is back', async () => {
    await cluster.store.add({ room: 'lobby', from: 'ann', text: 'before the outage', at: Date.now() })
    await redis.stop({ keepData: true })

    const page = await open('bob', false)
    await expect.poll(() => bannerOf(page), { timeout: 10_000 }).toMatch(/history is unavailable.*retrying/i)
    // Not the server's sentence, nor its code: something a person can act on (wait).
    expect(
      await page.$eval(
        '#error',
        (e) => (e as HTMLElement).hidden || !/STORE_UNAVAILABLE/.test(e.textContent ?? ''),
      ),
    ).toBe(true)
    expect(await page.$$('#people li')).toHaveLength(0)

    await redis.restart({ keepData: true })
    await page.waitForSelector('#rooms [data-room="lobby"][aria-current="true"]', { timeout: 15_000 })
    await page.waitForFunction(() => document.querySelectorAll('#people li').length === 1, null, {
      timeout: 10_000,
    })
    expect(await texts(page)).toEqual(['before the outage'])
    expect(await bannerOf(page)).toBe('')
  }, 40_000)

  it('keeps what is written while Redis is away, and sends it once and in order when it is back', async () => {
    const [ann, bob] = [await open('ann'), await open('bob')]
    await bob.waitForFunction(() => document.querySelectorAll('#people li').length === 2, null, {
      timeout: 10_000,
    })
    await redis.stop({ keepData: true })

    await send(ann, 'first while away')
    await ann.waitForSelector('#messages .tick[data-state="stalled"]', { timeout: 10_000 })
    await send(ann, 'second while away')
    await expect.poll(() => bannerOf(ann), { timeout: 10_000 }).toMatch(/history is unavailable/i)
    expect(await ann.$$('#messages .tick[data-state="stalled"]')).toHaveLength(2)
    // Nothing goes out that the history would miss.
    expect(await texts(bob)).toEqual([])

    await redis.restart({ keepData: true })
    await ann.waitForFunction(
      () => document.querySelectorAll('#messages .tick[data-state="delivered"]').length === 2,
      null,
      { timeout: 15_000 },
    )
    await expect
      .poll(() => texts(bob), { timeout: 10_000 })
      .toEqual(['first while away', 'second while away'])
    expect(await texts(ann)).toEqual(['first while away', 'second while away'])
    expect(await bannerOf(ann)).toBe('')

    // Someone who comes in now gets them from the history, once each.
    const cy = await open('cy')
    await expect.poll(() => texts(cy), { timeout: 10_000 }).toEqual(['first while away', 'second while away'])
    expect(await texts(bob)).toEqual(['first while away', 'second while away'])
  }, 70_000)

  it('asks again after the wait ?storeRetry= gives while a join is refused', async () => {
    await redis.stop({ keepData: true })
    const page = await open('dee', false)
    await expect.poll(() => joins, { timeout: 10_000 }).toBeGreaterThan(0)
    // Three more tries take 300 ms at 100 ms each, and six seconds at the 2000 of the default.
    const first = joins
    await expect.poll(() => joins, { timeout: 3000, interval: 50 }).toBeGreaterThanOrEqual(first + 3)
    expect(await bannerOf(page)).toMatch(/history is unavailable.*retrying/i)
  })

  it('says a ?storeRetry= it cannot take, and waits the default instead', async () => {
    const page = await open('eve', true, 'storeRetry=5')
    await expect
      .poll(() => page.$eval('#error', (e) => ((e as HTMLElement).hidden ? '' : (e.textContent ?? ''))))
      .toBe('?storeRetry=5 is not a whole number of ms from 10 to 60000: the page retries every 2000 ms.')
  })
})
