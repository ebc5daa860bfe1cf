// Takes the README's picture of the chat: three people in one room, on WebSocket, SSE and
// polling (two of them behind proxies that refuse WebSocket and ban event streams), seen by
// the first. Run with `pnpm --filter @parley/chat-demo screenshot` (needs Chromium, see the
// root README); it writes docs/chat-demo.png.
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../../../test/support/chromium.js'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { buildChatApp } from '../src/app.js'

const out = fileURLToPath(new URL('../../../docs/chat-demo.png', import.meta.url))

const app = await buildChatApp()
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
const noWs = await startFaultProxy(port)
noWs.ws = 'reject'
const noWsNoSse = await startFaultProxy(port)
noWsNoSse.ws = 'reject'
noWsNoSse.sse = 'block'
const browser = await launchChromium()

async function join(base: string, name: string, into: Browser): Promise<Page> {
  const page = await (await into.newContext({ viewport: { width: 900, height: 560 } })).newPage()
  await page.goto(`${base}/`)
  await page.fill('#nickname', name)
  await page.click('#join button')
  await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0)
  return page
}

async function say(page: Page, text: string, seen: number): Promise<void> {
  await page.fill('#text', text)
  await page.click('#composer button')
  await page.waitForFunction((n) => document.querySelectorAll('#messages li').length === n, seen)
}

try {
  const ada = await join(`http://127.0.0.1:${port}`, 'ada', browser)
  const bob = await join(noWs.url, 'bob', browser)
  const cy = await join(noWsNoSse.url, 'cy', browser)
  await ada.waitForFunction(() => document.querySelectorAll('#people li').length === 3)
  await say(ada, 'hi both! I am on WebSocket', 1)
  await say(bob, 'hello, my proxy refuses WebSocket: SSE here', 2)
  await say(cy, 'and I only get polling <img src=x onerror=alert(1)> (shown as text)', 3)
  await ada.waitForFunction(() => document.querySelectorAll('#messages li').length === 3)
  await ada.waitForFunction(() => document.querySelector('.tick')?.getAttribute('data-state') === 'delivered')
  await bob.type('#text', 'typ')
  await ada.waitForFunction(() => document.querySelector('#typing')?.textContent !== '')
  await ada.screenshot({ path: out })
  console.log(`wrote ${out}`)
} finally {
  await browser.close()
  await noWs.close()
  await noWsNoSse.close()
  await app.close()
}
