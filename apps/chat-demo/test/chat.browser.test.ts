// The chat demo in headless Chromium through what goes wrong, and on clocks: three people on three
// transports, a server restart, the browser offline, the rate limit's window, a store that refuses.
// What the page shows and sends, timing nothing, is in chat-page.browser.test.ts; pages that reload
// or close, waiting on no clock either, in chat-reloads.browser.test.ts.
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { STABLE_MS } from '../../../packages/client/src/fallback.js'
import { until } from '../../../packages/server/test/helpers.js'
import { openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { closeTabs } from '../../../test/support/tabs.js'
import type { ChatData } from '../src/chat.js'
import { Limits } from '../src/shared.js'
import { MemoryStore, StoreUnavailableError } from '../src/store.js'
import {
  badge,
  chatInChromium,
  gate,
  onEachTransport,
  send,
  texts,
  waitForDelivered,
  waitForMessages,
  waitForPeople,
} from './chat-in-chromium.js'
import { pauseNextAdd, pauseNextJoin } from './pausing-store.js'
import { RefusingStore } from './refusing-store.js'

describe.skipIf(skipBrowserSuites())('chat demo in Chromium', () => {
  const suite = chatInChromium()
  const { proxies, startChat, stopChat, join } = suite

  /**
   * For a server the test stops and starts again: its pages are told to come back after 100 ms,
   * not Parley's 1 to 2 s (their backoff paces the tries that find it still away).
   */
  const backSoon = { shutdown: { retryAfter: 100, retrySpread: 0 } }

  /** A proxy that refuses WebSocket (the page lands on SSE), and one that also bans SSE (polling). */
  async function blockingProxies(target: number): Promise<[FaultProxy, FaultProxy]> {
    const noWs = await startFaultProxy(target)
    noWs.ws = 'reject'
    const noWsNoSse = await startFaultProxy(target)
    noWsNoSse.ws = 'reject'
    noWsNoSse.sse = 'block'
    proxies.push(noWs, noWsNoSse)
    return [noWs, noWsNoSse]
  }

  /**
   * Watches the requests and WebSockets `page` opens from now on: what it gives is how many of
   * them have neither ended nor failed yet.
   */
  function underWay(page: Page): () => number {
    const open = new Set<object>()
    const ended = (what: object) => void open.delete(what)
    page.on('request', (request) => void open.add(request))
    page.on('requestfinished', ended)
    page.on('requestfailed', ended)
    page.on('websocket', (ws) => {
      open.add(ws)
      ws.on('close', () => ended(ws))
    })
    return () => open.size
  }
  /**
   * Opens the chat as `name` in `room` on WebSocket, watching its frames: `acked(event, value)` waits
   * until the page sent `event` with `value` in its payload, and the server acknowledged it (the
   * client will not send it again).
   */
  async function joinWatched(base: string, name: string, room: string) {
    const sent: unknown[][] = []
    let acked = 0
    const page = await (await openContext(suite.browser)).newPage()
    page.on('websocket', (ws) => {
      ws.on('framesent', ({ payload }) => void sent.push(JSON.parse(String(payload))))
      ws.on('framereceived', ({ payload }) => {
        const packet = JSON.parse(String(payload))
        if (packet[0] === 4) acked = Math.max(acked, packet[1])
      })
    })
    await page.goto(`${base}/?room=${room}`)
    await page.fill('#nickname', name)
    await page.click('#join button')
    await waitForPeople(page, 1)
    const acknowledged = (event: string, value: string) => {
      const packet = sent.find(
        ([type, , name, args]) =>
          type === 5 && name === event && Object.values((args as object[])[0] ?? {}).includes(value),
      )
      return packet !== undefined && acked >= Number(packet[1])
    }
    return {
      page,
      acked: (event: string, value: string) =>
        until(() => acknowledged(event, value), 5000, `the server's ACK of ${event} ${value}`),
    }
  }

  /** Waits until the banner shows and matches; on timeout, says what it showed instead. */
  async function waitForBanner(page: Page, pattern: RegExp): Promise<void> {
    try {
      await page.waitForFunction(
        (source) => {
          const banner = document.querySelector<HTMLElement>('#banner')
          return banner !== null && !banner.hidden && new RegExp(source).test(banner.textContent ?? '')
        },
        pattern.source,
        { timeout: 10_000 },
      )
    } catch (error) {
      const shown = await page.$eval(
        '#banner',
        (b) => `${(b as HTMLElement).hidden ? 'hidden' : 'shown'}: ${b.textContent}`,
      )
      const badge = await page.textContent('#transport')
      throw new Error(`banner never matched ${pattern} (${shown}; badge ${badge})`, { cause: error })
    }
  }

  it('lets people on websocket, sse and polling chat, with presence, typing, ticks and safe text', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    const [noWs, noWsNoSse] = await blockingProxies(suite.port)

    const [ada, bob, cy] = await Promise.all([
      join(direct, 'ada'),
      join(noWs.url, 'bob'),
      join(noWsNoSse.url, 'cy'),
    ])
    expect(await badge(ada)).toBe('websocket: connected')
    expect(await badge(bob)).toBe('sse: WebSocket is blocked on this network: using SSE instead')
    expect(await badge(cy)).toMatch(/^polling: SSE .+: using long-polling instead$/)
    // What the client said, for the developer: in the badge's tooltip.
    expect(await bob.getAttribute('#transport', 'title')).toMatch(
      /^sse: websocket WebSocket ws:.+ closed \(1006\)$/,
    )

    // Presence: everyone sees all three.
    for (const page of [ada, bob, cy]) await waitForPeople(page, 3)

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
        await send(page, `${name} ${i}${i === 1 ? ` ${hostile}` : ''}`)
      }
    }
    for (const page of [ada, bob, cy]) {
      await waitForMessages(page, 12)
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
      await waitForDelivered(page, 4)
    }
    await closeTabs([ada, bob, cy])
  })

  it('carries three people through a server restart: they say so, reconnect, and what they wrote meanwhile arrives', async () => {
    // Sessions die with the server; rooms and history live in the store, as in a database.
    const store = new MemoryStore()
    let chat = await startChat(store, 0, backSoon)
    const [noWs, noWsNoSse] = await blockingProxies(chat.port)
    const [ada, bob, cy] = await Promise.all([
      join(`http://127.0.0.1:${chat.port}`, 'ada', { clock: true }),
      join(noWs.url, 'bob', { clock: true }),
      join(noWsNoSse.url, 'cy', { clock: true }),
    ])
    const people = [
      { name: 'ada', page: ada, transport: /^websocket/ },
      { name: 'bob', page: bob, transport: /^sse: WebSocket is blocked on this network: using SSE instead$/ },
      { name: 'cy', page: cy, transport: /^polling: SSE .+: using long-polling instead$/ },
    ].map((person) => ({ ...person, underWay: underWay(person.page) }))
    const each = (fn: (p: (typeof people)[number]) => Promise<unknown>) => Promise.all(people.map(fn))

    await each(({ page }) => waitForPeople(page, 3))
    for (const { name, page } of people) await send(page, `${name} before`)
    await each(({ page }) => waitForMessages(page, 3))
    await each(({ page }) => waitForDelivered(page, 1))

    await stopChat(chat.app)
    // While the server is away, each page says so and counts its attempts.
    await each(({ page }) => waitForBanner(page, /^The server is restarting: reconnecting \(attempt \d+\)…/))
    await each(async ({ page }) => expect(await badge(page)).toBe('offline: the server is restarting'))
    // Written during the gap: kept by the client, shown as waiting.
    for (const { name, page } of people) await send(page, `${name} during`)
    await each(async ({ page }) => {
      expect(
        await page.$$eval('#messages .tick', (ticks) => ticks.map((t) => t.getAttribute('data-state'))),
      ).toEqual(['delivered', 'queued'])
      await waitForBanner(page, /1 message will be sent once connected/)
    })

    // Offline while the server starts again, so that no attempt straddles the restart: one that
    // failed on its first transport (server away) and got through on the next (server back)
    // would land a page on another transport than it had. Offline, every new request fails at
    // once and the next attempt waits for the network; `online` then wakes each page's client.
    // A request already under way (an attempt's, to the stopped server) is left to fail first;
    // those of the pages' sessions ended with the server (the banners said so).
    await each(({ page }) => page.context().setOffline(true))
    await until(
      () => people.every((person) => person.underWay() === 0),
      5000,
      'the requests under way as the pages went offline to fail',
    )
    chat = await startChat(store, chat.port, backSoon)
    await each(({ page }) => page.context().setOffline(false))
    await each(async ({ page, transport }) => {
      await waitForBanner(page, /^Reconnected with a new session/)
      expect(await badge(page)).toMatch(transport)
      await waitForPeople(page, 3)
      await waitForMessages(page, 6)
      await waitForDelivered(page, 2)
    })
    for (const { page } of people) {
      const seen = await texts(page)
      expect(new Set(seen).size).toBe(6)
      for (const { name } of people) {
        expect(seen.filter((t) => t.startsWith(`${name} `))).toEqual([`${name} before`, `${name} during`])
      }
    }
    // The server stored each message once.
    expect((await store.history('lobby')).map((m) => m.text).sort()).toEqual(
      people.flatMap(({ name }) => [`${name} before`, `${name} during`]).sort(),
    )
    // The banner goes once the chat is back: after its time on screen, which the page's clock
    // skips (10 s: longer than any banner shows).
    await each(({ page }) => page.clock.fastForward(10_000))
    await each(({ page }) =>
      page.waitForFunction(() => document.querySelector<HTMLElement>('#banner')?.hidden === true, null, {
        timeout: 10_000,
      }),
    )
    await closeTabs(people.map(({ page }) => page))
    await stopChat(chat.app)
  }, 30_000)

  it('keeps what is written while the browser is offline, and resumes the session when the network is back', async () => {
    // Eve's network goes through a proxy: when it goes down, the browser knows it is offline
    // and the connections it had are gone, as when a laptop loses its Wi-Fi.
    const network = await startFaultProxy(suite.port)
    proxies.push(network)
    // A room of their own, so that the other tests' messages do not count here.
    const [dee, eve] = await Promise.all([
      join(`http://127.0.0.1:${suite.port}`, 'dee'),
      join(network.url, 'eve', { query: '?transports=sse,polling' }),
    ])
    for (const page of [dee, eve]) {
      await page.fill('#room-name', 'offline-test')
      await page.click('#new-room button')
    }
    for (const page of [dee, eve]) await waitForPeople(page, 2)
    await eve.context().setOffline(true)
    network.cut('all')
    await waitForBanner(eve, /^You’re offline: the chat reconnects when you’re back\.$/)
    await send(eve, 'eve offline')
    expect(await eve.getAttribute('#messages .tick', 'data-state')).toBe('queued')
    await eve.context().setOffline(false)
    await waitForBanner(eve, /^Reconnected: nothing was lost\.$/)
    await waitForDelivered(eve, 1)
    await dee.waitForFunction(
      () => document.querySelector('#messages li .text')?.textContent === 'eve offline',
      null,
      { timeout: 10_000 },
    )
    expect(await eve.textContent('#transport')).toMatch(/^sse/)
    await closeTabs([dee, eve])
  })

  it('asks again at once, never waiting for the store, when a message is refused for want of it after the session resumed', async () => {
    const store = new MemoryStore()
    const network = await startFaultProxy((await startChat(store)).port)
    proxies.push(network)
    const page = await join(network.url, 'lou', { query: '?transports=sse' })
    // Every tick the message shows, and every banner.
    await page.evaluate(() => {
      const seen: string[] = []
      Object.assign(window, { seen })
      const watch = (node: Node, what: () => string) =>
        new MutationObserver(() => seen.push(what())).observe(node, {
          attributes: true,
          childList: true,
          subtree: true,
          characterData: true,
        })
      const banner = document.querySelector('#banner') as HTMLElement
      watch(banner, () => `banner: ${banner.hidden ? '' : banner.textContent}`)
      const list = document.querySelector('#messages') as HTMLElement
      watch(list, () => `tick: ${list.querySelector('.tick')?.getAttribute('data-state')}`)
    })
    // The connection is lost while the message is on its way into the store, and the session
    // resumes (on another node, for all the page knows) before the answer: the store refused it,
    // as the old node of a moved session may when its store's answer was lost.
    pauseNextAdd(
      store,
      async () => {
        await page.context().setOffline(true)
        network.cut('all')
        await waitForBanner(page, /^You’re offline/)
        await page.context().setOffline(false)
        await waitForBanner(page, /^Reconnected: nothing was lost\.$/)
        throw new StoreUnavailableError('the answer was lost')
      },
      { before: true },
    )
    await send(page, 'across the resume')
    await waitForDelivered(page, 1)
    const seen = (await page.evaluate(() => (window as unknown as { seen: string[] }).seen)).join('\n')
    expect(seen).not.toMatch(/unavailable|tick: stalled/)
    expect((await store.history('lobby')).map((m) => m.text)).toEqual(['across the resume'])
    await closeTabs(page)
  }, 30_000)

  it('says on the transport badge why the session moved when its connection was cut', async () => {
    const network = await startFaultProxy(suite.port)
    proxies.push(network)
    const fay = await join(network.url, 'fay', { clock: true })
    expect(await badge(fay)).toMatch(/^websocket/)
    // Up for a while: a loss within STABLE_MS of the open counts as a failure to connect. The
    // client's own clock decides, and the page shows nothing when it has passed: the page's
    // clock jumps over it, counted from the join (after the open).
    await fay.clock.fastForward(STABLE_MS)
    network.cut('websocket')
    // The session goes on (over SSE at first, stepping down from the transport it lost), and
    // the badge says what was lost: "sse: the WebSocket connection dropped: carried on over SSE,
    // nothing was lost", the client's words in its tooltip.
    await fay.waitForFunction(
      () =>
        /^\w+: the WebSocket connection dropped: .+, nothing was lost$/.test(
          document.querySelector('#transport')?.textContent ?? '',
        ),
      null,
      { timeout: 10_000 },
    )
    expect(await fay.getAttribute('#transport', 'title')).toMatch(
      /^\w+: \w+ from websocket \(websocket .+ closed \(1006\)\)$/,
    )
    await closeTabs(fay)
  })

  it('says at once that the browser went offline, on every transport, and sends what was written then once', async () => {
    // Only the browser's offline mode this time: Chromium refuses every new request until it is
    // back, but leaves a poll held at that moment, or a WebSocket, alone. The page says so at once
    // all the same (the client lets go of its transport on `offline`), not when the heartbeat
    // gives up on it.
    await onEachTransport(suite, ['kit', 'lee'], async ({ transport, room, store, pages: [kit, lee] }) => {
      await kit.context().setOffline(true)
      await waitForBanner(kit, /^You’re offline: the chat reconnects when you’re back\.$/)
      const written = [1, 2, 3].map((i) => `kit offline ${i}`)
      for (const text of written) await send(kit, text)
      await waitForBanner(kit, /3 messages will be sent when you’re back\.$/)
      // Someone else writes meanwhile: it waits on the server for Kit's session.
      await send(lee, 'lee meanwhile')
      await waitForDelivered(lee, 1)
      await kit.context().setOffline(false)
      await waitForBanner(kit, /^Reconnected: nothing was lost\.$/)
      await waitForDelivered(kit, 3)
      for (const page of [kit, lee]) {
        await waitForMessages(page, 4)
        expect(await texts(page)).toEqual(['lee meanwhile', ...written])
        expect(await page.$$eval('#people li', (items) => items.map((i) => i.textContent))).toEqual([
          'kit',
          'lee',
        ])
      }
      expect(await badge(kit)).toMatch(new RegExp(`^${transport}: `))
      expect((await store.history(room)).map((m) => m.text)).toEqual(['lee meanwhile', ...written])
    })
  }, 60_000)

  it('counts in its banner the messages written offline for a room clicked offline, and sends them there', async () => {
    // A server of its own: the rooms it makes stay out of the shared server's list.
    const chat = await startChat(new MemoryStore())
    const page = await join(`http://127.0.0.1:${chat.port}`, 'uma', { query: '?room=click-offline' })
    await page.context().setOffline(true)
    await waitForBanner(page, /^You’re offline: the chat reconnects when you’re back\.$/)
    await send(page, 'for this room')
    // A new room, clicked offline: its join waits for the connection, and so does what is written for it.
    await page.fill('#room-name', 'click-offline-2')
    await page.click('#new-room button')
    await send(page, 'for the next room 1')
    await send(page, 'for the next room 2')
    await waitForBanner(page, / 3 messages will be sent when you’re back\.$/)
    await page.context().setOffline(false)
    await page.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# click-offline-2',
      null,
      { timeout: 10_000 },
    )
    await waitForDelivered(page, 2)
    expect(await texts(page)).toEqual(['for the next room 1', 'for the next room 2'])
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('goes to the room clicked while the server was away, once it is back, with what was written for it', async () => {
    const store = new MemoryStore()
    let chat = await startChat(store, 0, backSoon)
    const page = await join(`http://127.0.0.1:${chat.port}`, 'vic', { query: '?room=before-restart' })
    await stopChat(chat.app)
    await waitForBanner(page, /^The server is restarting: reconnecting/)
    // Offline until the server is back, so that no attempt straddles the restart.
    await page.context().setOffline(true)
    await page.fill('#room-name', 'after-restart')
    await page.click('#new-room button')
    await send(page, 'for the room clicked')
    chat = await startChat(store, chat.port, backSoon)
    await page.context().setOffline(false)
    await waitForBanner(page, /^Reconnected with a new session/)
    await waitForDelivered(page, 1)
    // The server puts the page where its message went, and the page shows that room: the one clicked.
    const rooms = async () =>
      (await chat.app.parley.fetchSockets()).map((s) => (s.data as Partial<ChatData>).room)
    await page.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# after-restart',
      null,
      { timeout: 10_000 },
    )
    expect(await texts(page)).toEqual(['for the room clicked'])
    expect(await rooms()).toEqual(['after-restart'])
    expect((await store.history('after-restart')).map((m) => m.text)).toEqual(['for the room clicked'])
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('shows once, delivered, a message stored by a server that stopped before its answer', async () => {
    const store = new MemoryStore()
    let chat = await startChat(store, 0, backSoon)
    const { page, acked } = await joinWatched(`http://127.0.0.1:${chat.port}`, 'wes', 'unanswered')
    // Stored, and acknowledged (the client will not send it again), and the server stops before
    // the handler answers: the page's request ends with the session.
    let stopping: Promise<void> | undefined
    pauseNextAdd(store, async () => {
      await acked('chat', 'caught in the stop')
      stopping = stopChat(chat.app)
      await waitForBanner(page, /^The server is restarting: reconnecting/)
    })
    await send(page, 'caught in the stop')
    await waitForBanner(page, /^The server is restarting: reconnecting/)
    await stopping
    chat = await startChat(store, chat.port, backSoon)
    await waitForBanner(page, /^Reconnected with a new session/)
    await waitForDelivered(page, 1)
    // The new session's history has it too: one line, never "failed".
    expect(await texts(page)).toEqual(['caught in the stop'])
    expect(await page.$$('#messages .tick[data-state="failed"]')).toHaveLength(0)
    expect((await store.history('unanswered')).map((m) => m.text)).toEqual(['caught in the stop'])
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('says nothing went wrong, and goes there, when the server stopped before answering a click on a room', async () => {
    const store = new MemoryStore()
    let chat = await startChat(store, 0, backSoon)
    const { page, acked } = await joinWatched(`http://127.0.0.1:${chat.port}`, 'xia', 'left-room')
    await page.evaluate(() => {
      const said: string[] = []
      const box = document.querySelector('#error') as HTMLElement
      new MutationObserver(() => said.push(box.textContent ?? '')).observe(box, { childList: true })
      Object.assign(window, { said })
    })
    let stopping: Promise<void> | undefined
    pauseNextJoin(store, 'unanswered-room', async () => {
      await acked('join', 'unanswered-room')
      stopping = stopChat(chat.app)
      await waitForBanner(page, /^The server is restarting: reconnecting/)
    })
    await page.fill('#room-name', 'unanswered-room')
    await page.click('#new-room button')
    await send(page, 'for the room clicked')
    await waitForBanner(page, /^The server is restarting: reconnecting/)
    await stopping
    chat = await startChat(store, chat.port, backSoon)
    await waitForBanner(page, /^Reconnected with a new session/)
    await waitForDelivered(page, 1)
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# unanswered-room')
    expect(await texts(page)).toEqual(['for the room clicked'])
    expect(await page.evaluate(() => (window as unknown as { said: string[] }).said)).toEqual([])
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('marks not sent, rather than waiting for ever, a message left unanswered when the nickname is then refused', async () => {
    const store = new MemoryStore()
    let chat = await startChat(store, 0, backSoon)
    const { page, acked } = await joinWatched(`http://127.0.0.1:${chat.port}`, 'yan', 'name-lost')
    let stopping: Promise<void> | undefined
    pauseNextAdd(store, async () => {
      await acked('chat', 'before the name was lost')
      stopping = stopChat(chat.app)
      await waitForBanner(page, /^The server is restarting: reconnecting/)
    })
    await send(page, 'before the name was lost')
    await waitForBanner(page, /^The server is restarting: reconnecting/)
    await stopping
    // Someone else takes the name while this page is away; coming back, it must pick another.
    await page.context().setOffline(true)
    chat = await startChat(store, chat.port, backSoon)
    const other = await join(`http://127.0.0.1:${chat.port}`, 'yan', { query: '?room=name-lost' })
    await page.context().setOffline(false)
    await page.waitForSelector('#join-error', { timeout: 10_000 })
    // That socket is done: its message is not sent again, nor said to wait.
    expect(await page.$eval('#messages .tick', (tick) => tick.getAttribute('data-state'))).toBe('failed')
    await closeTabs([page, other])
    await stopChat(chat.app)
  })

  it('delivers everything written while offline, even more than the rate limit lets through at once', async () => {
    // A server of its own, whose rate limit's window is a second rather than five: the wait for
    // it is what this test is about, not its length.
    const chat = await startChat(new MemoryStore(), 0, { ratePeriod: 1000 })
    let messagesHeard = 0
    chat.app.parley.on('connection', (socket) =>
      socket.use(([event], next) => {
        if (event === 'chat') messagesHeard++
        next()
      }),
    )
    const network = await startFaultProxy(chat.port)
    proxies.push(network)
    const page = await join(network.url, 'jo', { query: '?room=offline-burst&transports=sse' })
    await page.context().setOffline(true)
    network.cut('all')
    await waitForBanner(page, /^You’re offline/)
    const written = Array.from({ length: 7 }, (_, i) => `jo offline ${i}`)
    for (const text of written) await send(page, text)
    await page.context().setOffline(false)
    // Five go at once; the server refuses the other two for the rest of its window, and the
    // page sends them again then, rather than marking them failed.
    await page.waitForFunction(
      () => document.querySelectorAll('#messages .tick[data-state="delivered"]').length === 7,
      null,
      { timeout: 15_000 },
    )
    expect(await page.$$('#messages .tick[data-state="failed"]')).toHaveLength(0)
    expect(await texts(page)).toEqual(written)
    // Some were refused and came again: the limit was reached, as the test means it to be.
    expect(messagesHeard).toBeGreaterThan(written.length)
    await closeTabs(page)
    await stopChat(chat.app)
  }, 30_000)

  it('sends again, rather than marking failed, a message the rate limit refused for what waited offline before it', async () => {
    // A server of its own, whose window is two seconds rather than five (the wait for it is not
    // what this test is about): the five written offline go together on reconnecting and fill it,
    // and the one written next, within a few hundred ms, is refused (counted below).
    const chat = await startChat(new MemoryStore(), 0, { ratePeriod: 2000 })
    let messagesHeard = 0
    chat.app.parley.on('connection', (socket) =>
      socket.use(([event], next) => {
        if (event === 'chat') messagesHeard++
        next()
      }),
    )
    const network = await startFaultProxy(chat.port)
    proxies.push(network)
    const page = await join(network.url, 'lou', { query: '?room=backlog&transports=sse', clock: true })
    await page.context().setOffline(true)
    network.cut('all')
    await waitForBanner(page, /^You’re offline/)
    // Written at a person's pace, over the outage: one every 1.1 s on the page's clock.
    const offline = Array.from({ length: Limits.rate }, (_, i) => `lou offline ${i}`)
    for (const text of offline) {
      await send(page, text)
      await page.clock.fastForward(1100)
    }
    await page.context().setOffline(false)
    await waitForDelivered(page, Limits.rate)
    // Online, right after: refused for the backlog's sake, not for typing too fast.
    await send(page, 'lou online')
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#messages .tick:is([data-state="delivered"], [data-state="failed"])')
          .length === 6,
      null,
      { timeout: 15_000 },
    )
    expect(await page.$$('#messages .tick[data-state="failed"]')).toHaveLength(0)
    expect(await texts(page)).toEqual([...offline, 'lou online'])
    // 'lou online' was refused and came again: the window was full, as the test means it to be.
    expect(messagesHeard).toBe(offline.length + 2)
    await closeTabs(page)
    await stopChat(chat.app)
  }, 30_000)

  it('marks failed, saying why, a message written faster than the rate limit takes', async () => {
    const chat = await startChat(new MemoryStore())
    const page = await join(`http://127.0.0.1:${chat.port}`, 'max', { query: '?room=too-fast' })
    for (let i = 0; i <= Limits.rate; i++) await send(page, `max ${i}`)
    await page.waitForSelector('#messages .tick[data-state="failed"]', { timeout: 10_000 })
    await waitForDelivered(page, Limits.rate)
    expect(await page.$$('#messages .tick[data-state="failed"]')).toHaveLength(1)
    expect(await page.textContent('#error')).toMatch(/^slow down: at most 5 messages in 5 s/)
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('stores messages written offline in order when the store refuses the first and takes the next as they arrive', async () => {
    const written = ['kim offline 0', 'kim offline 1', 'kim offline 2']
    // Redis away for the first as they arrive together, back for the rest.
    const store = new RefusingStore(written.slice(0, 1))
    const network = await startFaultProxy((await startChat(store)).port)
    proxies.push(network)
    const page = await join(network.url, 'kim', { query: '?transports=sse' })
    await page.context().setOffline(true)
    network.cut('all')
    await waitForBanner(page, /^You’re offline/)
    for (const text of written) await send(page, text)
    await page.context().setOffline(false)
    // The first is sent again 2 s after it was refused, then the rest, each in turn.
    await page.waitForFunction(
      () => document.querySelectorAll('#messages .tick[data-state="delivered"]').length === 3,
      null,
      { timeout: 15_000 },
    )
    expect((await store.history('lobby')).map((m) => m.text)).toEqual(written)
    expect(await texts(page)).toEqual(written)
    await closeTabs(page)
  }, 30_000)

  it('stays in its room, and says to slow down, when the room it is in is clicked again and again', async () => {
    const store = new MemoryStore()
    const chat = await startChat(store)
    // While `holding`, joins wait at the server's door: the first until `first` opens, the others
    // until `rest` does. The page's clicks stay unanswered meanwhile.
    let holding = false
    let held = 0
    const [first, rest] = [gate(), gate()]
    chat.app.parley.on('connection', (socket) => {
      socket.use(async ([event]) => {
        if (event === 'join' && holding) await (held++ === 0 ? first.passed : rest.passed)
      })
    })
    const page = await join(`http://127.0.0.1:${chat.port}`, 'ike', { query: '?room=help' })
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# help')
    holding = true
    // Clicked back from another room before the server answered: each click asks for the room
    // again (the first a change of room), and past a few the server refuses them for their pace.
    // The last click is the one refused: nothing after it takes the page back to this room.
    await page.click('#rooms [data-room="lobby"]')
    for (let i = 0; i <= Limits.rejoins + 1; i++) await page.click('#rooms [data-room="help"]')
    // The other room's answer first: the page shows it, and holds what is written for this one.
    first.open()
    await page.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# lobby',
      null,
      { timeout: 10_000 },
    )
    await send(page, 'held for help')
    expect(await page.getAttribute('#messages .tick', 'data-state')).toBe('held')
    rest.open()
    await page.waitForFunction(
      () => document.querySelector('#error')?.textContent?.startsWith('slow down: you are in this room'),
      null,
      { timeout: 10_000 },
    )
    // Back in this room before the refusal came: what was held for it is sent, not failed.
    await waitForDelivered(page, 1)
    // Written once the refusal showed: it goes to the room the page is still in.
    await send(page, 'still in help')
    await waitForDelivered(page, 2)
    expect(await page.$$('#messages .tick[data-state="failed"]')).toHaveLength(0)
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# help')
    expect((await store.history('help')).map((m) => m.text)).toEqual(['held for help', 'still in help'])
    const sockets = await chat.app.parley.fetchSockets()
    expect(sockets.map((s) => (s.data as Partial<ChatData>).room)).toEqual(['help'])
    await closeTabs(page)
    await stopChat(chat.app)
  }, 25_000)
})
