// The chat's rooms list and history on Redis, shared by the nodes of a cluster: a session that
// lands on another node (a deploy, a crash) finds the same rooms and the same history there,
// and they outlive the nodes. While Redis is away the chat says so and goes on with the rest.
import { EventEmitter, once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'
import { merged } from '../src/page/early-messages.js'
import { PeopleLists } from '../src/page/people-lists.js'
import { placeOf } from '../src/page/places.js'
import { RedisStore, type StoreClient } from '../src/redis-store.js'
import {
  ChatErrorCode,
  type ChatReply,
  type ClientEvents,
  DEFAULT_ROOMS,
  type HeardMessage,
  type JoinReply,
  Limits,
  type ServerEvents,
} from '../src/shared.js'
import { type Added, type ChatStore, type ChatStoreOptions, keyOf, MemoryStore } from '../src/store.js'
import { connected } from './connected.js'
import { pauseNextJoin } from './pausing-store.js'

type Client = Socket<ServerEvents, ClientEvents>

describe.skipIf(skipRedisSuites())('chat rooms and history shared on Redis', () => {
  let redis: RedisServer
  /** A client of the test's own, to look at and clear what the store wrote. */
  let admin: ReturnType<typeof createClient>
  const nodes: { app: FastifyInstance; cluster: ChatCluster; url: string }[] = []
  const clients: Client[] = []

  beforeAll(async () => {
    redis = await startRedis()
    admin = createClient({ url: redis.url })
    // A test stops Redis: this client reconnects by itself, and has nothing to say meanwhile.
    admin.on('error', () => {})
    await admin.connect()
  })

  afterAll(async () => {
    await admin?.close()
    await redis?.stop()
  })

  beforeEach(async () => {
    // After a test that restarted Redis, this client may still be on its way back (node-redis
    // retries at its own pace, up to 2 s apart): a store made on it refuses until it is ready.
    await expect.poll(() => admin.isReady, { timeout: 10_000, interval: 50 }).toBe(true)
    await admin.flushAll()
  })

  afterEach(async () => {
    redis.thaw()
    for (const c of clients.splice(0)) c.disconnect()
    // Their sessions end here first: the node has not read the clients' goodbyes yet, and a
    // node that closes with sessions alive drains them, waiting for each client to resume on
    // another node (seconds) for a client that is gone.
    for (const node of nodes) for (const socket of [...node.app.parley.sockets.values()]) socket.disconnect()
    for (const node of nodes.splice(0)) await stop(node)
  })

  /** A chat node on the test's Redis, listening on a free port; `clock`: the time it writes on messages. */
  async function node(name: string, clock?: () => number): Promise<(typeof nodes)[number]> {
    const cluster = await connectRedis(redis.url, { label: name })
    const app = await buildChatApp({
      adapter: cluster.adapter,
      store: cluster.store,
      ...(clock ? { clock } : {}),
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const started = {
      app,
      cluster,
      url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    }
    nodes.push(started)
    return started
  }

  async function stop(node: (typeof nodes)[number]): Promise<void> {
    nodes.splice(nodes.indexOf(node), 1)
    await node.app.close()
    await node.cluster.close()
  }

  /** Waits until every node sees the others, so that a broadcast reaches them all. */
  async function together(): Promise<void> {
    const end = performance.now() + 10_000
    while (
      !nodes.every((n) => (n.app.parley.adapter as RedisAdapter).liveNodes.length === nodes.length - 1)
    ) {
      if (performance.now() > end) throw new Error('the nodes did not see each other within 10 s')
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** A connected client named `nickname` of the node at `url` (a tab of browser `visitor`). */
  async function person(nickname: string, url: string, visitor?: string): Promise<Client> {
    const auth: Record<string, string> = visitor === undefined ? { nickname } : { nickname, visitor }
    const socket = connect<ServerEvents, ClientEvents>(url, { auth, transports: ['polling'] })
    clients.push(socket)
    return connected(socket)
  }

  const join = (socket: Client, room: string) =>
    new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))
  const say = (socket: Client, room: string, text: string) =>
    new Promise<ChatReply>((resolve) => socket.emit('chat', { room, text, key: text }, resolve))
  const texts = (reply: JoinReply) => (reply.ok ? reply.history.map((m) => m.text) : reply)

  /**
   * `joiner` joins #lobby through `node`, and `sender` (on another node) says `text` once that
   * join has read the history, before it goes on; a page on `node` has heard it by then
   * (`witness`: what it heard). The join's answer, and what the joiner heard meanwhile and after.
   */
  async function joinWhileSaid(
    node: (typeof nodes)[number],
    joiner: Client,
    sender: Client,
    witness: string[],
    text: string,
  ): Promise<{ reply: JoinReply; heard: HeardMessage[] }> {
    const heard: HeardMessage[] = []
    joiner.on('chat', (m) => heard.push(m))
    pauseNextJoin(node.cluster.store, 'lobby', async () => {
      expect(await say(sender, 'lobby', text)).toMatchObject({ ok: true })
      await expect.poll(() => witness).toContain(text)
    })
    return { reply: await join(joiner, 'lobby'), heard }
  }

  it('gives someone joining through another node the history written through the first, and the rooms made there', async () => {
    const [a, b] = [await node('a'), await node('b')]
    await together()
    const [ann, bob] = [await person('ann', a.url), await person('bob', b.url)]
    await join(bob, 'lobby')
    const told = new Promise<string[]>((resolve) => bob.once('rooms', (rooms) => resolve(rooms)))

    expect(await join(ann, 'plans')).toMatchObject({ ok: true, room: 'plans' })
    expect(await say(ann, 'plans', 'through a')).toMatchObject({ ok: true })
    expect(await say(ann, 'lobby', 'lobby too')).toMatchObject({ ok: true })

    // The room made on node A reaches a page on node B, with the rest of the list.
    expect(await told).toEqual([...DEFAULT_ROOMS, 'plans'])
    const there = await join(bob, 'plans')
    expect(there).toMatchObject({ ok: true, rooms: [...DEFAULT_ROOMS, 'plans'] })
    expect(texts(there)).toEqual(['through a'])
    expect(texts(await join(bob, 'lobby'))).toEqual(['lobby too'])
    // Both nodes answer with the same list, of the same version.
    const [fromA, fromB] = [await join(ann, 'plans'), await join(bob, 'plans')]
    expect(fromA.ok && [fromA.rooms, fromA.roomsVersion]).toEqual(
      fromB.ok && [fromB.rooms, fromB.roomsVersion],
    )
  })

  it('gives someone joining through one node the message sent through another while the join was under way, once', async () => {
    const [a, b] = [await node('a'), await node('b')]
    await together()
    const [ann, bob, cy] = [await person('ann', b.url), await person('bob', a.url), await person('cy', b.url)]
    await join(bob, 'lobby')
    await join(cy, 'lobby')
    const cyHeard: string[] = []
    cy.on('chat', (m) => cyHeard.push(m.text))
    expect(await say(bob, 'lobby', 'before')).toMatchObject({ ok: true })
    // The store's answer can come before node B has the broadcast from Redis: wait until a
    // page on node B heard it, or it may reach Ann once she is in the room (the page would
    // drop that copy by its id; this test counts what arrives).
    await expect.poll(() => cyHeard).toContain('before')
    // Stored through node A once Ann's join on node B has read the history, and passed on to
    // the people in the room on node B (Cy hears it) before that join goes on.
    const { reply, heard } = await joinWhileSaid(b, ann, bob, cyHeard, 'during')
    expect(await say(bob, 'lobby', 'after')).toMatchObject({ ok: true })
    await expect.poll(() => heard.map((m) => m.text), { timeout: 5000 }).toContain('after')
    expect(heard.map((m) => m.text)).toEqual(['during', 'after'])
    const history = reply.ok ? reply.history : []
    const drawn = [...history, ...heard.filter((m) => !history.some((h) => h.id === m.id))]
    expect(drawn.map((m) => m.text)).toEqual(['before', 'during', 'after'])
  })

  it("orders a room's messages as the store holds them, not by the clocks of the nodes that took them", async () => {
    // Node A's clock is an hour behind node B's: what it takes says it was written earlier.
    const [a, b] = [await node('a', () => Date.now() - 3_600_000), await node('b')]
    await together()
    const [ann, bob, cy] = [await person('ann', b.url), await person('bob', a.url), await person('cy', b.url)]
    await join(cy, 'lobby')
    const cyHeard: string[] = []
    cy.on('chat', (m) => cyHeard.push(m.text))
    // A full history, written through node B.
    for (let i = 0; i < Limits.history; i++) {
      await b.cluster.store.add({ room: 'lobby', from: 'dee', text: `h${i}`, at: Date.now() })
    }
    // Stored through node A once Ann's join on node B has read the history, and heard by her
    // before the answer: the page puts it where the store has it, after the whole history.
    const { reply, heard } = await joinWhileSaid(b, ann, bob, cyHeard, 'during')
    const history = reply.ok ? reply.history : []
    expect(history).toHaveLength(Limits.history)
    expect(heard.map((m) => m.text)).toEqual(['during'])
    expect(heard[0]?.at).toBeLessThan(history[0]?.at ?? 0)
    const drawn = merged(history, heard).map((m) => m.text)
    expect(drawn.slice(-2)).toEqual([`h${Limits.history - 1}`, 'during'])
    // And so does every node: later, the history ends with it.
    const again = await join(cy, 'lobby')
    expect(again.ok && again.history.at(-1)?.text).toBe('during')
  })

  it('keeps messages an older version stored without places where Redis has them, on the page too', async () => {
    const a = await node('a')
    const [ann, old, cy] = [await person('ann', a.url), await person('old', a.url), await person('cy', a.url)]
    // As a node of the chat before messages had places wrote them: no `seq` beside the message,
    // its key naming the id alone. The first before the upgrade; the second during a rolling
    // upgrade, by an old node, after a new node's message.
    const writtenByOld = async (id: string, text: string) => {
      const sent = keyOf('lobby', 'old', text)
      const message = { id, room: 'lobby', from: 'old', text, at: Date.now() }
      await admin.rPush('chat:history:lobby', JSON.stringify({ message, sent }))
      await admin.hSet('chat:keys:lobby', sent, id)
    }
    await writtenByOld('old-1', 'old 1')
    expect(await say(ann, 'lobby', 'new 1')).toMatchObject({ ok: true })
    await writtenByOld('old-2', 'old 2')
    expect(await say(ann, 'lobby', 'new 2')).toMatchObject({ ok: true })
    const stored = ['old 1', 'new 1', 'old 2', 'new 2']

    const reply = await join(cy, 'lobby')
    const history = reply.ok ? reply.history : []
    expect(history.map((m) => m.text)).toEqual(stored)
    // The page orders by place: the history as the server gave it, and what comes next after it.
    expect(merged(history, []).map((m) => m.text)).toEqual(stored)
    const next = await say(ann, 'lobby', 'new 3')
    expect(next.ok && placeOf(history.length, (i) => history[i]?.seq, next.seq ?? 0)).toBe(history.length)
    // A resend of one of them gets its place too: where the page that sent it then puts it.
    const [, newOne, oldTwo] = history
    expect(await say(old, 'lobby', 'old 2')).toEqual({ ok: true, id: 'old-2', seq: oldTwo?.seq })
    expect(oldTwo?.seq).toBe(newOne?.seq)
  })

  it('keeps the rooms and history while the node that wrote them restarts', async () => {
    const a = await node('a')
    const ann = await person('ann', a.url)
    await join(ann, 'notes')
    for (const text of ['one', 'two']) expect(await say(ann, 'notes', text)).toMatchObject({ ok: true })
    ann.disconnect()
    await stop(a)

    const again = await node('a again')
    const cy = await person('cy', again.url)
    const reply = await join(cy, 'notes')
    expect(reply).toMatchObject({ ok: true, rooms: [...DEFAULT_ROOMS, 'notes'] })
    expect(texts(reply)).toEqual(['one', 'two'])
    // Ids stay unique across the nodes that wrote them: a page drops a message whose id it shows.
    const before = reply.ok ? reply.history.map((m) => m.id) : []
    const next = await say(cy, 'notes', 'three')
    expect(next.ok && before.includes(next.id)).toBe(false)
  })

  it('refuses joins and messages with STORE_UNAVAILABLE while Redis does not answer, and takes the same message once it does', async () => {
    const a = await node('a')
    const [ann, bob] = [await person('ann', a.url), await person('bob', a.url)]
    await join(ann, 'lobby')
    await join(bob, 'lobby')
    const heard: string[] = []
    bob.on('chat', (m) => heard.push(m.text))

    // Connected, and answering nothing: the worst case, as node-redis waits for an answer forever.
    redis.freeze()
    const started = performance.now()
    expect(await join(ann, 'elsewhere')).toEqual({
      ok: false,
      code: ChatErrorCode.STORE_UNAVAILABLE,
      error: expect.stringMatching(/cannot reach its rooms and history/),
    })
    // Not sent unstored: the history would miss it, and a resend could not be recognised.
    expect(await say(ann, 'lobby', 'kept by the page')).toMatchObject({
      ok: false,
      code: ChatErrorCode.STORE_UNAVAILABLE,
    })
    // Each answer within the store's bound (2 s), not whenever Redis wakes up.
    expect(performance.now() - started).toBeLessThan(8000)

    redis.thaw()
    await expect
      .poll(() => join(ann, 'elsewhere').then((r) => r.ok), { timeout: 5000, interval: 200 })
      .toBe(true)
    await join(ann, 'lobby')
    // The page sends it again (same key), and again as if its answer had been lost: stored once,
    // heard once, answered with the same id.
    const first = await say(ann, 'lobby', 'kept by the page')
    expect(first).toMatchObject({ ok: true })
    expect(await say(ann, 'lobby', 'kept by the page')).toEqual(first)
    await expect.poll(() => heard).toEqual(['kept by the page'])
    expect(texts(await join(bob, 'lobby'))).toEqual(['kept by the page'])
    expect(heard).toEqual(['kept by the page'])
  })

  it('stores a resend that reaches two nodes once', async () => {
    const [a, b] = [await node('a'), await node('b')]
    await together()
    // Two tabs of one browser, each sending the same message (with its key) through a node.
    const visitor = 'one-browser-0123456789'
    const [ann, annAgain] = [await person('ann', a.url, visitor), await person('ann', b.url, visitor)]
    const cy = await person('cy', a.url)
    for (const socket of [ann, annAgain, cy]) await join(socket, 'lobby')
    const replies = await Promise.all([say(ann, 'lobby', 'once'), say(annAgain, 'lobby', 'once')])
    expect(replies[0]).toMatchObject({ ok: true })
    expect(replies[1]).toEqual(replies[0])
    expect(texts(await join(cy, 'lobby'))).toEqual(['once'])
  })

  /**
   * Holds the answer of `app`'s `nth` next `fetchSockets` of `room` (the people list it is making)
   * until `release()`; `reached` resolves once it is held. So one node's list of a room is made
   * before, and arrives after, another node's: two lists crossing, which real timing cannot be
   * made to do on cue.
   */
  function holdFetch(app: FastifyInstance, room: string, nth = 1) {
    const adapter = app.parley.adapter
    const fetch = adapter.fetchSockets.bind(adapter)
    const signals = new EventEmitter()
    let count = 0
    adapter.fetchSockets = async (options) => {
      const found = await fetch(options)
      if (options.rooms.has(room) && ++count === nth) {
        signals.emit('reached')
        await once(signals, 'release')
      }
      return found
    }
    return { reached: once(signals, 'reached'), release: () => signals.emit('release') }
  }

  /** What a page on `socket` shows as the people of `room` (`PeopleLists`), and every list it heard. */
  function page(socket: Client, room: string) {
    const seen = { lists: new PeopleLists(), shown: [] as string[], heard: [] as string[][] }
    socket.on('presence', (update) => {
      if (update.room !== room) return
      seen.heard.push(update.people)
      seen.shown = seen.lists.heard(room, update.people, update.version)
    })
    return seen
  }

  it("shows the newest people list when two nodes' lists of a room cross on their way", async () => {
    const [a, b] = [await node('a'), await node('b')]
    await together()
    const [ann, bob, cy] = [await person('ann', a.url), await person('bob', b.url), await person('cy', a.url)]
    const pages = [page(ann, 'lobby'), page(bob, 'lobby')]
    for (const socket of [ann, bob, cy]) expect(await join(socket, 'lobby')).toMatchObject({ ok: true })
    await expect
      .poll(() => pages.map((p) => p.shown))
      .toEqual([
        ['ann', 'bob', 'cy'],
        ['ann', 'bob', 'cy'],
      ])

    // Cy leaves through node A, whose list (without Cy) is held once made; Dee comes through
    // node B meanwhile, whose list (with Dee) reaches everyone first.
    const held = holdFetch(a.app, 'lobby')
    cy.disconnect()
    await held.reached
    const dee = await person('dee', b.url)
    expect(await join(dee, 'lobby')).toMatchObject({ ok: true })
    const now = ['ann', 'bob', 'dee']
    await expect.poll(() => pages.map((p) => p.shown)).toEqual([now, now])

    // Node A's older list arrives last, and is not shown.
    held.release()
    await expect
      .poll(() => pages.map((p) => p.heard.at(-1)))
      .toEqual([
        ['ann', 'bob'],
        ['ann', 'bob'],
      ])
    expect(pages.map((p) => p.shown)).toEqual([now, now])
  })

  it("keeps a newer people list heard while joining over the older one the join's answer carries", async () => {
    const [a, b] = [await node('a'), await node('b')]
    await together()
    const ann = await person('ann', b.url)
    expect(await join(ann, 'lobby')).toMatchObject({ ok: true })
    const dee = await person('dee', a.url)
    const seen = page(dee, 'lobby')
    // Node A's second list of the lobby in Dee's join is its answer's (the first, the one it
    // sends the room): held once made, while Eve comes through node B.
    const held = holdFetch(a.app, 'lobby', 2)
    const answer = join(dee, 'lobby')
    await held.reached
    const eve = await person('eve', b.url)
    expect(await join(eve, 'lobby')).toMatchObject({ ok: true })
    await expect.poll(() => seen.shown).toEqual(['ann', 'dee', 'eve'])

    held.release()
    const reply = await answer
    if (!reply.ok) throw new Error(reply.error)
    expect(reply.people).toEqual(['ann', 'dee'])
    expect(seen.lists.heard(reply.room, reply.people, reply.peopleVersion)).toEqual(['ann', 'dee', 'eve'])
  })

  /**
   * A chat on the test's Redis whose store counts the commands it sends (each one a round trip:
   * the store sends none together), with `run` given a client of it.
   */
  async function counting(run: (url: string, counted: { commands: number }) => Promise<void>): Promise<void> {
    const counted = { commands: 0 }
    const client: StoreClient = {
      get isReady() {
        return admin.isReady
      },
      sendCommand(args) {
        counted.commands++
        return admin.sendCommand(args)
      },
    }
    const app = await buildChatApp({ store: new RedisStore(client) })
    await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      await run(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, counted)
    } finally {
      for (const c of clients.splice(0)) c.disconnect()
      await app.close()
    }
  }

  it('makes one round trip to Redis per message, duplicate check included', async () => {
    await counting(async (url, counted) => {
      const ann = await person('ann', url)
      await join(ann, 'plans')
      counted.commands = 0
      expect(await say(ann, 'plans', 'one trip')).toMatchObject({ ok: true })
      expect(counted.commands).toBe(1)
    })
  })

  it('makes one round trip to Redis per join of a room that is there, and one per people list it sends', async () => {
    await counting(async (url, counted) => {
      const [ann, bob] = [await person('ann', url), await person('bob', url)]
      await join(ann, 'plans')
      expect(await say(ann, 'plans', 'before bob')).toMatchObject({ ok: true })
      counted.commands = 0
      const reply = await join(bob, 'plans')
      expect(reply).toMatchObject({ ok: true, room: 'plans', rooms: [...DEFAULT_ROOMS, 'plans'] })
      expect(texts(reply)).toEqual(['before bob'])
      // The join (history, rooms list and the version of the answer's people list), and the
      // version of the list the room gets.
      expect(counted.commands).toBe(2)
      counted.commands = 0
      expect(texts(await join(bob, 'lobby'))).toEqual([])
      // The join, and the lists of the room left and of the room joined.
      expect(counted.commands).toBe(3)
    })
  })

  it('refuses at once while Redis is down, and goes on with an empty Redis that comes back', async () => {
    const a = await node('a')
    const ann = await person('ann', a.url)
    await join(ann, 'before')
    expect(await say(ann, 'before', 'gone with redis')).toMatchObject({ ok: true })

    await redis.stop()
    const started = performance.now()
    expect(await join(ann, 'lobby')).toMatchObject({ ok: false, code: ChatErrorCode.STORE_UNAVAILABLE })
    // Not connected: no wait for an answer at all.
    expect(performance.now() - started).toBeLessThan(1000)

    // Restarted without its data: the default rooms are there all the same, the rest is gone.
    await redis.restart()
    await expect
      .poll(() => join(ann, 'lobby').then((r) => r.ok), { timeout: 10_000, interval: 200 })
      .toBe(true)
    const reply = await join(ann, 'before')
    expect(reply).toMatchObject({ ok: true, rooms: [...DEFAULT_ROOMS, 'before'] })
    expect(texts(reply)).toEqual([])
  })

  describe('RedisStore', () => {
    it('gives the people lists of a room versions that grow across stores, and none given before after Redis forgot them', async () => {
      const [one, two] = [new RedisStore(admin), new RedisStore(admin)]
      // Redis' clock, in microseconds (this machine's).
      const before = Date.now() * 1000
      const first = await one.peopleVersion('lobby')
      expect(first).toBeGreaterThanOrEqual(before)
      const joined = await two.join('lobby')
      expect(joined?.peopleVersion).toBeGreaterThan(first)
      const third = await one.peopleVersion('lobby')
      expect(third).toBeGreaterThan(joined?.peopleVersion ?? Number.POSITIVE_INFINITY)
      // Many lists of a room at once (a drain brings its sessions over together), all within a
      // millisecond: each one more than the last, and none past Redis' clock.
      const burst = await Promise.all(Array.from({ length: 50 }, () => two.peopleVersion('lobby')))
      expect(Math.min(...burst)).toBeGreaterThan(third)
      expect(new Set(burst).size).toBe(burst.length)
      // Forgotten (expired, or Redis lost its data): on from Redis' clock, past every version given, at once.
      await admin.flushAll()
      expect(await one.peopleVersion('lobby')).toBeGreaterThan(Math.max(...burst))
    })

    it('keeps the last messages of each room, forgets a room with its history, and finds the quietest', async () => {
      const store = new RedisStore(admin, { history: 3, rooms: DEFAULT_ROOMS.length + 2 })
      for (let i = 1; i <= 5; i++) await store.add({ room: 'lobby', from: 'ann', text: `m${i}`, at: i })
      expect((await store.history('lobby')).map((m) => m.text)).toEqual(['m3', 'm4', 'm5'])

      expect(await store.addRoom('old')).toBe(true)
      expect(await store.addRoom('new')).toBe(true)
      expect(await store.addRoom('more')).toBe(false)
      // A join is a use: the room joined last is the last to go.
      expect(await store.join('old')).toEqual({
        history: [],
        list: await store.rooms(),
        peopleVersion: expect.any(Number),
      })
      expect(await store.quietest()).toEqual(['new', 'old'])
      expect(await store.join('never-made')).toBeUndefined()
      const hi = await store.add({ room: 'new', from: 'bob', text: 'hi', at: 1 }, 'k1')
      expect(hi).toMatchObject({ stored: { text: 'hi' } })
      expect(await store.find('new', 'bob', 'k1')).toEqual(
        'stored' in hi && { id: hi.stored.id, seq: hi.stored.seq },
      )
      expect(await store.find('new', 'ann', 'k1')).toBeUndefined()

      const { version } = await store.rooms()
      expect(await store.removeRoom('new')).toBe(true)
      expect(await store.removeRoom('lobby')).toBe(false)
      expect(await store.history('new')).toEqual([])
      // Nor are the keys of its history's messages kept (those of the resend window expire).
      expect(await admin.exists('chat:keys:new')).toBe(0)
      const after = await store.rooms()
      expect(after.rooms).toEqual([...DEFAULT_ROOMS, 'old'])
      expect(after.version).toBeGreaterThan(version)
      // A message to a room forgotten meanwhile (on another node) brings no history back.
      expect(await store.add({ room: 'new', from: 'bob', text: 'late', at: 2 })).toEqual({ noRoom: true })
      expect(await store.history('new')).toEqual([])
    })

    it('recognises a resend within the resend window, also of a message older than the history keeps', async () => {
      const store = new RedisStore(admin, { history: 3 })
      const first = await store.add({ room: 'lobby', from: 'ann', text: 'first', at: 1 }, 'k1')
      for (let i = 2; i <= 5; i++)
        await store.add({ room: 'lobby', from: 'bob', text: `m${i}`, at: i }, `k${i}`)
      expect((await store.history('lobby')).map((m) => m.text)).toEqual(['m3', 'm4', 'm5'])

      // The first one's id: its place left the history with it (the sender's page leaves it be).
      expect(await store.add({ room: 'lobby', from: 'ann', text: 'first', at: 6 }, 'k1')).toEqual({
        twin: 'stored' in first && { id: first.stored.id },
      })
      expect((await store.history('lobby')).map((m) => m.text)).toEqual(['m3', 'm4', 'm5'])
      // The key is the sender's own: the same key from someone else is another message.
      expect(await store.add({ room: 'lobby', from: 'cy', text: 'mine', at: 7 }, 'k1')).toMatchObject({
        stored: { text: 'mine' },
      })
    })

    it('recognises a resend of a message still in the history after the resend window, and forgets it once it left', async () => {
      await resendKeptWhileInHistory((options) => new RedisStore(admin, options))
    })

    it('stores a resend under the id of the first one after Redis lost it', async () => {
      await sameIdWhenForgotten(async () => {
        await admin.flushAll()
        return new RedisStore(admin)
      })
    })
  })

  describe('MemoryStore', () => {
    it('recognises a resend within the resend window, also of a message older than the history keeps', async () => {
      const store = new MemoryStore({ history: 3 })
      const first = await store.add({ room: 'lobby', from: 'ann', text: 'first', at: 1 }, 'k1')
      for (let i = 2; i <= 5; i++)
        await store.add({ room: 'lobby', from: 'bob', text: `m${i}`, at: i }, `k${i}`)
      // The first one's id and place, for the sender's page to put it where the others' do.
      expect(await store.add({ room: 'lobby', from: 'ann', text: 'first', at: 6 }, 'k1')).toEqual({
        twin: 'stored' in first && { id: first.stored.id, seq: first.stored.seq },
      })
      expect((await store.history('lobby')).map((m) => m.text)).toEqual(['m3', 'm4', 'm5'])
      expect(await store.add({ room: 'nowhere', from: 'ann', text: 'x', at: 7 })).toEqual({ noRoom: true })
    })

    it('recognises a resend of a message still in the history after the resend window, and forgets it once it left', async () => {
      await resendKeptWhileInHistory((options) => new MemoryStore(options))
    })

    it('stores a resend under the id of the first one in a new store (a restart)', async () => {
      await sameIdWhenForgotten(async () => new MemoryStore())
    })
  })
})

/**
 * A page asleep with an unacknowledged message wakes past the resend window and sends it again:
 * while the message is in the history it is the same message, whenever it comes back.
 */
async function resendKeptWhileInHistory(make: (options: ChatStoreOptions) => ChatStore): Promise<void> {
  const store = make({ history: 2, resendWindow: 50 })
  const first = await store.add({ room: 'lobby', from: 'ann', text: 'asleep', at: 1 }, 'k1')
  const found = 'stored' in first && { id: first.stored.id, seq: first.stored.seq }
  // Stored after it with the same window, then out of the history: once a resend of this one is
  // new, the window of the first has passed too (no wait of a guessed length).
  await store.add({ room: 'help', from: 'bob', text: 'gone', at: 2 }, 'k2')
  for (const text of ['b1', 'b2']) await store.add({ room: 'help', from: 'bob', text, at: 3 }, text)
  await expect.poll(() => store.find('help', 'bob', 'k2'), { timeout: 5000, interval: 20 }).toBeUndefined()

  expect(await store.add({ room: 'lobby', from: 'ann', text: 'asleep', at: 4 }, 'k1')).toEqual({
    twin: found,
  })
  expect(await store.find('lobby', 'ann', 'k1')).toEqual(found)
  expect((await store.history('lobby')).map((m) => m.text)).toEqual(['asleep'])

  // Out of the history and past the window, the key is forgotten (it is not kept for ever).
  for (const text of ['c1', 'c2']) await store.add({ room: 'lobby', from: 'cy', text, at: 5 }, text)
  expect(await store.find('lobby', 'ann', 'k1')).toBeUndefined()
}

/**
 * A store that forgot a message (a new process, or Redis that lost its data) stores its resend
 * as new, but under the first one's id: the pages that showed the first drop it. `fresh`: an
 * empty store.
 */
async function sameIdWhenForgotten(fresh: () => Promise<ChatStore>): Promise<void> {
  const draft = { room: 'lobby', from: 'ann', text: 'once', at: 1 }
  const idOf = (added: Added) => ('stored' in added ? added.stored.id : undefined)
  const first = idOf(await (await fresh()).add(draft, 'k1'))
  const again = await fresh()
  expect(first).toEqual(expect.any(String))
  expect(idOf(await again.add(draft, 'k1'))).toBe(first)
  // Another key, sender or room is another message; so is one without a key.
  const others = [
    await again.add(draft, 'k2'),
    await again.add({ ...draft, from: 'bob' }, 'k1'),
    await again.add({ ...draft, room: 'help' }, 'k1'),
    await again.add(draft),
    await again.add(draft),
  ].map(idOf)
  expect(new Set([first, ...others]).size).toBe(6)
}
