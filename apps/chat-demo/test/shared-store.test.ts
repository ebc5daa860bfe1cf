// The chat's rooms list and history on Redis, shared by the nodes of a cluster: a session that
// lands on another node (a deploy, a crash) finds the same rooms and the same history there,
// and they outlive the nodes. While Redis is away the chat says so and goes on with the rest.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'
import { RedisStore } from '../src/redis-store.js'
import {
  ChatErrorCode,
  type ChatReply,
  type ClientEvents,
  DEFAULT_ROOMS,
  type JoinReply,
  type ServerEvents,
} from '../src/shared.js'

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
    await admin.flushAll()
  })

  afterEach(async () => {
    redis.thaw()
    for (const c of clients.splice(0)) c.disconnect()
    for (const node of nodes.splice(0)) await stop(node)
  })

  /** A chat node on the test's Redis, listening on a free port. */
  async function node(name: string): Promise<(typeof nodes)[number]> {
    const cluster = await connectRedis(redis.url, { label: name })
    const app = await buildChatApp({ adapter: cluster.adapter, store: cluster.store })
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
    const end = Date.now() + 10_000
    while (
      !nodes.every((n) => (n.app.parley.adapter as RedisAdapter).liveNodes.length === nodes.length - 1)
    ) {
      if (Date.now() > end) throw new Error('the nodes did not see each other within 10 s')
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** A connected client named `nickname` of the node at `url`. */
  async function person(nickname: string, url: string): Promise<Client> {
    const socket = connect<ServerEvents, ClientEvents>(url, { auth: { nickname }, transports: ['polling'] })
    clients.push(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.on('connect_error', (error, willRetry) => {
        if (!willRetry) reject(error)
      })
    })
    return socket
  }

  const join = (socket: Client, room: string) =>
    new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))
  const say = (socket: Client, room: string, text: string) =>
    new Promise<ChatReply>((resolve) => socket.emit('chat', { room, text, key: text }, resolve))
  const texts = (reply: JoinReply) => (reply.ok ? reply.history.map((m) => m.text) : reply)

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

  it('refuses what needs the store with STORE_UNAVAILABLE while Redis does not answer, and still sends to the room one is in', async () => {
    const a = await node('a')
    const [ann, bob] = [await person('ann', a.url), await person('bob', a.url)]
    await join(ann, 'lobby')
    await join(bob, 'lobby')
    const heard = new Promise<string>((resolve) => bob.once('chat', (m) => resolve(m.text)))

    // Connected, and answering nothing: the worst case, as node-redis waits for an answer forever.
    redis.freeze()
    const started = Date.now()
    expect(await join(ann, 'elsewhere')).toEqual({
      ok: false,
      code: ChatErrorCode.STORE_UNAVAILABLE,
      error: expect.stringMatching(/cannot reach its rooms and history/),
    })
    expect(await say(ann, 'lobby', 'still here')).toMatchObject({ ok: true, id: expect.any(String) })
    expect(await heard).toBe('still here')
    expect(await say(ann, 'nowhere', 'lost')).toMatchObject({
      ok: false,
      code: ChatErrorCode.STORE_UNAVAILABLE,
    })
    // Each answer within the store's bound (2 s), not whenever Redis wakes up.
    expect(Date.now() - started).toBeLessThan(8000)

    redis.thaw()
    await expect
      .poll(() => join(ann, 'elsewhere').then((r) => r.ok), { timeout: 5000, interval: 200 })
      .toBe(true)
  })

  it('refuses at once while Redis is down, and goes on with an empty Redis that comes back', async () => {
    const a = await node('a')
    const ann = await person('ann', a.url)
    await join(ann, 'before')
    expect(await say(ann, 'before', 'gone with redis')).toMatchObject({ ok: true })

    await redis.stop()
    const started = Date.now()
    expect(await join(ann, 'lobby')).toMatchObject({ ok: false, code: ChatErrorCode.STORE_UNAVAILABLE })
    // Not connected: no wait for an answer at all.
    expect(Date.now() - started).toBeLessThan(1000)

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
    it('keeps the last messages of each room, forgets a room with its history, and finds the quietest', async () => {
      const store = new RedisStore(admin, { history: 3, rooms: DEFAULT_ROOMS.length + 2 })
      for (let i = 1; i <= 5; i++) await store.add({ room: 'lobby', from: 'ann', text: `m${i}`, at: i })
      expect((await store.history('lobby')).map((m) => m.text)).toEqual(['m3', 'm4', 'm5'])

      expect(await store.addRoom('old')).toBe(true)
      expect(await store.addRoom('new')).toBe(true)
      expect(await store.addRoom('more')).toBe(false)
      await store.touch('old')
      expect(await store.quietest()).toEqual(['new', 'old'])
      await store.add({ room: 'new', from: 'bob', text: 'hi', at: 1 }, 'k1')
      expect((await store.find('new', 'bob', 'k1'))?.text).toBe('hi')
      expect(await store.find('new', 'ann', 'k1')).toBeUndefined()

      const { version } = await store.rooms()
      expect(await store.removeRoom('new')).toBe(true)
      expect(await store.removeRoom('lobby')).toBe(false)
      expect(await store.history('new')).toEqual([])
      const after = await store.rooms()
      expect(after.rooms).toEqual([...DEFAULT_ROOMS, 'old'])
      expect(after.version).toBeGreaterThan(version)
      // A message to a room forgotten meanwhile (on another node) brings no history back.
      await store.add({ room: 'new', from: 'bob', text: 'late', at: 2 })
      expect(await store.history('new')).toEqual([])
    })
  })
})
