// The chat demo in headless Chromium: three people in one room, each on a different transport.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { buildChatApp } from '../src/app.js'

describe.skipIf(skipBrowserSuites())('chat demo in Chromium', () => {
  let app: FastifyInstance
  let port: number
  let browser: Browser
  const proxies: FaultProxy[] = []

  beforeAll(async () => {
    app = await buildChatApp()
    await app.listen({ port: 0, host: '127.0.0.1' })
    port = (app.server.address() as AddressInfo).port
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    for (const p of proxies) await p.close()
    await app?.close()
  })

  /** Opens the chat as `name`, through `base`, and waits until it is connected. */
  async function join(base: string, name: string): Promise<Page> {
    const context = await browser.newContext()
    const page = await context.newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    await page.goto(`${base}/`)
    await page.fill('#nickname', name)
    await page.click('#join button')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
      timeout: 10_000,
    })
    return page
  }

  const badge = (page: Page) => page.textContent('#transport')
  const texts = (page: Page) =>
    page.$$eval('#messages li:not(.notice) .text', (items) => items.map((i) => i.textContent ?? ''))

  it('lets people on websocket, sse and polling chat, with presence, typing, ticks and safe text', async () => {
    const direct = `http://127.0.0.1:${port}`
    const noWs = await startFaultProxy(port)
    noWs.ws = 'reject'
    const noWsNoSse = await startFaultProxy(port)
    noWsNoSse.ws = 'reject'
    noWsNoSse.sse = 'block'
    proxies.push(noWs, noWsNoSse)

    const ada = await join(direct, 'ada')
    const bob = await join(noWs.url, 'bob')
    const cy = await join(noWsNoSse.url, 'cy')
    expect(await badge(ada)).toMatch(/^websocket/)
    expect(await badge(bob)).toMatch(/^sse: websocket/)
    expect(await badge(cy)).toMatch(/^polling: sse/)

    // Presence: everyone sees all three.
    for (const page of [ada, bob, cy]) {
      await page.waitForFunction(() => document.querySelectorAll('#people li').length === 3, null, {
        timeout: 5000,
      })
    }

    // Typing shows on the other transports.
    await bob.type('#text', 'hel')
    await ada.waitForFunction(() => document.querySelector('#typing')?.textContent?.includes('bob is typing'))
    await cy.waitForFunction(() => document.querySelector('#typing')?.textContent?.includes('bob is typing'))
    await bob.fill('#text', '')

    // Each sends numbered messages; everyone sees every message once, in order per sender.
    const hostile = '<img src=x onerror="window.__pwned=1">'
    for (let i = 1; i <= 4; i++) {
      for (const [page, name] of [
        [ada, 'ada'],
        [bob, 'bob'],
        [cy, 'cy'],
      ] as const) {
        await page.fill('#text', `${name} ${i}${i === 1 ? ` ${hostile}` : ''}`)
        await page.click('#composer button')
      }
    }
    for (const page of [ada, bob, cy]) {
      await page.waitForFunction(
        () => document.querySelectorAll('#messages li:not(.notice)').length === 12,
        null,
        {
          timeout: 10_000,
        },
      )
      const seen = await texts(page)
      for (const name of ['ada', 'bob', 'cy']) {
        expect(seen.filter((t) => t.startsWith(`${name} `)).map((t) => t.split(' ')[1])).toEqual([
          '1',
          '2',
          '3',
          '4',
        ])
      }
      // Rendered as text: the tag is visible, no image element, nothing ran.
      expect(seen.some((t) => t.includes(hostile))).toBe(true)
      expect(await page.$$('#messages img')).toHaveLength(0)
      expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined()
      // Ticks: each own message acknowledged.
      await page.waitForFunction(
        () => document.querySelectorAll('#messages .tick[data-state="delivered"]').length === 4,
        null,
        { timeout: 10_000 },
      )
    }
  })
})
