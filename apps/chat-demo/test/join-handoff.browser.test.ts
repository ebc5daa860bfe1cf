// A join still under way when its node drains and hands the session to another node: the page
// and the node that has the session now end up in the same room, whether the draining node
// answered the join before the move (from a snapshot taken before the join was done) or not.
// And a message whose answer the move cut off (PARLEY_SESSION_MOVED), or that the draining node
// refused once its store's answer was lost: stored once, delivered, with no word of the store;
// nor any for a join the draining node refused for want of its store.
import type { Browser, Page, WebSocket } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type Nginx, skipNginxSuites } from '../../../test/support/nginx.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import type { ChatData } from '../src/chat.js'
import { ROOM_PATTERN } from '../src/shared.js'
import { StoreUnavailableError } from '../src/store.js'
import { type ChatClusterRun, type ChatNode, startChatCluster } from './chat-cluster.js'
import { pauseNextAdd, pauseNextJoin } from './pausing-store.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites(), skipNginxSuites()]

describe.skipIf(skips.some(Boolean))('a request under way while its session moves to another node', () => {
  let run: ChatClusterRun | undefined
  let browser: Browser
  let nginx: Nginx
  let nodes: ChatNode[]

  // One node drains in each test; the last needs two that have not. How the pages' returns are
  // spread is no concern here: within 100 ms rather than the default 1000, which each drain
  // would wait up to at random.
  beforeAll(async () => {
    run = await startChatCluster(7, { handoff: { retrySpread: 100 } })
    ;({ browser, nginx, nodes } = run)
  }, 60_000)

  afterAll(() => run?.stop())

  /**
   * A page in a context of its own, through nginx (or `base`) on WebSocket, in as `nickname`; its
   * WebSockets.
   */
  async function openPage(
    nickname: string,
    base?: string,
  ): Promise<{ page: Page; connections: WebSocket[] }> {
    const page = await (await openContext(browser)).newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    const connections: WebSocket[] = []
    page.on('websocket', (ws) => connections.push(ws))
    await page.goto(`${base ?? nginx.url}/?transports=websocket`)
    await page.fill('#nickname', nickname)
    await page.click('#join button')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
      timeout: 10_000,
    })
    return { page, connections }
  }

  /** The socket of `nickname` on `node`, if the node has it. */
  const socketOf = (nickname: string, node: ChatNode) =>
    [...node.app.parley.sockets.values()].find((s) => (s.data as Partial<ChatData>).nickname === nickname)

  /**
   * A page in as `nickname` (see `openPage`), the node that holds its session, `at` (its socket on
   * a node, if there), and `drainUntilFrozen`: drains that node and resolves once the node closed
   * the page's WebSocket, the session frozen and stored for the move.
   */
  async function pageOnItsNode(nickname: string) {
    const at = (node: ChatNode) => socketOf(nickname, node)
    const { page, connections } = await openPage(nickname)
    const owner = nodes.find((n) => at(n) !== undefined && n.app.server.listening)
    if (!owner) throw new Error('no node holds the session')
    const drainUntilFrozen = async () => {
      const connection = connections.at(-1)
      void owner.app.parley.drain()
      await expect.poll(() => connection?.isClosed(), { timeout: 10_000, interval: 10 }).toBe(true)
    }
    return { page, owner, at, drainUntilFrozen }
  }

  /** Sends `text` from the page, and waits until its tick says delivered (its only message). */
  async function sendUntilDelivered(page: Page, text: string): Promise<void> {
    await page.fill('#text', text)
    await page.click('#composer button')
    await page.waitForFunction(
      () => document.querySelector('#messages .tick')?.getAttribute('data-state') === 'delivered',
      null,
      { timeout: 20_000 },
    )
  }

  /** Records what the page's banner says, every time it changes (see `bannerSaid`). */
  const recordBanner = (page: Page) =>
    page.evaluate(() => {
      const said: string[] = []
      Object.assign(window, { said })
      const banner = document.querySelector('#banner') as HTMLElement
      new MutationObserver(() => said.push(banner.hidden ? '' : (banner.textContent ?? ''))).observe(banner, {
        attributes: true,
        childList: true,
        characterData: true,
        subtree: true,
      })
    })
  const bannerSaid = async (page: Page) =>
    (await page.evaluate(() => (window as unknown as { said?: string[] }).said)) ?? []

  it.each([
    ['ona', 'answered by the draining node before the move'],
    ['oto', 'answered PARLEY_SESSION_MOVED, the move done first'],
  ])(
    'leaves the page of %s and the node that took its session over in the room the page shows: a join %s',
    async (nickname, how) => {
      const at = (node: ChatNode) => socketOf(nickname, node)
      const { page, connections } = await openPage(nickname)
      const owner = nodes.find((n) => at(n) !== undefined)
      if (!owner) throw new Error('no node holds the session')
      // The node drains once the join has read the history, and the join goes on once the session
      // is frozen for the move: what the join does from then on is not in what the other node gets.
      pauseNextJoin(owner.cluster.store, 'help', async () => {
        const connection = connections.at(-1)
        void owner.app.parley.drain()
        // The node closes the page's WebSocket once the session is frozen and stored for the move.
        await expect.poll(() => connection?.isClosed(), { timeout: 10_000, interval: 10 }).toBe(true)
        if (how.startsWith('answered by')) return
        // Until another node took the session over: the join is answered from there.
        await expect
          .poll(() => nodes.find((n) => n !== owner && at(n)), { timeout: 10_000, interval: 10 })
          .toBeDefined()
      })
      await page.click('#rooms [data-room="help"]')
      await page.waitForFunction(
        () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# help',
        null,
        { timeout: 20_000 },
      )
      // The node that has the session now has it in #help alone, and lists it there.
      await expect
        .poll(
          () => {
            const other = nodes.find((n) => n !== owner && at(n))
            const socket = other && at(other)
            const rooms = [...(socket?.rooms ?? [])].filter((r) => ROOM_PATTERN.test(r))
            return socket && [(socket.data as Partial<ChatData>).room, rooms]
          },
          { timeout: 20_000, interval: 100 },
        )
        .toEqual(['help', ['help']])
      await page.waitForFunction(
        (name) => document.querySelector('#people li')?.textContent === name,
        nickname,
        { timeout: 10_000 },
      )
      expect(await page.textContent('#error')).toBe('')
      await closeTabs(page)
    },
    60_000,
  )

  it('delivers a message whose answer its node could not give before the move, stored once', async () => {
    const { page, owner, at } = await pageOnItsNode('mia')
    // The message is stored; its answer waits until another node took the session over, so the
    // draining node answers PARLEY_SESSION_MOVED in its place.
    pauseNextAdd(owner.cluster.store, async () => {
      void owner.app.parley.drain()
      await expect
        .poll(() => nodes.find((n) => n !== owner && at(n)), { timeout: 10_000, interval: 10 })
        .toBeDefined()
    })
    await sendUntilDelivered(page, 'across the move')
    const history = await owner.cluster.store.history('lobby')
    expect(history.filter((m) => m.text === 'across the move')).toHaveLength(1)
    expect(await page.textContent('#error')).toBe('')
    await closeTabs(page)
  }, 60_000)

  it('shows delivered, never waiting for the store, a message its draining node stored and then could not answer', async () => {
    const { page, owner, drainUntilFrozen } = await pageOnItsNode('zoe')
    await recordBanner(page)
    // Stored; then the store's answer is lost once the session is frozen for the move: the
    // draining node refuses it (STORE_UNAVAILABLE), and its answer reaches the page through the
    // node that takes the session over, which has found the message stored and sent it.
    pauseNextAdd(owner.cluster.store, async () => {
      await drainUntilFrozen()
      throw new StoreUnavailableError('the answer was lost')
    })
    await sendUntilDelivered(page, 'stored, answer lost')
    expect((await bannerSaid(page)).filter((text) => /unavailable/.test(text))).toEqual([])
    const history = await owner.cluster.store.history('lobby')
    expect(history.filter((m) => m.text === 'stored, answer lost')).toHaveLength(1)
    await closeTabs(page)
  }, 60_000)

  it('shows the room, never waiting for the store, when the draining node refused the join for want of it', async () => {
    const { page, owner, drainUntilFrozen } = await pageOnItsNode('ike')
    await recordBanner(page)
    // The draining node cannot reach its store once the session is frozen, and refuses the join;
    // the node that takes the session over finishes it with its own.
    pauseNextJoin(owner.cluster.store, 'help', async () => {
      await drainUntilFrozen()
      throw new StoreUnavailableError('the store went away')
    })
    await page.click('#rooms [data-room="help"]')
    await page.waitForFunction(
      () => document.querySelector('#rooms [aria-current="true"]')?.textContent === '# help',
      null,
      { timeout: 20_000 },
    )
    expect((await bannerSaid(page)).filter((text) => /unavailable/.test(text))).toEqual([])
    expect(await page.textContent('#error')).toBe('')
    await closeTabs(page)
  }, 60_000)

  it("redraws nobody's people list when a session moves to another node and its room is told again", async () => {
    // Ann's node drains; Bea is on another one, which does not (straight to it, not through nginx).
    const ann = await pageOnItsNode('ann')
    const stays = nodes.find((n) => n !== ann.owner && !n.app.parley.closing)
    if (!stays) throw new Error('no node left that has not drained')
    const bea = await openPage('bea', `http://127.0.0.1:${stays.port}`)
    const pages = [bea.page, ann.page]
    for (const page of pages)
      await page.waitForFunction(() => document.querySelectorAll('#people li').length === 2, null, {
        timeout: 10_000,
      })
    // Every time a page draws its people list from now on, and every list Bea hears.
    for (const page of pages)
      await page.evaluate(() => {
        const drawn: string[][] = []
        Object.assign(window, { drawn })
        const people = document.querySelector('#people') as HTMLElement
        new MutationObserver(() =>
          drawn.push(Array.from(people.children, (item) => item.textContent ?? '')),
        ).observe(people, { childList: true })
      })
    let lists = 0
    bea.connections.at(-1)?.on('framereceived', ({ payload }) => {
      if (String(payload).includes('"presence"')) lists++
    })
    await ann.drainUntilFrozen()
    // The node that took Ann's session over tells the room who is there: the same two people.
    await expect.poll(() => lists, { timeout: 20_000, interval: 50 }).toBeGreaterThan(0)
    const owner = ann.owner
    await expect.poll(() => nodes.find((n) => n !== owner && ann.at(n)), { timeout: 10_000 }).toBeDefined()
    for (const page of pages) {
      expect(await page.evaluate(() => (window as unknown as { drawn: string[][] }).drawn)).toEqual([])
      expect(await page.$$eval('#people li', (items) => items.map((i) => i.textContent))).toEqual([
        'ann',
        'bea',
      ])
    }
    await closeTabs(pages)
  }, 60_000)
})
