// The chat demo in headless Chromium, pages that reload or close: a message once when its page
// reloads before the answer, the history's ticks after a reload, the transport that worked last
// time, and people off the list as soon as their tab closes, a POST of theirs unanswered or not.
// Each waits on the page's goodbye and the server's answers, none on a clock (a heartbeat, a
// reconnection's backoff, a rate limit's window): they run beside other files. Those that do
// are in chat.browser.test.ts.
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { until } from '../../../packages/server/test/helpers.js'
import { skipBrowserSuites } from '../../../test/support/chromium.js'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { MemoryStore } from '../src/store.js'
import {
  badge,
  chatInChromium,
  onEachTransport,
  send,
  texts,
  waitForDelivered,
  waitForMessages,
  waitForPeople,
} from './chat-in-chromium.js'
import { pauseNextAdd } from './pausing-store.js'

describe.skipIf(skipBrowserSuites())('chat demo in Chromium, pages that reload or close', () => {
  const suite = chatInChromium()
  const { proxies, startChat, stopChat, join } = suite

  it('says on the transport badge, after a reload, that it went straight to the one that worked last time', async () => {
    // A proxy that refuses WebSocket: the page lands on SSE.
    const noWs = await startFaultProxy(suite.port)
    noWs.ws = 'reject'
    proxies.push(noWs)
    const lee = await join(noWs.url, 'lee', { query: '?room=badge-memory' })
    expect(await badge(lee)).toMatch(/^sse: WebSocket is blocked/)
    // The client remembers SSE for this server and starts there: no WebSocket fails this time,
    // and a bare "connected" would not say why the page is not on WebSocket.
    await lee.reload()
    await lee.fill('#nickname', 'lee')
    await lee.click('#join button')
    await waitForPeople(lee, 1)
    expect(await badge(lee)).toBe('sse: worked here last time')
    await closeTabs(lee)
  })

  it('shows a message once, to everyone, when its page reloads before the answer, on every transport', async () => {
    await onEachTransport(suite, ['max', 'ola'], async ({ room, store, pages: [max, ola] }) => {
      await send(max, 'before the reload')
      await waitForDelivered(max, 1)
      // The server holds the message before storing it until the page has reloaded: the old
      // session is gone (the page said goodbye as it went) before its answer could come.
      const reloaded = new Promise<void>((resolve) =>
        pauseNextAdd(
          store,
          async () => {
            await max.reload()
            resolve()
          },
          { before: true },
        ),
      )
      await send(max, 'during the reload')
      await reloaded
      await max.fill('#nickname', 'max')
      await max.click('#join button')
      for (const page of [max, ola]) {
        await waitForMessages(page, 2)
        expect(await texts(page)).toEqual(['before the reload', 'during the reload'])
        await waitForPeople(page, 2)
      }
      expect((await store.history(room)).map((m) => m.text)).toEqual([
        'before the reload',
        'during the reload',
      ])
      // Neither session is left behind: once the tab is closed, Max is off the list. His browser
      // stays open until Ola sees it, as when a person closes a tab: the tab's goodbye (a
      // keepalive POST, or a WebSocket frame) may still be on its way once the tab is gone, and
      // a context closed under it drops it; the session would then live out its recovery window.
      await closeTabs(max, { heard: () => waitForPeople(ola, 1) })
    })
  }, 60_000)

  it('takes someone who closes their tab off the people list at once, on every transport', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    const transports = ['websocket', 'sse', 'polling'] as const
    // One room, joined all at once: Fay stays, and one person on each transport alone leaves in
    // turn. (A browser page costs more to open than anything the test waits for: four, not six.)
    const [fay, ...leaving] = await Promise.all([
      join(direct, 'fay', { query: '?room=close-tab' }),
      ...transports.map((transport) =>
        join(direct, `gus on ${transport}`, { query: `?room=close-tab&transports=${transport}` }),
      ),
    ])
    const listed = (page: Page) => page.$$eval('#people li', (items) => items.map((i) => i.textContent))
    const staying = ['fay', ...transports.map((transport) => `gus on ${transport}`)]
    for (const page of [fay, ...leaving]) await waitForPeople(page, staying.length)
    for (const [i, transport] of transports.entries()) {
      const gus = leaving[i]!
      expect(await badge(gus)).toMatch(new RegExp(`^${transport}`))
      await gus.close()
      staying.splice(staying.indexOf(`gus on ${transport}`), 1)
      // Well within the server's recovery window (30 s), which keeps a session that only lost
      // its connection: a closed tab is someone who left.
      await waitForPeople(fay, staying.length)
      expect(await listed(fay)).toEqual([...staying].sort())
    }
    await closeTabs([fay, ...leaving])
  })

  it('takes someone off the people list at once when their tab closes while a POST of theirs is unanswered', async () => {
    // A server of its own: its room stays out of the shared server's list.
    const chat = await startChat(new MemoryStore())
    const direct = `http://127.0.0.1:${chat.port}`
    let goodbyes = 0
    chat.app.parley.on('connection', (socket) => {
      socket.on('disconnect', (reason) => {
        if (reason === 'client disconnect') goodbyes++
      })
    })
    // On each transport, the POST held by a proxy (it never reaches the server), or its answer
    // lost on the way back: one person for each, through a proxy of their own, all in one room
    // with Fay, joined at once (five browser pages, not eight), who leave in turn.
    const cases = (['sse', 'polling'] as const).flatMap((transport) =>
      (['hang', 'mute'] as const).map((posts) => ({ transport, posts, name: `gus ${transport} ${posts}` })),
    )
    const networks = await Promise.all(cases.map(() => startFaultProxy(chat.port)))
    proxies.push(...networks)
    const [fay, ...leaving] = await Promise.all([
      join(direct, 'fay', { query: '?room=unanswered' }),
      ...cases.map(({ transport, name }, i) =>
        join(networks[i]!.url, name, { query: `?room=unanswered&transports=${transport}` }),
      ),
    ])
    const listed = (page: Page) => page.$$eval('#people li', (items) => items.map((i) => i.textContent))
    const staying = ['fay', ...cases.map(({ name }) => name)]
    for (const page of [fay, ...leaving]) await waitForPeople(page, staying.length)
    for (const [i, { posts, name }] of cases.entries()) {
      const [gus, network] = [leaving[i]!, networks[i]!]
      network.posts = posts
      // Gus types: the POST that says so is left unanswered, and the goodbye cannot wait for it.
      await gus.type('#text', 'bye')
      await expect.poll(() => network.unanswered, { timeout: 10_000 }).toBeGreaterThan(0)
      network.posts = 'pass'
      const before = goodbyes
      // Its browser stays open until the server has the goodbye, as when a person closes a tab.
      await closeTabs(gus, {
        runBeforeUnload: true,
        heard: () => until(() => goodbyes > before, 10_000, `the goodbye of ${name}`),
      })
      staying.splice(staying.indexOf(name), 1)
      // Well within the server's recovery window (30 s), which the session would otherwise
      // live out, and the POST's own bound, the heartbeat window.
      await waitForPeople(fay, staying.length)
      expect(await listed(fay)).toEqual([...staying].sort())
    }
    await closeTabs(fay)
    await stopChat(chat.app)
  }, 60_000)

  it("shows its own messages delivered in the history after a reload, and nobody else's", async () => {
    const chat = await startChat(new MemoryStore())
    const direct = `http://127.0.0.1:${chat.port}`
    const [ivy, jon] = await Promise.all([
      join(direct, 'ivy', { query: '?room=reload-ticks' }),
      join(direct, 'jon', { query: '?room=reload-ticks' }),
    ])
    await send(ivy, 'ivy 1')
    await waitForMessages(jon, 1)
    await send(jon, 'jon 1')
    await send(ivy, 'ivy 2')
    await waitForMessages(jon, 3)
    await waitForDelivered(ivy, 2)
    await ivy.reload()
    await ivy.fill('#nickname', 'ivy')
    await ivy.click('#join button')
    await waitForMessages(ivy, 3)
    const ticks = (page: Page) =>
      page.$$eval('#messages li', (items) =>
        items.map(
          (i) =>
            `${i.querySelector('.text')?.textContent} ${i.querySelector('.tick')?.getAttribute('data-state')}`,
        ),
      )
    expect(await ticks(ivy)).toEqual(['ivy 1 delivered', 'jon 1 undefined', 'ivy 2 delivered'])
    // Jon's page shows his own as delivered, Ivy's with no tick.
    expect(await ticks(jon)).toEqual(['ivy 1 undefined', 'jon 1 delivered', 'ivy 2 undefined'])
    await closeTabs([ivy, jon])
    await stopChat(chat.app)
  })
})
