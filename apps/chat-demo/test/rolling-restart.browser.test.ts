// A deploy of the chat cluster, in headless Chromium: three people on three transports chat
// through nginx round-robin while every node in turn is stopped with SIGTERM (it drains and
// hands its sessions to the others through Redis) and replaced by a new process on the same
// port. Nobody notices: each message shows once, in order, on every page; no banner ever says
// the connection was lost or a new session began; everyone stays listed.
import type { Browser, Page } from 'playwright-core'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type Nginx, skipNginxSuites, startNginx } from '../../../test/support/nginx.js'
import { onFreePort } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { Limits } from '../src/shared.js'
import { type ChatNode, startNode, stopNode } from './node-process.js'
import { pageBuilt } from './page-build.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites(), skipNginxSuites()]

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

// The chat's rate limit, shortened on every node: `Limits.rate` messages a socket per RATE_PERIOD
// ms (5000 by default). A handoff may hold a person's messages back for up to HELD_MS; they then
// reach the server together with those written in the window after: each person writes once a
// PACE, so that even then no window takes more than `Limits.rate`, and no message is refused.
// (With the default window, a message every 1.6 s allowed the same 3 s: fewer messages crossed
// each handoff, and the last ones took seconds longer.)
const RATE_PERIOD = 500
const HELD_MS = 3000
const PACE = (HELD_MS + RATE_PERIOD) / Limits.rate
// Each drain tells its pages to come back within 100 ms rather than Parley's second, and lasts
// until the last of them came back: what is tested is that nothing is lost, not the spread.
const nodeOptions = { ratePeriod: RATE_PERIOD, handoffRetrySpread: 100 }

describe.skipIf(skips.some(Boolean))('chat demo cluster through a rolling restart, in Chromium', () => {
  let browser: Browser
  let redis: RedisServer
  let nginx: Nginx
  const nodes: ChatNode[] = []
  /** What every node process wrote to stderr, for a failing assertion's message. */
  const logs: string[] = []

  beforeAll(async () => {
    // The page's bundle and the browser, while the cluster comes up: both are needed only
    // once a page opens.
    const built = pageBuilt()
    const launched = launchChromium()
    try {
      redis = await startRedis()
      // A port free when asked may be taken before the node binds it: then another one. A restart
      // below comes back on its node's port, or fails saying that the port is taken.
      const names = ['node-1', 'node-2', 'node-3']
      nodes.push(
        ...(await Promise.all(
          names.map((name) => onFreePort((port) => startNode(name, port, redis.url, nodeOptions))),
        )),
      )
      await registered(3)
      nginx = await startNginx(nodes.map((n) => n.port))
    } finally {
      // Held before anything can fail, so that afterAll closes it.
      browser = await launched
      await built
    }
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await nginx?.stop()
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')))
    await redis?.stop()
  })

  /** The ids of the live nodes, as `registered` last found them. */
  let live: string[] = []

  /**
   * Waits until `count` nodes are in Redis's live set (each published its address with its
   * first heartbeat), then until each node there before the newest has beaten since the
   * newest's first heartbeat (its score in the index `parley:nodes`, the time of its last beat,
   * is later): a heartbeat reads the whole live set in the same script that writes the score,
   * so every node then knows every other, and leaves none out of cluster queries such as the
   * fetchSockets behind the people list. (A node that says it joined makes the others beat at
   * once; without that news, their next beat comes within an interval.)
   */
  async function registered(count: number): Promise<void> {
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      const end = performance.now() + 10_000
      // Each node's record, not those beside it (parley:node:<id>:note, :address, :beat, :left). The
      // index keeps the ids of stopped nodes a long while: only those with a record are live.
      const records = async () =>
        (await client.keys('parley:node:*'))
          .map((k) => k.slice('parley:node:'.length))
          .filter((id) => !id.includes(':'))
      let ids = await records()
      // A restarted node comes back under a new id: wait for one the last call did not find.
      while (ids.length < count || ids.every((id) => live.includes(id))) {
        if (performance.now() > end) throw new Error(`${count} nodes did not register in Redis within 10 s`)
        await pause(50)
        ids = await records()
      }
      const beats = async () =>
        Promise.all(ids.map(async (id) => (await client.zScore('parley:nodes', id)) ?? 0))
      // The newest node's first beat, or a later one of its beats (which only asks more).
      const first = await beats()
      const fresh = ids.map((id) => !live.includes(id))
      const newest = Math.max(...first.filter((_, i) => fresh[i]))
      const newestAt = first.indexOf(newest)
      while ((await beats()).some((score, i) => i !== newestAt && score <= newest)) {
        if (performance.now() > end)
          throw new Error(`the ${count} nodes did not all see the newest within 10 s`)
        await pause(50)
      }
      live = ids
    } finally {
      await client.close()
    }
  }

  /**
   * Opens the chat through nginx as `name` over `transport` alone, waits until it is in, and
   * from then on records every banner, transport badge and people list the page shows.
   */
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
    await page.evaluate(() => {
      const seen = { banners: [] as string[], badges: [] as string[], people: [] as string[] }
      Object.assign(window, { __seen: seen })
      const watch = (id: string, record: (el: HTMLElement) => void) => {
        const el = document.getElementById(id)!
        new MutationObserver(() => record(el)).observe(el, {
          childList: true,
          subtree: true,
          characterData: true,
          attributes: true,
        })
      }
      watch('banner', (el) => {
        if (!el.hidden && el.textContent) seen.banners.push(el.textContent)
      })
      watch('transport', (el) => seen.badges.push(el.textContent ?? ''))
      watch('people', (el) =>
        seen.people.push(Array.from(el.querySelectorAll('li'), (li) => li.textContent ?? '').join(',')),
      )
    })
    return page
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill('#text', text)
    await page.click('#composer button')
  }

  const texts = (page: Page) =>
    page.$$eval('#messages li:not(.notice) .text', (items) => items.map((i) => i.textContent ?? ''))
  const seen = (page: Page) =>
    page.evaluate(
      () =>
        (window as unknown as { __seen: { banners: string[]; badges: string[]; people: string[] } }).__seen,
    )

  it('hands every session over while each node restarts in turn: every message once and in order, no banner, everyone listed', async () => {
    const everyone = [
      { name: 'ada', transport: 'websocket' },
      { name: 'bob', transport: 'sse' },
      { name: 'cy', transport: 'polling' },
    ] as const
    const pages = await Promise.all(everyone.map(({ name, transport }) => join(name, transport)))
    for (const page of pages) {
      await page.waitForFunction(() => document.querySelectorAll('#people li').length === 3, null, {
        timeout: 10_000,
      })
    }

    // Each person keeps writing, a message every PACE: under the chat's rate limit even when a
    // handoff holds a few back and they reach the server together (see RATE_PERIOD).
    let restarting = true
    const sent = everyone.map(() => 0)
    const senders = everyone.map(async ({ name }, i) => {
      let extra = 2
      await send(pages[i]!, `${name} ${++sent[i]!}`)
      while (restarting || extra-- > 0) {
        await pause(PACE)
        await send(pages[i]!, `${name} ${++sent[i]!}`)
      }
    })

    // The rolling restart: each node drains on SIGTERM, exits, and a new process takes its port
    // before the next node goes.
    try {
      // Everyone's first message through before the first node goes.
      for (const page of pages) {
        await page.waitForFunction(
          () => document.querySelector('#messages .tick')?.getAttribute('data-state') === 'delivered',
          null,
          { timeout: 10_000 },
        )
      }
      for (const [i, node] of nodes.entries()) {
        const code = await stopNode(node, 'SIGTERM')
        logs.push(node.errors())
        expect(code, `${node.name} drained and exited cleanly: ${node.errors()}`).toBe(0)
        nodes[i] = await startNode(node.name, node.port, redis.url, nodeOptions)
        // Ready when the others know it, as a deploy waits for a new instance to be ready.
        await registered(3)
      }
    } finally {
      restarting = false
      await Promise.all(senders)
    }

    const total = sent.reduce((a, b) => a + b, 0)
    // Until every page shows them all (bounded); the assertions below then say what is missing.
    const end = performance.now() + 15_000
    while (performance.now() < end && (await Promise.all(pages.map(texts))).some((t) => t.length < total)) {
      await pause(100)
    }
    for (const [p, page] of pages.entries()) {
      const shown = await texts(page)
      const record = await seen(page)
      const context = `${everyone[p]!.name}'s page; badges ${JSON.stringify(record.badges)}; nodes said: ${[...logs, ...nodes.map((n) => n.errors())].join('')}`
      // Exactly once each, and each person's messages in the order they were written.
      for (const [i, { name }] of everyone.entries()) {
        expect(
          shown.filter((t) => t.startsWith(`${name} `)),
          context,
        ).toEqual(Array.from({ length: sent[i]! }, (_, n) => `${name} ${n + 1}`))
      }
      expect(shown, context).toHaveLength(total)
      // Every own message acknowledged (✓✓): none refused, none left waiting.
      const ticks = await page.$$eval('#messages .tick', (items) =>
        items.map((i) => i.getAttribute('data-state')),
      )
      expect(ticks, context).toEqual(Array(sent[p]!).fill('delivered'))
      // Nothing saying the connection was lost, no "Reconnected with a new session", nothing at all.
      expect(record.banners, context).toEqual([])
      // Every node went, so every session moved at least once: the badge gave the reason.
      expect(
        record.badges.some((b) => /: .+nothing was lost$/.test(b)),
        context,
      ).toBe(true)
      expect(record.badges.filter((b) => b.startsWith('offline'))).toEqual([])
      // Everyone is still listed. (Not checked: every list drawn meanwhile. A presence update
      // computed while sessions are between nodes can miss them for a moment; see the README.)
      const listed = await page.$$eval('#people li', (items) => items.map((i) => i.textContent))
      expect(listed.sort(), `${context}; lists drawn: ${JSON.stringify(record.people)}`).toEqual([
        'ada',
        'bob',
        'cy',
      ])
    }
    // Every node is a new process now, and the history is still whole: it is in Redis. Someone
    // who comes in after the restart gets every message of the room, once.
    const late = await join('dee', 'websocket')
    await late.waitForFunction(
      (count) => document.querySelectorAll('#messages li:not(.notice)').length >= count,
      total,
      { timeout: 10_000 },
    )
    expect((await texts(late)).sort()).toEqual((await texts(pages[0]!)).sort())
    await closeTabs([...pages, late])
  }, 60_000)
})
