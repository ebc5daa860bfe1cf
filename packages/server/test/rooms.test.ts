// Rooms and broadcasting, driven by the Parley client over each transport.
import { connect, type Socket } from '@parley/client'
import {
  type AdapterFactory,
  MAX_ROOM_NAME_LENGTH,
  MemoryAdapter,
  type ParleyServerOptions,
  type ServerSocket,
} from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type * as protocol from '../../protocol/src/index.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const transports = ['websocket', 'sse', 'polling'] as const

let started: Started | undefined
const clients: Socket[] = []
const raws: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  for (const c of raws.splice(0)) c.close()
  await closeApp(started?.app)
  started = undefined
  vi.restoreAllMocks()
})

/** A server whose sockets are collected in arrival order, and `n` clients connected to it. */
async function setup(n: number, transport: (typeof transports)[number], options: ParleyServerOptions = {}) {
  const sockets: ServerSocket[] = []
  started = await startServer(options, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
    })
  })
  const list: Socket[] = []
  for (let i = 0; i < n; i++) {
    const c = connect(started.base, { transports: [transport], reconnection: false })
    clients.push(c)
    list.push(c)
    await until(() => sockets.length === i + 1, 3000, `client ${i}`)
  }
  return { parley: started.app.parley, sockets, clients: list }
}

/**
 * A hundred WebSocket clients, the last 99 connecting at once (setup() goes one by one). On a
 * busy machine 99 handshakes at once in one process can take longer than the client's default
 * connectTimeout (3 s), which without reconnection would leave a client out for good.
 */
async function hundredWebSockets() {
  const crowd = await setup(1, 'websocket')
  for (let i = 0; i < 99; i++) {
    const c = connect(started!.base, {
      transports: ['websocket'],
      reconnection: false,
      connectTimeout: 20_000,
    })
    clients.push(c)
    crowd.clients.push(c)
  }
  await until(() => crowd.sockets.length === 100, 20_000, '100 sockets')
  return crowd
}

/** Records the `news` events a client gets. */
function inbox(c: Socket): unknown[] {
  const got: unknown[] = []
  c.on('news', (value: unknown) => got.push(value))
  return got
}

describe.each(transports)('rooms over %s', (transport) => {
  it('puts every socket in its own room, joins and leaves rooms, and leaves all at the end', async () => {
    const { parley, sockets } = await setup(2, transport)
    const [s0, s1] = sockets as [ServerSocket, ServerSocket]
    expect([...s0.rooms]).toEqual([s0.id])
    s0.join(['lobby', 'help'])
    s1.join('lobby')
    expect([...s0.rooms].sort()).toEqual([s0.id, 'help', 'lobby'].sort())
    s0.leave('help')
    expect(s0.rooms.has('help')).toBe(false)
    expect((await parley.in('lobby').fetchSockets()).map((s) => s.id).sort()).toEqual([s0.id, s1.id].sort())

    let roomsWhileLeaving: ReadonlySet<string> | undefined
    s0.on('disconnecting', () => {
      roomsWhileLeaving = new Set(s0.rooms)
    })
    s0.disconnect()
    await until(() => !s0.connected)
    expect(roomsWhileLeaving?.has('lobby')).toBe(true)
    expect(s0.rooms.size).toBe(0)
    expect((await parley.in('lobby').fetchSockets()).map((s) => s.id)).toEqual([s1.id])
  })

  it('broadcasts to rooms, except rooms, and to everyone but the sender', async () => {
    const { parley, sockets, clients: list } = await setup(3, transport)
    const [s0, s1, s2] = sockets as [ServerSocket, ServerSocket, ServerSocket]
    const [in0, in1, in2] = list.map(inbox) as [unknown[], unknown[], unknown[]]
    s0.join('lobby')
    s1.join(['lobby', 'muted'])
    s2.join('other')

    parley.to('lobby').emit('news', 'to lobby')
    parley.to('lobby').except('muted').emit('news', 'lobby but muted')
    parley.to(['lobby', 'other']).emit('news', 'union')
    s0.to('lobby').emit('news', 'from s0')
    s2.broadcast.emit('news', 'all but s2')
    parley.emit('news', 'everyone')

    await until(() => in0.length === 5 && in1.length === 5 && in2.length === 2, 3000, 'deliveries')
    expect(in0).toEqual(['to lobby', 'lobby but muted', 'union', 'all but s2', 'everyone'])
    expect(in1).toEqual(['to lobby', 'union', 'from s0', 'all but s2', 'everyone'])
    expect(in2).toEqual(['union', 'everyone'])
  })

  it('keeps a socket in its own room: leaving it does nothing, and the sender stays left out', async () => {
    const { parley, sockets, clients: list } = await setup(2, transport)
    const [s0, s1] = sockets as [ServerSocket, ServerSocket]
    const [in0, in1] = list.map(inbox) as [unknown[], unknown[]]
    s0.join('lobby')
    s1.join('lobby')
    s0.leave(s0.id)
    await parley.socketsLeave(s0.id)
    expect([...s0.rooms].sort()).toEqual([s0.id, 'lobby'].sort())
    // Out of its own room, the sender got these two itself, and the third reached nobody.
    s0.to('lobby').emit('news', 'from s0')
    s0.broadcast.emit('news', 'all but s0')
    parley.to(s0.id).emit('news', 'to s0')
    s1.broadcast.emit('news', 'all but s1')
    await until(() => in0.length === 2 && in1.length === 2, 3000, 'deliveries')
    expect(in0).toEqual(['to s0', 'all but s1'])
    expect(in1).toEqual(['from s0', 'all but s0'])
  })

  it('gathers replies of a broadcast, and says when some did not reply in time', async () => {
    const { parley, sockets, clients: list } = await setup(3, transport)
    for (const s of sockets) s.join('voters')
    list[0]!.on('vote', (ack: (v: string) => void) => ack('yes'))
    list[1]!.on('vote', (ack: (v: string) => void) => ack('no'))
    list[2]!.on('vote', (ack: (v: string) => void) => ack('yes'))
    const replies = await parley.timeout(3000).to('voters').emitWithAck('vote')
    expect(replies.sort()).toEqual(['no', 'yes', 'yes'])

    list[2]!.off('vote')
    list[2]!.on('vote', () => undefined) // never answers
    const error = await parley
      .timeout(300)
      .to('voters')
      .emitWithAck('vote')
      .catch((e: protocol.ParleyError) => e)
    expect(error).toMatchObject({
      code: 'PARLEY_ACK_TIMEOUT',
      message: '1 socket(s) did not reply within 300 ms: 1 timed out',
    })
    const partial = (error as protocol.ParleyError).details?.replies as string[] | undefined
    expect(partial?.slice().sort()).toEqual(['no', 'yes'])
  })

  it('calls a broadcast’s callback after emit returned, even when the answer is known at once', async () => {
    const { parley } = await setup(0, transport)
    // No socket to ask: the answer is known at once, and still comes after emit returned.
    let called = false
    parley
      .timeout(1000)
      .to('nobody')
      .emit('vote', () => {
        called = true
      })
    expect(called).toBe(false)
    await until(() => called, 1000, 'the callback for nobody')
  })

  it('keeps rooms and socket.data through a cut and a resume; room broadcasts meanwhile arrive once', async () => {
    const { parley, sockets } = await setup(0, transport)
    const first = await rawConnect(transport, started!.base)
    raws.push(first)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    socket.join(['kept', 'also'])
    socket.data.name = 'ada'
    first.close()
    // A WebSocket sees the cut at once; SSE and polling wait for another GET until their ping
    // timeout. Rooms stay either way.
    if (transport === 'websocket') await until(() => socket.transport === null, 2000, 'detach')
    expect(socket.connected).toBe(true)
    expect([...socket.rooms].sort()).toEqual([socket.id, 'also', 'kept'].sort())
    parley.to('kept').emit('news', 'while away')
    parley.to('also').volatile.emit('news', 'volatile while away')

    const again = await rawConnect(transport, started!.base, { sid: first.sid, ack: 0 })
    raws.push(again)
    expect(again.open).toMatchObject({ sid: first.sid, id: socket.id, recovered: true })
    expect(await again.next((p) => p.type === 5)).toMatchObject({ seq: 1, args: ['while away'] })
    expect(socket.data).toEqual({ name: 'ada' })
    expect([...socket.rooms].sort()).toEqual([socket.id, 'also', 'kept'].sort())
    expect((await parley.in('kept').fetchSockets()).map((s) => s.id)).toEqual([socket.id])
    parley.to('kept').emit('news', 'after')
    expect(await again.next((p) => p.type === 5)).toMatchObject({ seq: 2, args: ['after'] })
    // Volatile packets are never replayed (over WebSocket it was dropped at once: no transport).
    expect(again.received.some((p) => p.type === 5 && p.seq === 0)).toBe(false)
    expect(sockets).toHaveLength(1)
  })

  it('sends volatile broadcasts unnumbered, and numbered ones numbered per session', async () => {
    const { parley, sockets } = await setup(0, transport)
    const a = await rawConnect(transport, started!.base)
    const b = await rawConnect(transport, started!.base)
    raws.push(a, b)
    await until(() => sockets.length === 2)
    sockets[0]!.emit('warm', 1) // a's numbering is one ahead of b's
    parley.volatile.emit('news', 'v')
    parley.emit('news', 'n')
    const isNews = (p: protocol.Packet) => p.type === 5 && p.name === 'news'
    expect(await a.next(isNews)).toMatchObject({ seq: 0, args: ['v'] })
    expect(await a.next(isNews)).toMatchObject({ seq: 2, args: ['n'] })
    expect(await b.next(isNews)).toMatchObject({ seq: 0, args: ['v'] })
    expect(await b.next(isNews)).toMatchObject({ seq: 1, args: ['n'] })
  })

  it('sends a volatile broadcast that awaits replies unnumbered, failing at once where it is dropped', async () => {
    const { parley, sockets } = await setup(0, transport, { highWaterMark: 1000 })
    const a = await rawConnect(transport, started!.base)
    const b = await rawConnect(transport, started!.base)
    raws.push(a, b)
    await until(() => sockets.length === 2)
    // b never acknowledges: this stays kept, and b is past its highWaterMark.
    sockets[1]!.emit('fill', 'x'.repeat(2000))
    await b.next((p) => p.type === 5 && p.name === 'fill')
    const isQuestion = (p: protocol.Packet) => p.type === 5 && p.name === 'q'
    const began = performance.now()
    const outcome = parley.volatile
      .timeout(30_000)
      .emitWithAck('q')
      .catch((e: unknown) => e)
    const asked = (await a.next(isQuestion)) as protocol.EventPacket
    expect(asked).toMatchObject({ seq: 0, args: [] })
    expect(asked.ackId).toBeGreaterThan(0)
    await a.send({ type: 6 /* REPLY */, seq: 1, ackId: asked.ackId, args: ['from a'] })
    // b counts as failed from the start: the wait ends with a's reply, not at the timeout.
    expect(await outcome).toMatchObject({
      code: 'PARLEY_ACK_TIMEOUT',
      message: '1 socket(s) did not reply: 1 dropped',
      details: { replies: ['from a'] },
    })
    expect(performance.now() - began).toBeLessThan(5000)
    // Never kept for b either: a numbered marker after it arrives, the question never does.
    sockets[1]!.emit('end', 1)
    await b.next((p) => p.type === 5 && p.name === 'end')
    expect(b.received.some(isQuestion)).toBe(false)
  })

  it('delivers broadcasts of every size whole and in order, multi-byte text included', async () => {
    const { parley, clients: list } = await setup(2, transport)
    const got = list.map(inbox)
    // Lengths that cross a WebSocket frame's length forms (7, 16 and 64 bits) once the packet
    // around the text is counted, then text of two-, three- and four-byte characters.
    const sent: string[] = []
    for (let n = 90; n < 125; n++) sent.push('a'.repeat(n))
    for (let n = 65_490; n < 65_540; n += 3) sent.push('b'.repeat(n))
    sent.push('é'.repeat(70), '€'.repeat(50_000), '🎉 party '.repeat(100))
    for (const text of sent) parley.emit('news', text)
    await until(() => got.every((g) => g.length === sent.length), 10_000, 'every broadcast')
    for (const g of got) expect(g).toEqual(sent)
  })

  it('runs socket operations on rooms: socketsJoin, socketsLeave, disconnectSockets', async () => {
    const { parley, sockets } = await setup(3, transport)
    const [s0, s1, s2] = sockets as [ServerSocket, ServerSocket, ServerSocket]
    s0.join('a')
    s1.join('a')
    await parley.in('a').socketsJoin('b')
    expect(s0.rooms.has('b') && s1.rooms.has('b') && !s2.rooms.has('b')).toBe(true)
    await parley.in('a').socketsLeave('a')
    expect(s0.rooms.has('a') || s1.rooms.has('a')).toBe(false)
    const ended: string[] = []
    for (const s of sockets) s.on('disconnect', (reason) => ended.push(`${s.id}:${reason}`))
    await parley.in('b').disconnectSockets()
    await until(() => ended.length === 2)
    expect(ended.sort()).toEqual([`${s0.id}:server disconnect`, `${s1.id}:server disconnect`].sort())
    expect(s2.connected).toBe(true)
  })
})

describe('rooms and broadcast semantics', () => {
  it('keeps rooms and socket.data across a transport switch and a resume', async () => {
    const sockets: ServerSocket[] = []
    started = await startServer({}, (app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
        socket.join('kept')
        socket.data.name = 'ada'
      })
    })
    const c = connect(started.base, {
      transports: ['sse', 'websocket'],
      upgradeDelay: 50,
      reconnection: true,
    })
    clients.push(c)
    const got = inbox(c)
    await until(() => c.transport === 'websocket', 5000, 'upgrade to websocket')
    const s = sockets[0]!
    expect(s.rooms.has('kept')).toBe(true)
    expect(s.data.name).toBe('ada')
    started.app.parley.to('kept').emit('news', 1)
    await until(() => got.length === 1)
    expect(sockets).toHaveLength(1)
  })

  it('encodes a broadcast once for a hundred sockets', { timeout: 40_000 }, async () => {
    // The encoding does not depend on the transport: WebSocket alone is enough.
    const { parley, sockets, clients: list } = await hundredWebSockets()
    for (const s of sockets) s.join('crowd')
    const boxes = list.map(inbox)
    const stringify = vi.spyOn(JSON, 'stringify')
    parley.to('crowd').emit('news', { text: 'hello everyone', n: [1, 2, 3] })
    const calls = stringify.mock.calls.filter((call) => Array.isArray(call[0]))
    stringify.mockRestore()
    await until(() => boxes.every((b) => b.length === 1), 15_000, 'every socket got it')
    // One encoding of [name, args] for the whole room, not one per socket.
    expect(calls.length).toBe(1)
  })

  it('leaves rooms when the session ends at the recovery window, not when its transport is lost', async () => {
    const sockets: ServerSocket[] = []
    started = await startServer({ recovery: { window: 300 } }, (app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
      })
    })
    const c = await rawConnect('websocket', started.base)
    raws.push(c)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    socket.join('room')
    c.close()
    await until(() => socket.transport === null, 2000, 'detach')
    expect((await started.app.parley.in('room').fetchSockets()).map((s) => s.id)).toEqual([socket.id])
    await until(() => !socket.connected, 2000, 'end of the recovery window')
    expect(socket.rooms.size).toBe(0)
    expect(await started.app.parley.in('room').fetchSockets()).toEqual([])
    expect(await started.app.parley.fetchSockets()).toEqual([])
  })

  it('chains operators in any order, and calls back with every reply', async () => {
    const { parley, sockets, clients: list } = await setup(3, 'websocket')
    const [s0, s1, s2] = sockets as [ServerSocket, ServerSocket, ServerSocket]
    const boxes = list.map((c) => inbox(c))
    s0.join(['a', 'x'])
    s1.join('a')
    s2.join('b')
    parley.except('x').volatile.to('a').emit('news', 1)
    parley.to('a').except('x').volatile.emit('news', 2)
    parley.volatile.except('x').in(['a', 'b']).local.emit('news', 3)
    s1.except('b').emit('news', 4) // everyone but s1 and room b
    await until(() => boxes[1]!.length === 3 && boxes[2]!.length === 1 && boxes[0]!.length === 1)
    expect(boxes).toEqual([[4], [1, 2, 3], [3]])

    for (const [i, c] of list.entries()) c.on('vote', (ack: (v: number) => void) => ack(i))
    const [error, replies] = await new Promise<[unknown, unknown[]]>((resolve) => {
      parley
        .to('a')
        .timeout(2000)
        .emit('vote', (err: unknown, got: unknown[]) => resolve([err, got]))
    })
    expect(error).toBeNull()
    expect(replies.sort()).toEqual([0, 1])
    // A room with nobody in it answers at once, with no replies.
    expect(await parley.timeout(5000).to('nobody').emitWithAck('vote')).toEqual([])
  })

  it('reaches no one through to([]): an empty list of rooms is an empty audience', async () => {
    const { parley, sockets, clients: list } = await setup(2, 'websocket')
    const [s0, s1] = sockets as [ServerSocket, ServerSocket]
    const [in0, in1] = list.map(inbox) as [unknown[], unknown[]]
    for (const c of list) c.on('vote', (ack: (v: string) => void) => ack('yes'))
    s1.join('lobby')
    parley.to([]).emit('news', 'to([])')
    parley.in([]).except('lobby').volatile.emit('news', 'in([]) chained')
    s0.to([]).emit('news', 'socket.to([])')
    expect(await parley.to([]).fetchSockets()).toEqual([])
    expect(await parley.to([]).timeout(5000).emitWithAck('vote')).toEqual([])
    await parley.to([]).socketsJoin('joined')
    await parley.in([]).socketsLeave('lobby')
    await parley.to([]).disconnectSockets()
    // A room named after the empty list counts: the list adds nothing, it takes nothing away.
    parley.to([]).to('lobby').emit('news', 'to([]).to(lobby)')
    parley.emit('news', 'everyone')
    await until(() => in0.length === 1 && in1.length === 2, 3000, 'deliveries')
    expect(in0).toEqual(['everyone'])
    expect(in1).toEqual(['to([]).to(lobby)', 'everyone'])
    expect([...s0.rooms]).toEqual([s0.id])
    expect([...s1.rooms].sort()).toEqual([s1.id, 'lobby'].sort())
    expect(s0.connected && s1.connected).toBe(true)
    // What would be refused with an audience is refused without one: nothing is skipped unchecked.
    expect(() => parley.to([]).emit('disconnect' as never)).toThrow(
      expect.objectContaining({ code: 'PARLEY_RESERVED_EVENT_NAME' }),
    )
    await expect(parley.to([]).socketsJoin(42 as never)).rejects.toThrow(TypeError)
  })

  it('encodes a binary broadcast once for a hundred WebSockets (text and frame)', {
    timeout: 40_000,
  }, async () => {
    const { parley, clients: list } = await hundredWebSockets()
    const got = list.map(() => [] as unknown[])
    for (const [i, c] of list.entries()) c.on('file', (file: unknown) => got[i]!.push(file))
    const stringify = vi.spyOn(JSON, 'stringify')
    parley.emit('file', { name: 'a.bin', body: new Uint8Array([1, 2, 3]) })
    const calls = stringify.mock.calls.filter((call) => Array.isArray(call[0]))
    stringify.mockRestore()
    await until(() => got.every((g) => g.length === 1), 15_000, 'every socket got it')
    expect(got[99]).toEqual([{ name: 'a.bin', body: new Uint8Array([1, 2, 3]) }])
    // [name, args] once, the base64 list once, the frame's list once: not one per socket.
    expect(calls.length).toBe(3)
  })

  it('refuses reserved event names in a broadcast', () => {
    return startServer().then((s) => {
      started = s
      expect(() => s.app.parley.emit('disconnect' as never)).toThrow(
        expect.objectContaining({ code: 'PARLEY_RESERVED_EVENT_NAME' }),
      )
    })
  })
})

describe('room names', () => {
  it('are strings of 1 to MAX_ROOM_NAME_LENGTH characters: join, leave and the operators refuse anything else alike, and change nothing', async () => {
    const { parley, sockets } = await setup(1, 'websocket')
    const socket = sockets[0]!
    const ended: string[] = []
    socket.on('disconnect', (reason) => ended.push(reason))
    const refused = /^a room is a string of 1 to 256 characters, not /
    const tooLong = 'r'.repeat(MAX_ROOM_NAME_LENGTH + 1)
    // A numeric user id from plain JavaScript, an empty name, a name one past the limit, a
    // megabyte of user input, and lists holding any of them.
    for (const rooms of [
      42,
      [42],
      '',
      [''],
      ['ok', 42],
      [null],
      {},
      tooLong,
      ['ok', tooLong],
      'x'.repeat(1 << 20),
    ]) {
      const given = rooms as never
      for (const call of [
        () => socket.join(given),
        () => socket.to(given),
        () => socket.except(given),
        () => parley.to(given),
        () => parley.in(given),
        () => parley.except(given),
      ]) {
        expect(call).toThrow(TypeError)
        expect(call).toThrow(expect.objectContaining({ code: 'PARLEY_INVALID_ARGUMENT' }))
        expect(call).toThrow(refused)
      }
      await expect(parley.socketsJoin(given)).rejects.toThrow(refused)
      await expect(parley.socketsLeave(given)).rejects.toThrow(refused)
    }
    expect(() => socket.leave(42 as never)).toThrow(refused)
    expect(() => socket.leave('')).toThrow(refused)
    expect(() => socket.leave(tooLong)).toThrow(refused)
    // The message says what it got, not the name itself.
    expect(() => socket.join('x'.repeat(1 << 20))).toThrow(
      'a room is a string of 1 to 256 characters, not a string of 1048576',
    )
    // Nothing was joined, not even the good name of a refused list, and the socket goes on.
    expect([...socket.rooms]).toEqual([socket.id])
    socket.join('b')
    expect([...socket.rooms].sort()).toEqual([socket.id, 'b'].sort())
    expect((await parley.fetchSockets()).map((s) => s.id)).toEqual([socket.id])
    expect((await parley.in('b').fetchSockets()).map((s) => s.id)).toEqual([socket.id])
    socket.disconnect()
    expect(ended).toEqual(['server disconnect'])
    expect(parley.socketsCount).toBe(0)
  })
})

describe('room names at the limit', () => {
  it('are taken by join, the operators, socketsJoin and leave alike', async () => {
    const { parley, sockets, clients: list } = await setup(1, 'websocket')
    const socket = sockets[0]!
    // Counted in UTF-16 units, as String.length counts them: 256 characters of 3 UTF-8 bytes each.
    const room = '€'.repeat(MAX_ROOM_NAME_LENGTH)
    const other = `${'o'.repeat(MAX_ROOM_NAME_LENGTH - 1)}!`
    expect(MAX_ROOM_NAME_LENGTH).toBe(256)
    const got: unknown[] = []
    list[0]!.on('news', (n: unknown) => got.push(n))
    await socket.join(room)
    expect(socket.rooms.has(room)).toBe(true)
    parley.to(room).except(other).emit('news', 1)
    await until(() => got.length === 1, 3000, 'the broadcast to the room')
    await parley.in(room).socketsJoin(other)
    expect((await parley.in(other).fetchSockets()).map((s) => s.id)).toEqual([socket.id])
    parley.to(room).except(other).emit('news', 2)
    parley.in(other).emit('news', 3)
    await until(() => got.length === 2, 3000, 'the broadcast to the other room')
    expect(got).toEqual([1, 3])
    await socket.leave(room)
    await parley.in(other).socketsLeave(other)
    expect([...socket.rooms]).toEqual([socket.id])
  })
})

describe('room membership', () => {
  it('changes at once on the built-in adapter, in the order of the calls: nothing to await', async () => {
    const { sockets } = await setup(1, 'websocket')
    const socket = sockets[0]!
    expect(socket.join('a')).toBeUndefined()
    expect(socket.rooms.has('a')).toBe(true)
    expect(socket.leave('a')).toBeUndefined()
    expect(socket.rooms.has('a')).toBe(false)
    expect(socket.join(['a', 'b'])).toBeUndefined()
    expect(socket.leave('a')).toBeUndefined()
    expect([...socket.rooms].sort()).toEqual([socket.id, 'b'].sort())
  })

  it('ends with its socket: a join after the end does nothing', async () => {
    const { parley, sockets } = await setup(1, 'websocket')
    const socket = sockets[0]!
    socket.join('before')
    socket.disconnect()
    socket.join(['late', 'later'])
    expect(socket.rooms.size).toBe(0)
    expect(parley.adapter.socketRooms(socket.id)).toBeUndefined()
  })

  it('ends with its socket: a join or a leave after the end asks nothing of the adapter', async () => {
    // An adapter of the application's, whose calls are noted: a call for an ended socket would
    // reach its store for a socket it has forgotten.
    const calls: string[] = []
    const adapter: AdapterFactory = (sockets) =>
      new (class extends MemoryAdapter {
        override addAll(id: string, rooms: Iterable<string>): void {
          calls.push(`addAll ${[...rooms].join(',')}`)
          super.addAll(id, rooms)
        }
        override del(id: string, room: string): void {
          calls.push(`del ${room}`)
          super.del(id, room)
        }
        override delAll(id: string): void {
          calls.push('delAll')
          super.delAll(id)
        }
      })(sockets)
    const { sockets } = await setup(1, 'websocket', { adapter })
    const socket = sockets[0]!
    socket.join('before')
    socket.disconnect()
    expect(calls.slice(-2)).toEqual(['addAll before', 'delAll'])
    calls.length = 0
    expect(socket.join('late')).toBeUndefined()
    expect(socket.leave('before')).toBeUndefined()
    expect(calls).toEqual([])
    // The room's name is still checked, as on a live socket.
    expect(() => socket.leave('')).toThrow(TypeError)
  })

  it.each(transports)(
    'is not kept for a handshake its middleware refused after joining (%s)',
    async (transport) => {
      const turnedAway: ServerSocket[] = []
      started = await startServer({}, (app) => {
        app.parley.use(async (socket) => {
          await socket.join(['vip', 'lobby'])
          const how = (socket.handshake.auth as { how?: string } | null)?.how
          if (how === undefined) return
          turnedAway.push(socket)
          if (how === 'throw') throw Object.assign(new Error('not today'), { code: 'NOT_TODAY' })
          socket.disconnect()
        })
      })
      const parley = started.app.parley
      for (const how of ['throw', 'disconnect']) {
        const refused = await rawConnect(transport, started.base, { auth: { how } }).catch((e: unknown) => e)
        expect(refused).toMatchObject({ code: how === 'throw' ? 'NOT_TODAY' : 'PARLEY_REFUSED' })
      }
      expect(turnedAway).toHaveLength(2)
      for (const socket of turnedAway) {
        expect(parley.adapter.socketRooms(socket.id)).toBeUndefined()
        expect(socket.rooms.size).toBe(0)
      }
      // A welcome client is in the rooms alone.
      const welcome = await rawConnect(transport, started.base)
      raws.push(welcome)
      await until(() => parley.socketsCount === 1)
      expect(parley.adapter.socketRooms(welcome.id)).toEqual(new Set([welcome.id, 'vip', 'lobby']))
      expect((await parley.in('vip').fetchSockets()).map((s) => s.id)).toEqual([welcome.id])
    },
  )
})
