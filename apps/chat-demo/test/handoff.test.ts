// Requests under way while a session moves to another node (a drain), driven by the Parley client
// in Node: the node that takes the session over got it as it was before they were done, and
// finishes them. A join: that node lists the person where the page is, at once. A message: it is
// stored before what the page sent after it. And presence: someone whose session is between the
// nodes when the people list changes is listed again once a node takes the session over.
import { ErrorCode } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import type { ChatAppOptions } from '../src/app.js'
import type { ChatData } from '../src/chat.js'
import { Nicknames } from '../src/nicknames.js'
import type { ChatReply, HeardMessage, JoinReply } from '../src/shared.js'
import { StoreUnavailableError } from '../src/store.js'
import { type ChatNode, type Client, chatNodesSuite, liveNodes, peopleHeard } from './chat-nodes.js'
import { pauseNextAdd, pauseNextJoin } from './pausing-store.js'

describe.skipIf(skipRedisSuites())('a request under way while its session moves to another node', () => {
  const suite = chatNodesSuite()

  /**
   * Two chat nodes on the test's Redis, each seeing the other; `handoff`: node A's drain options.
   * By default its clients are told to come back within 0.3 s rather than Parley's 1 s: the
   * moves under test end sooner, and the drain's timeout (5 s) stays Parley's.
   */
  async function twoNodes(
    handoff: ChatAppOptions['handoff'] = { retrySpread: 300 },
    adopts = true,
  ): Promise<[ChatNode, ChatNode]> {
    const pair: [ChatNode, ChatNode] = [
      await suite.startNode('a', { handoff, adopts }),
      await suite.startNode('b'),
    ]
    await expect.poll(() => pair.every((n) => liveNodes(n) === 1), { timeout: 10_000 }).toBe(true)
    return pair
  }

  const person = suite.person

  /** Two nodes, Ona on node A and Pim on node B, both in #lobby; `at`: Ona's socket on a node. */
  async function onaAndPimInLobby() {
    const [a, b] = await twoNodes()
    const [ona, pim] = [await person('ona', a), await person('pim', b)]
    await join(ona, 'lobby')
    await join(pim, 'lobby')
    const at = (node: ChatNode) => node.app.parley.sockets.get(String(ona.id))
    return { a, b, ona, pim, at }
  }

  /** A join's reply, or the client's refusal (`code`: PARLEY_SESSION_MOVED when the move cut it off). */
  const join = (socket: Client, room: string) =>
    new Promise<JoinReply | { ok: false; code: string | undefined }>((resolve) =>
      socket
        .timeout(20_000)
        .emit('join', { room }, (error, reply) =>
          resolve(error ? { ok: false, code: (error as Error & { code?: string }).code } : reply),
        ),
    )
  /** A message's reply, or the client's refusal, as for `join`. */
  const say = (socket: Client, room: string, text: string) =>
    new Promise<ChatReply | { ok: false; code: string | undefined }>((resolve) =>
      socket
        .timeout(20_000)
        .emit('chat', { room, text, key: text }, (error, reply) =>
          resolve(error ? { ok: false, code: (error as Error & { code?: string }).code } : reply),
        ),
    )
  const people = async (socket: Client, room: string) => {
    const reply = await join(socket, room)
    return reply.ok ? reply.people : reply
  }

  it.each([
    ['answered by the draining node before the move', 'frozen'],
    ['answered PARLEY_SESSION_MOVED, the move done first', 'taken over'],
  ])(
    'lists someone whose join of a room was under way at the move in that room at once: a join %s',
    async (_, until) => {
      const [a, b] = await twoNodes()
      const [ona, pim, cy] = [await person('ona', a), await person('pim', b), await person('cy', b)]
      await join(ona, 'lobby')
      await join(pim, 'help')
      await join(cy, 'lobby')
      const heard = peopleHeard(pim, 'help')
      const at = (node: ChatNode) => node.app.parley.sockets.get(String(ona.id))
      // Node A drains once the join has read the history, and the join goes on once the session is
      // frozen and stored for the move (its transport closed) or, in the second case, taken over by
      // node B: what the join does from then on is not in the snapshot node B got.
      pauseNextJoin(a.cluster.store, 'help', async () => {
        void a.app.parley.drain()
        if (until === 'frozen')
          await expect.poll(() => at(a)?.transport, { timeout: 10_000, interval: 5 }).toBeNull()
        else await expect.poll(() => at(b), { timeout: 10_000, interval: 5 }).toBeDefined()
      })
      const reply = await join(ona, 'help')
      // The first case's answer is a race with the client's resume (after a random wait of up to 0.3 s).
      if (until === 'frozen') expect([true, ErrorCode.SESSION_MOVED]).toContain(reply.ok || reply.code)
      else expect(reply).toMatchObject({ ok: false, code: ErrorCode.SESSION_MOVED })
      await expect.poll(() => at(b), { timeout: 10_000 }).toBeDefined()

      // Without the client asking again, node B has Ona in #help, not in #lobby, and says so.
      await expect
        .poll(() => (at(b)?.data as Partial<ChatData> | undefined)?.room, { timeout: 5000 })
        .toBe('help')
      await expect.poll(() => heard.at(-1), { timeout: 5000 }).toEqual(['ona', 'pim'])
      expect(await people(pim, 'help')).toEqual(['ona', 'pim'])
      expect(await people(cy, 'lobby')).toEqual(['cy'])
      expect([...(at(b)?.rooms ?? [])].filter((r) => r === 'help' || r === 'lobby')).toEqual(['help'])
    },
    30_000,
  )

  it('logs a join under way at the move that fails on the node that took it over', async () => {
    const [a, b] = await twoNodes()
    const ona = await person('ona', a)
    await join(ona, 'lobby')
    const logged: string[] = []
    b.app.log.error = ((_: unknown, message?: string) =>
      void logged.push(String(message))) as typeof b.app.log.error
    // A failure of node B's own (not the store being away), which no handler awaits there.
    b.cluster.store.join = () => Promise.reject(new Error('the store broke'))
    const at = (node: ChatNode) => node.app.parley.sockets.get(String(ona.id))
    pauseNextJoin(a.cluster.store, 'help', async () => {
      void a.app.parley.drain()
      await expect.poll(() => at(b), { timeout: 10_000, interval: 5 }).toBeDefined()
    })
    await join(ona, 'help')
    await expect
      .poll(() => logged, { timeout: 5000 })
      .toEqual(['chat: a join taken over from another node failed'])
  }, 30_000)

  it('gives a session taken over by another node the nickname its resume asks for, and frees the old one', async () => {
    const [a, b] = await twoNodes()
    const names = { ona: 'ona' }
    const ona = await person('ona', a, {
      auth: () => ({ nickname: names.ona, visitor: 'onas-browser-0123456789' }),
    })
    const pim = await person('pim', b)
    await join(ona, 'lobby')
    await join(pim, 'lobby')
    const heard = peopleHeard(pim, 'lobby')
    names.ona = 'Ona B'
    void a.app.parley.drain()
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['Ona B', 'pim'])
    // On node B the session holds its new name alone: the old one is anyone's again.
    const taken = b.app.parley.sockets.get(String(ona.id))
    await expect
      .poll(() => [...(taken?.rooms ?? [])].filter((room) => room.startsWith('nickname')), { timeout: 5000 })
      .toEqual([Nicknames.roomOf('Ona B')])
    await person('ona', b, { auth: { nickname: 'ona', visitor: 'another-browser-0123' } })
  }, 30_000)

  it('stores a message under way at the move before the one sent after it, once each', async () => {
    const { a, b, ona, pim, at } = await onaAndPimInLobby()
    const heard: string[] = []
    pim.on('chat', (m) => heard.push(m.text))
    let second: ReturnType<typeof say> | undefined
    // The first message waits, not stored yet, while node A drains. The second is sent once the
    // session is frozen (node A reads nothing more): it goes to node B with the resume, and is
    // stored there before node A goes on with the first.
    pauseNextAdd(
      a.cluster.store,
      async () => {
        void a.app.parley.drain()
        await expect.poll(() => at(a)?.transport, { timeout: 10_000, interval: 5 }).toBeNull()
        second = say(ona, 'lobby', 'second')
        await expect.poll(() => at(b), { timeout: 10_000 }).toBeDefined()
        await expect.poll(() => heard, { timeout: 5000 }).toContain('second')
      },
      { before: true },
    )
    const first = await say(ona, 'lobby', 'first')
    // Cut off by the move, it goes again, as the page sends it: stored once all the same.
    if (!first.ok) {
      expect(first.code).toBe(ErrorCode.SESSION_MOVED)
      expect(await say(ona, 'lobby', 'first')).toMatchObject({ ok: true })
    }
    expect(await second).toMatchObject({ ok: true })
    await expect.poll(() => heard.length, { timeout: 10_000 }).toBe(2)
    expect(heard).toEqual(['first', 'second'])
    expect((await b.cluster.store.history('lobby')).map((m) => m.text)).toEqual(['first', 'second'])
  }, 30_000)

  it('sends a message taken over to the room when the old node stored it but never sent it', async () => {
    const { a, b, ona, pim, at } = await onaAndPimInLobby()
    const heard: string[] = []
    pim.on('chat', (m) => heard.push(m.id))
    // Stored on node A, whose store's answer is then lost (a node shutting down, a reply past the
    // store's bound): node A sends it to nobody, and the session moves meanwhile.
    pauseNextAdd(a.cluster.store, async () => {
      void a.app.parley.drain()
      await expect.poll(() => at(b), { timeout: 10_000, interval: 5 }).toBeDefined()
      throw new StoreUnavailableError('the answer was lost')
    })
    const first = await say(ona, 'lobby', 'stored, unsent')
    expect(first.ok).toBe(false)
    const history = async () =>
      (await b.cluster.store.history('lobby')).filter((m) => m.text === 'stored, unsent')
    const [stored] = await history()
    // Node B finished it: everyone in the room has it, once; asked again, it is the same message.
    await expect.poll(() => heard, { timeout: 5000 }).toEqual([stored?.id])
    expect(await say(ona, 'lobby', 'stored, unsent')).toEqual({ ok: true, id: stored?.id, seq: stored?.seq })
    expect(await history()).toHaveLength(1)
    expect(heard).toHaveLength(1)
  }, 30_000)

  it('marks the copy of a message that the node taking it over found stored, which a client may have had', async () => {
    const { a, b, ona, pim, at } = await onaAndPimInLobby()
    const heard: (HeardMessage & { resent?: true })[] = []
    pim.on('chat', (m) => heard.push(m))
    // Stored on node A, whose answer comes once the session has moved: node A sends it to the
    // room, and node B, which took the message over, finds it stored and sends it again.
    pauseNextAdd(a.cluster.store, async () => {
      void a.app.parley.drain()
      await expect.poll(() => at(b), { timeout: 10_000, interval: 5 }).toBeDefined()
    })
    const reply = await say(ona, 'lobby', 'once or twice')
    expect([true, ErrorCode.SESSION_MOVED]).toContain(reply.ok || reply.code)
    const stored = (await b.cluster.store.history('lobby')).find((m) => m.text === 'once or twice')
    await expect.poll(() => heard.filter((m) => m.resent).length, { timeout: 5000 }).toBe(1)
    // Every copy is the stored message; all but the first node's are marked, so a client that
    // keeps no ids can drop them.
    expect(heard.map(({ resent: _, ...m }) => m)).toEqual(heard.map(() => stored))
    expect(heard.filter((m) => !m.resent)).toHaveLength(heard.length - 1)
  }, 30_000)

  it('takes someone whose message moved them into its room at the move into that room', async () => {
    const [a, b] = await twoNodes()
    const [ona, pim] = [await person('ona', a), await person('pim', b)]
    await join(pim, 'help')
    const heard = peopleHeard(pim, 'help')
    const at = (node: ChatNode) => node.app.parley.sockets.get(String(ona.id))
    // Ona's message is for a room her session is not in (written offline, sent before the page
    // joins again): stored on node A, which is to take her into the room then, but the session
    // moves first; node B takes it over without that step.
    pauseNextAdd(a.cluster.store, async () => {
      void a.app.parley.drain()
      await expect.poll(() => at(b), { timeout: 10_000, interval: 5 }).toBeDefined()
    })
    // Answered by node A (it learns of the takeover a moment later) or PARLEY_SESSION_MOVED.
    const reply = await say(ona, 'help', 'hello from afar')
    expect([true, ErrorCode.SESSION_MOVED]).toContain(reply.ok || reply.code)
    // Without asking again, Ona is in #help on node B, listed there.
    await expect
      .poll(() => (at(b)?.data as Partial<ChatData> | undefined)?.room, { timeout: 5000 })
      .toBe('help')
    expect(at(b)?.rooms.has('help')).toBe(true)
    await expect.poll(() => heard.at(-1), { timeout: 5000 }).toEqual(['ona', 'pim'])
    expect((await b.cluster.store.history('help')).map((m) => m.text)).toEqual(['hello from afar'])
  }, 30_000)

  it('lists, once the move ends, someone whose session was between nodes at a change of presence', async () => {
    // Node A's drain waits for claims until its handoff timeout, which Pim's offline session
    // always reaches: 1.5 s instead of Parley's 5 s, and Ona (online) told to come back within
    // 0.3 s, well before it. A claim after the timeout (Pim's, or Ona's on a slow machine) finds
    // the session's tail sealed and takes it over all the same. Node A asks node B to adopt
    // nothing (its adapter without `askAdoption`): adopted, Pim's session would live on node B,
    // listed there, and never be between the nodes.
    const [a, b] = await twoNodes({ timeout: 1500, retrySpread: 300 }, false)
    // Pim reaches node A through a link that goes down: the drain hands the session off, and it
    // stays between the nodes until the link is up again.
    const port = Number(new URL(a.url).port)
    const link = await suite.proxy(port)
    // Pim's client tries again often, so as to be back soon once the link is up.
    const quick = { reconnectionDelay: 50, reconnectionDelayMax: 200 }
    const [ona, pim, cy] = [await person('ona', a), await person('pim', link, quick), await person('cy', b)]
    for (const socket of [ona, pim, cy]) await join(socket, 'lobby')
    const heard = peopleHeard(cy, 'lobby')
    // Pim's link is down through the drain (a laptop asleep): node A hands the session off, and
    // it waits, between the nodes, until Pim comes back; node A is replaced meanwhile (a deploy).
    link.offline = true
    await a.app.parley.drain()
    suite.nodes.splice(suite.nodes.indexOf(a), 1)
    await a.app.close()
    await a.cluster.close()
    await expect.poll(() => b.app.parley.sockets.get(String(ona.id)), { timeout: 10_000 }).toBeDefined()
    // Someone comes in meanwhile: the list the others get then cannot have Pim.
    const dee = await person('dee', b)
    expect(await people(dee, 'lobby')).toEqual(['cy', 'dee', 'ona'])
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['cy', 'dee', 'ona'])
    const c = await suite.startNode('c', { port })
    link.offline = false
    await expect.poll(() => c.app.parley.sockets.get(String(pim.id)), { timeout: 20_000 }).toBeDefined()
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['cy', 'dee', 'ona', 'pim'])
  }, 55_000)
})
