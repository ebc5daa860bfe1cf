// The chat page at its edges, in headless Chromium: a sidebar with many rooms and many people,
// lengths counted as people count them, and whose messages are its own across versions of the
// chat (messages stored without `by`, joins answered without `you`). A server of its own, with
// rooms made beforehand.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { buildChatApp } from '../src/app.js'
import { type ClientEvents, type JoinReply, Limits, type ServerEvents } from '../src/shared.js'
import { MemoryStore } from '../src/store.js'
import { connected } from './connected.js'
import { pageBuilt } from './page-build.js'

/** Rooms made before the pages open, besides the default three: more than a screen's height of them. */
const ROOMS = 15

describe.skipIf(skipBrowserSuites())('chat demo at its edges, in Chromium', () => {
  let app: FastifyInstance
  let base: string
  let browser: Browser
  let store: MemoryStore
  /**
   * While true, each session answers its joins as a node of an older version of the chat does
   * (a rolling upgrade): it knows no visitor ids, so its answer has no `you`, and what it stores
   * no `by`.
   */
  let older = false
  const clients: Socket<ServerEvents, ClientEvents>[] = []

  beforeAll(async () => {
    // The page script the server hands out is built from this checkout's sources.
    await pageBuilt()
    store = new MemoryStore()
    for (let i = 1; i <= ROOMS; i++) await store.addRoom(`room-${String(i).padStart(2, '0')}`)
    app = await buildChatApp({ store })
    app.parley.on('connection', (socket) => {
      socket.use(([event]) => {
        if (older && event === 'join') delete (socket.data as { visitor?: string }).visitor
      })
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    for (const client of clients.splice(0)) client.disconnect()
    await app?.close()
  })

  /** Opens the chat as `name` in `room`, and waits until it is in it. */
  async function open(name: string, room: string, options: BrowserContextOptions = {}): Promise<Page> {
    const page = await (await openContext(browser, options)).newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    await page.goto(`${base}/?room=${room}`)
    await page.fill('#nickname', name)
    await page.click('#join button')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
      timeout: 10_000,
    })
    return page
  }

  /**
   * Opens the chat as `name` in `room` in `context`, asking again while the name is still taken
   * (the server may not have read the goodbye of a tab that held it yet).
   */
  async function openIn(context: BrowserContext, name: string, room: string): Promise<Page> {
    const page = await context.newPage()
    await page.goto(`${base}/?room=${room}`)
    for (let attempt = 1; ; attempt++) {
      await page.fill('#nickname', name)
      await page.click('#join button')
      const outcome = await page.waitForFunction(
        () =>
          document.querySelectorAll('#people li').length > 0
            ? 'in'
            : document.querySelector<HTMLElement>('#join-error')?.hidden === false && 'refused',
        null,
        { timeout: 10_000 },
      )
      if ((await outcome.jsonValue()) === 'in') return page
      if (attempt === 20) throw new Error(`the nickname ${name} stayed taken`)
      await page.waitForFunction(() => document.querySelector<HTMLElement>('#join')?.hidden === false)
    }
  }

  /** Sends `text` from `page` and waits for a tick of its to say delivered. */
  async function sendDelivered(page: Page, text: string): Promise<void> {
    await page.fill('#text', text)
    await page.click('#composer button')
    await page.waitForSelector('#messages .tick[data-state="delivered"]', { timeout: 10_000 })
  }

  /** Each message drawn: its text, whether it shows as the page's own, and its tick. */
  const drawn = (page: Page) =>
    page.$$eval('#messages li', (items) =>
      items.map((li) => [
        li.querySelector('.text')?.textContent,
        li.classList.contains('mine'),
        li.querySelector<HTMLElement>('.tick')?.dataset.state ?? null,
      ]),
    )

  /** Someone in `room` through the Node client: a name in the people list. */
  async function someone(name: string, room: string): Promise<void> {
    const socket = connect<ServerEvents, ClientEvents>(base, { auth: { nickname: name } })
    clients.push(socket)
    await connected(socket)
    const reply = await new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))
    expect(reply.ok).toBe(true)
  }

  /**
   * Whether each of `selectors` (its first match) can be seen: the point at its middle is on it,
   * not on whatever covers it, nor outside a list that scrolled it away or the window.
   */
  const visible = (page: Page, selectors: Record<string, string>) =>
    page.evaluate((selectors) => {
      const seen: Record<string, boolean> = {}
      for (const [name, selector] of Object.entries(selectors)) {
        const element = document.querySelector(selector)
        const box = element?.getBoundingClientRect()
        const at =
          box && box.width > 0
            ? document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2)
            : null
        seen[name] = element !== null && at !== null && (element === at || element.contains(at))
      }
      return seen
    }, selectors)

  const sidebar = {
    room: '#rooms [aria-current="true"]',
    newRoom: '#room-name',
    hereNow: '#people',
    person: '#people li',
  }

  it('keeps "Here now" in view with many rooms, and the rooms with many people: each list scrolls on its own', async () => {
    const layouts: Array<[string, BrowserContextOptions]> = [
      ['desktop', { viewport: { width: 1280, height: 800 } }],
      ['short', { viewport: { width: 1280, height: 560 } }],
    ]
    for (const [layout, options] of layouts) {
      const page = await open(`side-${layout}`, 'room-08', options)
      await page.waitForFunction((n) => document.querySelectorAll('#rooms li').length === n, ROOMS + 3)
      expect(await visible(page, sidebar)).toEqual({ room: true, newRoom: true, hereNow: true, person: true })
      // The rooms scroll within their list: the last one comes into view, and the people stay.
      const rooms = await page.$eval('#rooms', (list) => {
        list.scrollTop = list.scrollHeight
        return { scrolls: list.scrollHeight > list.clientHeight }
      })
      expect(rooms.scrolls).toBe(true)
      expect(await visible(page, { last: '#rooms li:last-child button', person: '#people li' })).toEqual({
        last: true,
        person: true,
      })
      // Only the lists scroll, never the page.
      expect(await page.evaluate(() => document.documentElement.scrollHeight <= innerHeight)).toBe(true)
      await page.context().close()
    }

    // Many people: their list scrolls on its own, and the rooms (and the form to make one) stay.
    const crowd = 24
    for (let i = 1; i <= crowd; i++) await someone(`person ${String(i).padStart(2, '0')}`, 'room-03')
    const page = await open('side-crowd', 'room-03', { viewport: { width: 1280, height: 560 } })
    await page.waitForFunction((n) => document.querySelectorAll('#people li').length === n, crowd + 1)
    expect(await visible(page, sidebar)).toEqual({ room: true, newRoom: true, hereNow: true, person: true })
    expect(await page.$eval('#people', (list) => list.scrollHeight > list.clientHeight)).toBe(true)
    await page.$eval('#people', (list) => {
      list.scrollTop = list.scrollHeight
    })
    expect(await visible(page, { last: '#people li:last-child', room: sidebar.room })).toEqual({
      last: true,
      room: true,
    })
    expect(await page.evaluate(() => document.documentElement.scrollHeight <= innerHeight)).toBe(true)
    await page.context().close()
  })

  it('counts a message as the server does, in characters as people see them', async () => {
    const page = await open('counter', 'lobby')
    // 500 emoji are 1000 UTF-16 units: within the limit all the same, and the server takes it.
    const full = '🎉'.repeat(Limits.message)
    await sendDelivered(page, full)
    expect(await page.textContent('#messages li .text')).toBe(full)
    // One more is too many: kept in the input, and counted as people count.
    const over = '🎉'.repeat(Limits.message + 1)
    await page.fill('#text', over)
    await page.click('#composer button')
    expect(await page.textContent('#error')).toBe(
      `messages are at most ${Limits.message} characters: this one has ${Limits.message + 1}`,
    )
    expect(await page.inputValue('#text')).toBe(over)
    expect(await page.$$('#messages li')).toHaveLength(1)
    await page.context().close()
  })

  it('shows as its own what this browser wrote, not what an earlier holder of its nickname wrote', async () => {
    const first = await openContext(browser)
    const firstTab = await openIn(first, 'pat', 'room-05')
    await sendDelivered(firstTab, 'from the first pat')
    // Closing the tab frees the name: another browser takes it.
    await firstTab.close()
    const second = await openContext(browser)
    const secondTab = await openIn(second, 'pat', 'room-05')
    await secondTab.waitForFunction(() => document.querySelectorAll('#messages li').length === 1)
    expect(await drawn(secondTab)).toEqual([['from the first pat', false, null]])
    await sendDelivered(secondTab, 'from the second pat')
    expect(await drawn(secondTab)).toEqual([
      ['from the first pat', false, null],
      ['from the second pat', true, 'delivered'],
    ])
    // The first browser, back under another name: its own message is still its own, and only that one.
    const back = await openIn(first, 'pat again', 'room-05')
    await back.waitForFunction(() => document.querySelectorAll('#messages li').length === 2)
    expect(await drawn(back)).toEqual([
      ['from the first pat', true, 'delivered'],
      ['from the second pat', false, null],
    ])
    for (const context of [first, second]) await context.close()
  })

  it('shows a message stored before messages had a `by` as nobody’s own, even under the page’s nickname', async () => {
    // Stored by an older version of the chat: who wrote it is not known, only the nickname,
    // which another browser may hold now.
    await store.add({ room: 'room-06', from: 'kim', text: 'before by', at: Date.now() })
    const context = await openContext(browser)
    const page = await openIn(context, 'kim', 'room-06')
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 1)
    expect(await drawn(page)).toEqual([['before by', false, null]])
    await sendDelivered(page, 'with by')
    expect(await drawn(page)).toEqual([
      ['before by', false, null],
      ['with by', true, 'delivered'],
    ])
    await context.close()
  })

  it('keeps its own messages its own when an older node’s join answer has no `you`', async () => {
    const context = await openContext(browser)
    const page = await openIn(context, 'lee', 'room-07')
    await sendDelivered(page, 'written here')
    older = true
    try {
      // To another room and back: each answer without `you`, and the history drawn anew.
      for (const room of ['room-08', 'room-07']) {
        await page.click(`#rooms [data-room="${room}"]`)
        await page.waitForFunction(
          (room) => document.querySelector('#rooms [aria-current="true"]')?.textContent === `# ${room}`,
          room,
          { timeout: 10_000 },
        )
      }
      await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 1)
      expect(await drawn(page)).toEqual([['written here', true, 'delivered']])
    } finally {
      older = false
    }
    await context.close()
  })
})
