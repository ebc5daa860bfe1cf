// What the page says when its node drains and hands the session to another one: the chat moved,
// nothing was lost, in the badge, with the client's own words in its tooltip, and no banner. The
// page resumes after the drain's random delay (up to a second), waited for within 10 s: a bound,
// not a timing, so this runs in `together`, beside the other files. The words of the failures on
// one server are in failure-words.browser.test.ts.
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { skipNginxSuites } from '../../../test/support/nginx.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import type { ChatData } from '../src/chat.js'
import { type ChatClusterRun, startChatCluster } from './chat-cluster.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites(), skipNginxSuites()]

/** The badge's text, once it is `text`; on timeout, says what it showed instead. */
async function waitForBadge(page: Page, text: string): Promise<void> {
  try {
    await page.waitForFunction((text) => document.querySelector('#transport')?.textContent === text, text, {
      timeout: 10_000,
    })
  } catch (error) {
    const shown = await page.textContent('#transport', { timeout: 1000 }).catch(() => null)
    throw new Error(`the badge never said "${text}" (it said "${shown}")`, { cause: error })
  }
}

describe.skipIf(skips.some(Boolean))('the words of a failure, on several nodes', () => {
  let run: ChatClusterRun | undefined

  beforeAll(async () => {
    run = await startChatCluster(2)
  }, 60_000)

  afterAll(() => run?.stop())

  it('says the chat moved to another server, and that nothing was lost, when its node drains', async () => {
    const { browser, nginx, nodes } = run as ChatClusterRun
    const page = await (await openContext(browser)).newPage()
    await page.goto(`${nginx.url}/?transports=websocket`)
    await page.fill('#nickname', 'cy')
    await page.click('#join button')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
      timeout: 10_000,
    })
    const owner = nodes.find((node) =>
      [...node.app.parley.sockets.values()].some((s) => (s.data as Partial<ChatData>).nickname === 'cy'),
    )
    if (!owner) throw new Error('no node holds the session')
    await owner.app.parley.drain()
    await waitForBadge(page, 'websocket: moved to another server: nothing was lost')
    expect(await page.getAttribute('#transport', 'title')).toBe('websocket: resume from websocket')
    expect(await page.isHidden('#banner')).toBe(true)
    await closeTabs(page)
  })
})
