// An adapter whose `addAll` and `del` are asynchronous (an application's own, over a network):
// a join still under way when the session ends must not put the ended socket's id into its rooms
// after the session left them (the test adapter's joins take `joinDelayMs`, cluster-adapter.ts);
// and one socket's joins and leaves take effect in the order they were made, whatever order the
// adapter answers them in (gated-adapter.ts): `void socket.join('a'); socket.leave('a')` leaves
// the socket out of 'a'. `socketsJoin` and `socketsLeave` reach a socket of this node in turn
// after its own joins and leaves still under way.
import { connect, type Socket } from '@parley/client'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { Cluster } from './cluster-adapter.js'
import { GatedAdapter } from './gated-adapter.js'
import { type Started, startServer, until } from './helpers.js'

const JOIN_MS = 200

const opened = closedAfterEach()

/** One node on the test adapter, its joins slow; `setup` adds the application's listeners. */
async function slowNode(setup: (app: Started['app']) => void) {
  const cluster = new Cluster()
  cluster.joinDelayMs = JOIN_MS
  opened.started = await startServer({ adapter: cluster.adapter('a') }, setup)
  const adapter = cluster.nodes.get('a')!
  /** Resolves once `count` slow joins of `id` are done. */
  const joinsDone = (id: string, count: number) =>
    until(() => cluster.slowJoins.filter((done) => done === id).length === count, 5000, `joins of ${id}`)
  return { adapter, joinsDone }
}

function client(): Socket {
  const c = connect(opened.started!.base, { transports: ['websocket'], reconnection: false })
  opened.parleyClients.push(c)
  return c
}

describe('a join still under way when the session ends', () => {
  it('is left once done, when the application disconnects the socket at once', async () => {
    const ids: string[] = []
    const { adapter, joinsDone } = await slowNode((app) => {
      app.parley.on('connection', (socket) => {
        ids.push(socket.id)
        void socket.join('room')
        socket.disconnect()
      })
    })
    client()
    await until(() => ids.length === 1, 5000, 'connection')
    const id = ids[0]!
    // Its own room at the handshake, then 'room', which lands after the session ended.
    await joinsDone(id, 2)
    expect(adapter.memory.socketRooms(id)).toBeUndefined()
    expect(await opened.started!.app.parley.in('room').fetchSockets()).toEqual([])
  })

  it('is left once done, when the client leaves at once', async () => {
    const ids: string[] = []
    const { adapter, joinsDone } = await slowNode((app) => {
      app.parley.on('connection', (socket) => {
        ids.push(socket.id)
        void socket.join(['room', 'other'])
      })
    })
    const c = client()
    await until(() => c.connected, 5000, 'connect')
    c.disconnect()
    await until(() => opened.started!.app.parley.socketsCount === 0, 5000, 'the session ended')
    const id = ids[0]!
    await joinsDone(id, 2)
    expect(adapter.memory.socketRooms(id)).toBeUndefined()
  })

  it('is left once done, when a middleware joins and then refuses the socket', async () => {
    const ids: string[] = []
    const { adapter, joinsDone } = await slowNode((app) => {
      app.parley.use(async (socket) => {
        ids.push(socket.id)
        void socket.join('room')
        throw Object.assign(new Error('not you'), { code: 'NOT_YOU' })
      })
    })
    const c = client()
    const refused = new Promise((resolve) => c.on('connect_error', resolve))
    await refused
    const id = ids[0]!
    await joinsDone(id, 1)
    expect(adapter.memory.socketRooms(id)).toBeUndefined()
  })
})

/** A server on the gated adapter, `count` opened.parleyClients connected to it, and the `news` the first gets. */
async function connected(count = 1) {
  let adapter: GatedAdapter | undefined
  const sockets: ServerSocket[] = []
  opened.started = await startServer({ adapter: (local) => (adapter = new GatedAdapter(local)) }, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
    })
  })
  const news: unknown[] = []
  client().on('news', (text: unknown) => news.push(text))
  await until(() => sockets.length === 1, 5000, 'connection')
  for (let k = 1; k < count; k++) client()
  await until(() => sockets.length === count, 5000, 'connections')
  return { adapter: adapter!, socket: sockets[0]!, sockets, parley: opened.started.app.parley, news }
}

describe("one socket's joins and leaves, on an adapter that answers later", () => {
  it('leave a room joined just before, whichever answer comes first', async () => {
    const { adapter, socket, parley, news } = await connected()
    void socket.join('a')
    void socket.leave('a')
    await adapter.answerNewestFirst()
    expect(adapter.calls).toEqual(['join a', 'leave a'])
    expect([...socket.rooms]).toEqual([socket.id])
    // The client's end: a broadcast to 'a' does not reach it.
    parley.to('a').emit('news', 'to a')
    parley.to(socket.id).emit('news', 'to the socket')
    await until(() => news.includes('to the socket'), 5000, 'the broadcast to the socket')
    expect(news).toEqual(['to the socket'])
  })

  it('join a room left just before, whichever answer comes first', async () => {
    const { adapter, socket, parley, news } = await connected()
    const joined = socket.join('a')
    await adapter.answerNewestFirst()
    await joined
    void socket.leave('a')
    void socket.join('a')
    await adapter.answerNewestFirst()
    expect(adapter.calls).toEqual(['join a', 'leave a', 'join a'])
    expect(socket.rooms.has('a')).toBe(true)
    parley.to('a').emit('news', 'to a')
    await until(() => news.length === 1, 5000, 'the broadcast to a')
    expect(news).toEqual(['to a'])
  })

  it('reach the adapter one at a time, in the order they were made', async () => {
    const { adapter, socket } = await connected()
    void socket.join('a')
    void socket.leave('a')
    void socket.join(['b', 'c'])
    expect(adapter.heldNames).toEqual(['join a'])
    adapter.held[0]!.pass()
    await until(() => adapter.heldNames[0] === 'leave a', 5000, 'the leave')
    adapter.held[0]!.pass()
    await until(() => adapter.heldNames[0] === 'join b,c', 5000, 'the second join')
    expect(adapter.heldNames).toEqual(['join b,c'])
    adapter.held[0]!.pass()
    await until(() => socket.rooms.size === 3, 5000, 'rooms b and c')
    expect([...socket.rooms].sort()).toEqual([socket.id, 'b', 'c'].sort())
  })

  it('go on after one that failed, which rejects for its caller', async () => {
    const { adapter, socket } = await connected()
    const first = socket.join('a')
    const second = socket.join('b')
    expect(adapter.heldNames).toEqual(['join a'])
    adapter.held[0]!.fail(new Error('the store is away'))
    await expect(first).rejects.toThrow('the store is away')
    await until(() => adapter.heldNames[0] === 'join b', 5000, 'the second join')
    adapter.held[0]!.pass()
    await second
    expect([...socket.rooms].sort()).toEqual([socket.id, 'b'].sort())
  })

  it('still under way when the session ends are followed by a leave of every room', async () => {
    const { adapter, socket, parley } = await connected()
    void socket.join('a')
    void socket.leave('b')
    void socket.join('c')
    socket.disconnect()
    // Out of its rooms at once, and once more after the calls made before the end.
    expect(parley.adapter.socketRooms(socket.id)).toBeUndefined()
    await adapter.answerNewestFirst()
    expect(adapter.calls.at(-1)).toBe('leave all')
    expect(parley.adapter.socketRooms(socket.id)).toBeUndefined()
    expect(await parley.in(['a', 'c']).fetchSockets()).toEqual([])
  })

  it("made by a handshake middleware are done before 'connection'", async () => {
    let adapter: GatedAdapter | undefined
    const inRoom: boolean[] = []
    opened.started = await startServer({ adapter: (local) => (adapter = new GatedAdapter(local)) }, (app) => {
      app.parley.use((socket) => {
        void socket.join('a')
      })
      app.parley.on('connection', (socket) => {
        inRoom.push(socket.rooms.has('a'))
      })
    })
    const c = client()
    await until(() => adapter!.held.length === 1, 5000, "the middleware's join")
    adapter!.held[0]!.pass()
    await until(() => c.connected, 5000, 'connect')
    expect(inRoom).toEqual([true])
  })
})

describe('socketsJoin and socketsLeave, on an adapter that answers later', () => {
  it('reach a socket after its own join still under way, by the rooms it left it in', async () => {
    const { adapter, socket, parley } = await connected()
    void socket.join('a')
    const joined = parley.in('a').socketsJoin('b')
    await adapter.answerNewestFirst()
    await joined
    expect(adapter.calls).toEqual(['join a', 'join b'])
    expect([...socket.rooms].sort()).toEqual([socket.id, 'a', 'b'].sort())
  })

  it('pass over a socket that its own leave under way takes out of the targeted room', async () => {
    const { adapter, socket, parley } = await connected()
    const joined = socket.join('a')
    await adapter.answerNewestFirst()
    await joined
    void socket.leave('a')
    const joining = parley.in('a').socketsJoin('b')
    await adapter.answerNewestFirst()
    await joining
    expect(adapter.calls).toEqual(['join a', 'leave a'])
    expect([...socket.rooms]).toEqual([socket.id])
  })

  it('take a socket out of a room its own join under way puts it in (server-wide)', async () => {
    const { adapter, socket, parley } = await connected()
    void socket.join('a')
    const left = parley.socketsLeave('a')
    await adapter.answerNewestFirst()
    await left
    expect(adapter.calls).toEqual(['join a', 'leave a'])
    expect([...socket.rooms]).toEqual([socket.id])
  })

  it("reach a socket with nothing under way at once, and one with a join under way after it (from a socket's operator)", async () => {
    const { adapter, sockets } = await connected(3)
    const [waiting, idle, sender] = sockets as [ServerSocket, ServerSocket, ServerSocket]
    const joined = idle.join('a')
    await adapter.answerNewestFirst()
    await joined
    void waiting.join('a')
    const joining = sender.to('a').socketsJoin('b')
    // The idle socket's join is the adapter's at once; the other waits for its own join.
    expect(adapter.heldNames).toEqual(['join a', 'join b'])
    await adapter.answerNewestFirst()
    await joining
    expect(adapter.calls.slice(1)).toEqual(['join a', 'join b', 'join b'])
    expect(waiting.rooms.has('b')).toBe(true)
    expect(idle.rooms.has('b')).toBe(true)
    expect(sender.rooms.has('b')).toBe(false)
  })

  it('pass over a socket whose handshake middleware still runs, as the adapter does', async () => {
    let adapter: GatedAdapter | undefined
    let letThrough = () => {}
    const waiting = new Promise<void>((resolve) => {
      letThrough = resolve
    })
    opened.started = await startServer({ adapter: (local) => (adapter = new GatedAdapter(local)) }, (app) => {
      app.parley.use(async (socket) => {
        void socket.join('a')
        await waiting
      })
    })
    const c = client()
    await until(() => adapter!.held.length === 1, 5000, "the middleware's join")
    const joining = opened.started.app.parley.socketsJoin('b')
    adapter!.held[0]!.pass()
    // Done, or stuck behind a join of 'b' that the test does not answer.
    await Promise.race([joining, until(() => adapter!.held.length > 0, 5000, 'a join')])
    expect(adapter!.heldNames).toEqual([])
    letThrough()
    await until(() => c.connected, 5000, 'connect')
    expect(adapter!.calls).toEqual(['join a'])
  })
})
