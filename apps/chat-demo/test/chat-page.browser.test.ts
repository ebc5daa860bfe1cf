// The chat demo's page in headless Chromium, what it shows and what it sends: a message written
// after a click on a room the server has not answered yet, messages heard before an answer or out
// of the store's order, names for a screen reader, names and messages that run right to left,
// what a person types wrong, one person in two tabs, a phone and a desktop. Nothing here is
// timed, nor waits on a heartbeat, a reconnection or a rate limit's window: the file runs beside
// the others (the `beside` list of vitest.config.ts).
// The page through failures and restarts, and on clocks, is in chat.browser.test.ts.
import type { BrowserContextOptions, Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { until } from '../../../packages/server/test/helpers.js'
import { openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { type ChatMessage, type HeardMessage, Limits } from '../src/shared.js'
import { MemoryStore } from '../src/store.js'
import {
  chatInChromium,
  gate,
  send,
  texts,
  waitForDelivered,
  waitForMessages,
  waitForPeople,
} from './chat-in-chromium.js'
import { pauseNextAdd, pauseNextJoin } from './pausing-store.js'

describe.skipIf(skipBrowserSuites())('the chat page in Chromium', () => {
  const suite = chatInChromium()
  const { startChat, stopChat, join } = suite

  it('sends a message written after a click on another room to that room, even before the server answered the click', async () => {
    const store = new MemoryStore()
    const chat = await startChat(store)
    // Joins wait at the server's door while `gate` is set: the page's click stays unanswered.
    let gate: Promise<void> | undefined
    let open = () => {}
    chat.app.parley.on('connection', (socket) => {
      socket.use(async ([event]) => {
        if (event === 'join') await gate
      })
    })
    const page = await join(`http://127.0.0.1:${chat.port}`, 'lea')
    gate = new Promise((resolve) => {
      open = resolve
    })
    await page.click('#rooms [data-room="help"]')
    await send(page, 'for help')
    // Nothing to send it with yet: the page is still on its way to #help.
    expect(await page.getAttribute('#messages .tick', 'data-state')).toBe('held')
    gate = undefined
    open()
    await waitForDelivered(page, 1)
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# help')
    expect(await texts(page)).toEqual(['for help'])
    expect((await store.history('help')).map((m) => m.text)).toEqual(['for help'])
    expect(await store.history('lobby')).toEqual([])

    // A room the server refuses: the page stays in #help, and what was written for the other
    // room is not sent to this one.
    gate = new Promise((resolve) => {
      open = resolve
    })
    await page.fill('#room-name', 'not a room!')
    await page.click('#new-room button')
    await send(page, 'for nowhere')
    gate = undefined
    open()
    await page.waitForSelector('#messages .tick[data-state="failed"]', { timeout: 10_000 })
    expect(await page.textContent('#error')).toMatch(/^not sent: room names are/)
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# help')
    expect((await store.history('help')).map((m) => m.text)).toEqual(['for help'])
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('shows a message sent while the page joins a room, heard before the answer, after the history and once', async () => {
    const store = new MemoryStore()
    const chat = await startChat(store)
    const base = `http://127.0.0.1:${chat.port}`
    const [mia, ned] = await Promise.all([join(base, 'mia', { query: '?room=help' }), join(base, 'ned')])
    await send(mia, 'before')
    await waitForDelivered(mia, 1)
    // Sent once Ned's join has read the history, before it answers: it reaches Ned first.
    pauseNextJoin(store, 'help', async () => {
      await send(mia, 'during')
      await waitForDelivered(mia, 2)
    })
    await ned.click('#rooms [data-room="help"]')
    await ned.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# help',
      null,
      { timeout: 10_000 },
    )
    await send(mia, 'after')
    await ned.waitForFunction(
      () => Array.from(document.querySelectorAll('#messages .text')).some((t) => t.textContent === 'after'),
      null,
      { timeout: 10_000 },
    )
    expect(await texts(ned)).toEqual(['before', 'during', 'after'])
    await closeTabs([mia, ned])
    await stopChat(chat.app)
  }, 25_000)

  it('shows a message heard before the answer that the history left behind before the history', async () => {
    const store = new MemoryStore()
    const chat = await startChat(store)
    const base = `http://127.0.0.1:${chat.port}`
    const [mia, ned] = await Promise.all([join(base, 'mia', { query: '?room=help' }), join(base, 'ned')])
    // Mia's message is stored, and waits to be sent while a history's worth of messages are stored
    // after it and Ned joins: the history Ned gets lacks it, and it reaches him before the answer.
    let joinHeld = () => {}
    const held = new Promise<void>((resolve) => {
      joinHeld = resolve
    })
    pauseNextAdd(store, async () => {
      // Stamped later than 'early' (the page compares the times, to the millisecond).
      const early = Date.now()
      await until(() => Date.now() > early, 1000, 'the clock to pass the time of early')
      for (let i = 0; i < Limits.history; i++) {
        await store.add({ room: 'help', from: 'zed', text: `later ${i}`, at: Date.now() })
      }
      pauseNextJoin(store, 'help', async () => {
        joinHeld()
        await waitForDelivered(mia, 1)
      })
      void ned.click('#rooms [data-room="help"]')
      await held
    })
    await send(mia, 'early')
    await ned.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# help',
      null,
      { timeout: 10_000 },
    )
    const later = Array.from({ length: Limits.history }, (_, i) => `later ${i}`)
    expect(await texts(ned)).toEqual(['early', ...later])
    await closeTabs([mia, ned])
    await stopChat(chat.app)
  })

  /**
   * What Ned's page shows (after a message of his, delivered) once it heard Zed's `first`, `second`
   * and `third`, stored one after the other (through two nodes, say), as `broadcasts` has them
   * come: this node alone cannot be made to cross them, nor to be an older one, so the test sends.
   */
  async function heardAs(
    broadcasts: (first: ChatMessage, second: ChatMessage, third: ChatMessage) => HeardMessage[],
  ): Promise<string[]> {
    const store = new MemoryStore()
    const chat = await startChat(store)
    const ned = await join(`http://127.0.0.1:${chat.port}`, 'ned')
    await send(ned, 'mine')
    await waitForDelivered(ned, 1)
    const stored = async (text: string) => {
      const added = await store.add({ room: 'lobby', from: 'zed', text, at: Date.now() })
      if (!('stored' in added)) throw new Error(`not stored: ${text}`)
      return added.stored
    }
    const heard = broadcasts(await stored('first'), await stored('second'), await stored('third'))
    for (const message of heard) chat.app.parley.to('lobby').emit('chat', message)
    await waitForMessages(ned, heard.length + 1)
    const shown = await texts(ned)
    await closeTabs(ned)
    await stopChat(chat.app)
    return shown
  }

  it("shows messages in the store's order when their broadcasts cross on their way", async () => {
    const shown = await heardAs((first, second, third) => [second, third, first])
    expect(shown).toEqual(['mine', 'first', 'second', 'third'])
  })

  it('shows a message an older node broadcast without a place where it arrives, and the rest in order', async () => {
    // A node of the version before places (a rolling upgrade) sends a message without `seq`,
    // between new nodes' broadcasts that cross on their way.
    const shown = await heardAs((first, second, third) => {
      const { seq: _, ...unplaced } = { ...third, id: 'old-node', text: 'from an old node' }
      return [first, third, unplaced, second]
    })
    expect(shown).toEqual(['mine', 'first', 'second', 'third', 'from an old node'])
  })

  it("shows two people's messages written at the same moment in the store's order on both pages", async () => {
    const store = new MemoryStore()
    const chat = await startChat(store)
    const base = `http://127.0.0.1:${chat.port}`
    const [ada, bob] = await Promise.all([join(base, 'ada'), join(base, 'bob')])
    for (const page of [ada, bob]) await waitForPeople(page, 2)
    // Ada's message is on its way into the store while Bob writes his, which is stored first: each
    // page drew its own where it was written, and heard the other's after it.
    pauseNextAdd(
      store,
      async () => {
        await send(bob, 'from bob')
        await waitForDelivered(bob, 1)
        await waitForMessages(ada, 2)
      },
      { before: true },
    )
    await send(ada, 'from ada')
    await waitForDelivered(ada, 1)
    await waitForMessages(bob, 2)
    const stored = (await store.history('lobby')).map((m) => m.text)
    expect(stored).toEqual(['from bob', 'from ada'])
    // Each page moved its own to the place the store gave it, as it places everyone else's.
    for (const page of [ada, bob]) expect(await texts(page)).toEqual(stored)
    // And a message heard after that goes after both.
    await send(bob, 'bob again')
    await waitForMessages(ada, 3)
    for (const page of [ada, bob]) expect(await texts(page)).toEqual([...stored, 'bob again'])
    await closeTabs([ada, bob])
    await stopChat(chat.app)
  })

  it('opens the lobby, and says why, when ?room= names a room that cannot be', async () => {
    const page = await join(`http://127.0.0.1:${suite.port}`, 'hal', { query: '?room=Not%20a%20room!' })
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# lobby')
    expect(await page.textContent('#error')).toMatch(/^room names are/)
    await send(page, 'hal here')
    await waitForDelivered(page, 1)
    await closeTabs(page)
  })

  it('sends no join for a click on the room it shows, while no join is under way', async () => {
    const chat = await startChat(new MemoryStore())
    let joins = 0
    chat.app.parley.on('connection', (socket) =>
      socket.use(([event], next) => {
        if (event === 'join') joins++
        next()
      }),
    )
    const page = await join(`http://127.0.0.1:${chat.port}`, 'ona', { query: '?room=help' })
    expect(joins).toBe(1)
    for (let i = 0; i <= Limits.rejoins; i++) await page.click('#rooms [data-room="help"]')
    // A click on another room is sent: once the page shows it, the clicks before it were handled.
    await page.click('#rooms [data-room="lobby"]')
    await page.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# lobby',
      null,
      { timeout: 10_000 },
    )
    expect(joins).toBe(2)
    expect(await page.isVisible('#error')).toBe(false)
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('shows a message written after a click away and back, before the server answered, once the page is back', async () => {
    const store = new MemoryStore()
    const chat = await startChat(store)
    // While `holding`, joins wait at the server's door: the page's clicks stay unanswered.
    let holding = false
    const door = gate()
    chat.app.parley.on('connection', (socket) => {
      socket.use(async ([event]) => {
        if (event === 'join' && holding) await door.passed
      })
    })
    const page = await join(`http://127.0.0.1:${chat.port}`, 'una', { query: '?room=help' })
    holding = true
    await page.click('#rooms [data-room="lobby"]')
    await page.click('#rooms [data-room="help"]')
    // For the room clicked last, which the page shows: sent at once. The server takes a socket's
    // events in order: it stores it after both joins, and the history of the second lacks it.
    await send(page, 'written meanwhile')
    expect(await page.getAttribute('#messages .tick', 'data-state')).toBe('sent')
    door.open()
    // The page draws the lobby, then this room anew: the message is drawn again, and delivered.
    await waitForDelivered(page, 1)
    expect(await page.textContent('#rooms [aria-current="true"]')).toBe('# help')
    expect(await texts(page)).toEqual(['written meanwhile'])
    expect((await store.history('help')).map((m) => m.text)).toEqual(['written meanwhile'])
    await closeTabs(page)
    await stopChat(chat.app)
  })

  it('names every control for a screen reader, and sends with the keyboard alone', async () => {
    const page = await join(`http://127.0.0.1:${suite.port}`, 'ivy')
    const names = await page.evaluate(() =>
      Array.from(
        document.querySelectorAll<HTMLInputElement | HTMLButtonElement>('#chat button, #chat input'),
        (e) => e.getAttribute('aria-label') ?? (e.labels?.[0]?.textContent || e.textContent),
      ),
    )
    // Rooms, "create room", the two inputs, "Send": words, not a lone symbol.
    expect(names.filter((name) => !/\p{L}{2}/u.test(name ?? ''))).toEqual([])
    expect(await page.getByRole('button', { name: 'create room', exact: true }).count()).toBe(1)
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('text')
    await page.keyboard.type('by keyboard')
    await page.keyboard.press('Enter')
    await waitForDelivered(page, 1)
    await closeTabs(page)
  })

  it('reads out new messages but not the history of a room just opened, and says what each tick means', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    const ann = await join(direct, 'ann', { query: '?room=reader-test' })
    for (let i = 1; i <= 3; i++) await send(ann, `before ${i}`)
    await waitForDelivered(ann, 3)
    // Each tick says its state in words; its symbol is hidden from screen readers.
    const ticks = ann.locator('#messages li .tick')
    expect(await ticks.first().ariaSnapshot()).toBe('- text: delivered')
    expect(
      await ann.$$eval('#messages .tick [aria-hidden="true"]', (s) => s.map((e) => e.textContent)),
    ).toEqual(['✓✓', '✓✓', '✓✓'])
    const announced = (page: Page) =>
      page.$$eval('#announcer > *', (items) => items.map((i) => i.textContent ?? ''))

    const bea = await join(direct, 'bea', { query: '?room=reader-test' })
    await waitForMessages(bea, 3)
    // The history is drawn in no live region, and nothing of it is announced.
    expect(
      await bea.$eval(
        '#messages',
        (list) => list.closest('[aria-live], [role="log"], [role="status"], [role="alert"]')?.id ?? null,
      ),
    ).toBeNull()
    expect(await announced(bea)).toEqual([])
    expect(await bea.getAttribute('#announcer', 'aria-live')).toBe('polite')

    await send(ann, 'after')
    await waitForMessages(bea, 4)
    expect(await announced(bea)).toEqual(['ann: after'])
    // Nobody is told what they wrote themselves.
    expect(await announced(ann)).toEqual([])
    await closeTabs([ann, bea])
  })

  it('keeps a right-to-left name, or a message with bidi controls, from turning the text beside it around', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    // A name with U+202E in it is refused (see chat.test.ts); a message may have one.
    const [rtl, flip, reader] = await Promise.all([
      join(direct, 'عليّ', { query: '?room=bidi-test' }),
      join(direct, 'flip', { query: '?room=bidi-test' }),
      join(direct, 'reader', { query: '?room=bidi-test' }),
    ])
    // The page reads left to right: "is typing…" stays after the name.
    await rtl.type('#text', 'x')
    await reader.waitForFunction(() =>
      document.querySelector('#typing')?.textContent?.endsWith(' is typing…'),
    )
    const typingAfter = await reader.$eval('#typing', (line) => {
      const last = line.lastChild as Text
      const from = last.length - ' is typing…'.length
      const name = document.createRange()
      name.setStart(line, 0)
      name.setEnd(last, from)
      const rest = document.createRange()
      rest.setStart(last, from)
      rest.setEnd(last, last.length)
      return name.getBoundingClientRect().right <= rest.getBoundingClientRect().left
    })
    expect(typingAfter).toBe(true)
    // And each name stays left of its message.
    await send(rtl, 'مرحبا بالعالم')
    // U+202E, RIGHT-TO-LEFT OVERRIDE: unisolated, it turns around all that follows on its line.
    await send(flip, '\u202Ehello world')
    await waitForMessages(reader, 2)
    const nameFirst = await reader.$$eval('#messages li', (items) =>
      items.map((item) => {
        const who = item.querySelector('.who')?.getBoundingClientRect()
        const text = item.querySelector('.text')?.getBoundingClientRect()
        return who !== undefined && text !== undefined && who.right <= text.left
      }),
    )
    expect(nameFirst).toEqual([true, true])
    await closeTabs([rtl, flip, reader])
  })

  it('says what is wrong with a nickname of spaces only, instead of doing nothing', async () => {
    const page = await (await openContext(suite.browser)).newPage()
    await page.goto(`http://127.0.0.1:${suite.port}/?room=nickname-test`)
    await page.fill('#nickname', '   ')
    await page.press('#nickname', 'Enter')
    // The browser's own message for an invalid field (a bubble by the input) is what shows.
    expect(await page.$eval('#nickname', (input) => (input as HTMLInputElement).validationMessage)).not.toBe(
      '',
    )
    expect(await page.isVisible('#join')).toBe(true)
    await page.fill('#nickname', ' kim ')
    await page.press('#nickname', 'Enter')
    await waitForPeople(page, 1)
    expect(await page.textContent('#people li')).toBe('kim')
    await closeTabs(page)
  })

  it('says a message of characters that show nothing shows nothing, instead of sending it', async () => {
    const page = await join(`http://127.0.0.1:${suite.port}`, 'vi', { query: '?room=blank-test' })
    // Zero-width spaces and a bidi override: the server would refuse it, as an empty message.
    const blank = '\u200B\u202E\u200B'
    await send(page, blank)
    expect(await page.textContent('#error')).toBe(
      'write a message that shows: zero-width and bidi control characters alone show nothing',
    )
    expect(await page.inputValue('#text')).toBe(blank)
    expect(await page.$$('#messages li')).toHaveLength(0)
    await send(page, `${blank}shown`)
    await waitForDelivered(page, 1)
    await closeTabs(page)
  })

  it('says when a nickname, a message or a room name is too long, instead of cutting it short', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    const page = await (await openContext(suite.browser)).newPage()
    await page.goto(`${direct}/?room=long-test`)
    await page.fill('#nickname', 'n'.repeat(Limits.nickname + 6))
    await page.click('#join button')
    await page.waitForSelector('#join-error:not([hidden])', { timeout: 10_000 })
    expect(await page.textContent('#join-error')).toBe(
      `pick a nickname of 1 to ${Limits.nickname} characters`,
    )
    await page.fill('#nickname', 'lou')
    await page.click('#join button')
    await waitForPeople(page, 1)
    const listener = await join(direct, 'lou listens', { query: '?room=long-test' })

    // Pasted past the limit: nothing is sent, the page says why, and the text stays to be shortened.
    const long = `${'y'.repeat(Limits.message)} and the end`
    await send(page, long)
    expect(await page.textContent('#error')).toBe(
      `messages are at most ${Limits.message} characters: this one has ${long.length}`,
    )
    expect(await page.inputValue('#text')).toBe(long)
    expect(await page.$$('#messages li')).toHaveLength(0)
    await send(page, long.slice(0, Limits.message))
    await waitForDelivered(page, 1)
    await waitForMessages(listener, 1)
    expect(await texts(listener)).toEqual([long.slice(0, Limits.message)])

    await page.fill('#room-name', 'r'.repeat(Limits.roomName + 8))
    await page.click('#new-room button')
    await page.waitForFunction(() =>
      document.querySelector('#error')?.textContent?.startsWith('room names are'),
    )
    expect(
      await page.$$eval('#rooms button', (rooms) => rooms.some((r) => r.textContent?.includes('rrr'))),
    ).toBe(false)
    await closeTabs([page, listener])
  })

  it('asks for another nickname when someone else uses it, and then lists both people', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    const nia = await join(direct, 'nia', { query: '?room=nickname-clash' })
    const page = await (await openContext(suite.browser)).newPage()
    await page.goto(`${direct}/?room=nickname-clash`)
    await page.fill('#nickname', 'NIA')
    await page.click('#join button')
    await page.waitForSelector('#join-error:not([hidden])', { timeout: 10_000 })
    expect(await page.textContent('#join-error')).toMatch(/^someone is using the nickname "NIA" already/)
    expect(await page.getAttribute('#join-error', 'role')).toBe('alert')
    expect(await page.isVisible('#chat')).toBe(false)
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('nickname')
    await page.fill('#nickname', 'nia too')
    await page.click('#join button')
    for (const p of [nia, page]) await waitForPeople(p, 2)
    expect(await page.$$eval('#people li', (items) => items.map((i) => i.textContent))).toEqual([
      'nia',
      'nia too',
    ])
    expect(await page.isVisible('#join-error')).toBe(false)
    await closeTabs([nia, page])
  })

  it('lists once, and shows as their own, a person whose two tabs spell their nickname in two letter cases', async () => {
    const direct = `http://127.0.0.1:${suite.port}`
    const tabs = await openContext(suite.browser)
    const [upper, lower] = [await tabs.newPage(), await tabs.newPage()]
    for (const [page, name] of [
      [upper, 'Sam'],
      [lower, 'sam'],
    ] as const) {
      await page.goto(`${direct}/?room=case-test`)
      await page.fill('#nickname', name)
      await page.click('#join button')
    }
    const other = await join(direct, 'tess', { query: '?room=case-test' })
    for (const page of [upper, lower, other]) await waitForPeople(page, 2)
    expect(await other.$$eval('#people li', (items) => items.map((i) => i.textContent))).toEqual([
      'Sam',
      'tess',
    ])
    await send(lower, 'from the other tab')
    await waitForMessages(upper, 1)
    expect(await upper.getAttribute('#messages li', 'class')).toBe('mine')
    // Stored, as the tab that wrote it shows: delivered in both.
    expect(
      await upper.$eval('#messages li', (li) => li.querySelector('.tick')?.getAttribute('data-state')),
    ).toBe('delivered')
    await closeTabs([lower, other])
  })

  it('fits a phone and a desktop: no sideways scroll, rooms, people and the input in view', async () => {
    const layouts: Array<[string, BrowserContextOptions]> = [
      ['phone', { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true }],
      ['desktop', { viewport: { width: 1280, height: 800 } }],
    ]
    for (const [layout, options] of layouts) {
      // A name of its own for each: the other's messages, in the history, must not count as delivered here.
      const page = await join(
        `http://127.0.0.1:${suite.port}`,
        `a-rather-long-nickname-${layout[0]}`,
        options,
      )
      // Long words and many messages must neither widen the page nor push the input away.
      for (let i = 0; i < 4; i++) await send(page, `${i} ${'w'.repeat(120)} ${'and more words '.repeat(12)}`)
      await waitForDelivered(page, 4)
      const fit = await page.evaluate(() => {
        const inView = (selector: string) => {
          const box = document.querySelector(selector)?.getBoundingClientRect()
          return box !== undefined && box.width > 0 && box.top >= 0 && box.bottom <= innerHeight
        }
        return {
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth,
          scrollHeight: document.documentElement.scrollHeight,
          innerHeight,
          input: inView('#text'),
          send: inView('#composer button'),
          room: inView('#rooms [aria-current="true"]'),
          people: inView('#people li'),
          newRoom: inView('#room-name'),
        }
      })
      expect(fit.scrollWidth).toBeLessThanOrEqual(fit.innerWidth)
      expect(fit.scrollHeight).toBeLessThanOrEqual(fit.innerHeight)
      expect(fit).toMatchObject({ input: true, send: true, room: true, people: true, newRoom: true })
      await closeTabs(page)
    }
  })
})
