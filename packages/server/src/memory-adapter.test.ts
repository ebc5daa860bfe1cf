import { type PreparedEvent, prepareEvent, type WireValue } from '@parley/protocol'
import { describe, expect, it, vi } from 'vitest'
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSocket,
  LocalSockets,
  Room,
  SocketDescription,
} from './adapter/adapter.js'
import { MemoryAdapter } from './adapter/memory.js'

/** A socket of this node as the adapter sees it: records what reaches it. */
class FakeSocket implements LocalSocket {
  readonly delivered: { event: PreparedEvent; volatile: boolean }[] = []
  readonly askedWithin: number[] = []
  disconnects = 0

  constructor(readonly id: string) {}

  deliver(event: PreparedEvent, volatile: boolean): void {
    this.delivered.push({ event, volatile })
  }

  deliverWithAck(event: PreparedEvent, timeout: number, settle: (reply: BroadcastReply) => void): void {
    this.delivered.push({ event, volatile: false })
    this.askedWithin.push(timeout)
    settle({ ok: true, value: `reply from ${this.id}` })
  }

  describe(): SocketDescription {
    return {
      id: this.id,
      handshake: {
        headers: {},
        query: {},
        auth: undefined,
        address: '127.0.0.1',
        time: new Date(0).toISOString(),
        issued: 0,
        transport: 'websocket',
        url: '/parley/ws?v=1',
        params: {},
      },
      rooms: new Set([this.id]),
      data: { name: this.id },
    }
  }

  disconnect(): void {
    this.disconnects++
  }
}

/** An adapter over sockets a, b, c, d, each in the room of its own id, as the server puts them. */
function setup(ids: string[] = ['a', 'b', 'c', 'd']) {
  const sockets = new Map(ids.map((id) => [id, new FakeSocket(id)]))
  const local: LocalSockets = {
    get: (id) => sockets.get(id),
    hasSession: () => false,
    serve: () => Promise.reject(new Error('no routing in these tests')),
    url: () => undefined,
    claimed: () => [],
    handOff: async () => false,
  }
  const adapter = new MemoryAdapter(local)
  for (const id of ids) adapter.addAll(id, [id])
  const socket = (id: string) => {
    const found = sockets.get(id)
    if (!found) throw new Error(`no socket ${id}`)
    return found
  }
  /** Ids of the sockets that got at least one delivery, sorted. */
  const reached = () =>
    [...sockets.values()]
      .filter((s) => s.delivered.length > 0)
      .map((s) => s.id)
      .sort()
  return { adapter, sockets, socket, reached }
}

function target(
  options: { rooms?: Room[]; except?: Room[]; volatile?: boolean; local?: boolean } = {},
): BroadcastOptions {
  return {
    rooms: new Set(options.rooms ?? []),
    except: new Set(options.except ?? []),
    volatile: options.volatile ?? false,
    local: options.local ?? false,
  }
}

function message(name = 'news', args: WireValue[] = ['hello']) {
  const prepared = vi.fn(() => prepareEvent(name, args))
  const msg: BroadcastMessage = { name, args, prepared }
  return { msg, prepared }
}

const sorted = (rooms: Iterable<Room> | undefined) => [...(rooms ?? [])].sort()

describe('MemoryAdapter: rooms', () => {
  it('puts a socket into rooms and lists them', () => {
    const { adapter } = setup()
    adapter.addAll('a', ['red', 'blue'])
    adapter.addAll('a', ['red'])
    expect(sorted(adapter.socketRooms('a'))).toEqual(['a', 'blue', 'red'])
    expect(sorted(adapter.socketRooms('b'))).toEqual(['b'])
    expect(adapter.socketRooms('nobody')).toBeUndefined()
  })

  it('answers the rooms of a socket in many as a copy, which later joins and leaves do not change', () => {
    const { adapter, reached } = setup()
    const many = Array.from({ length: 20 }, (_, i) => `room ${i}`)
    adapter.addAll('a', many)
    // `socket.rooms` is a snapshot: what it gave before a join or a leave stays as it was.
    const before = adapter.socketRooms('a')!
    adapter.addAll('a', ['late'])
    adapter.del('a', 'room 0')
    expect(sorted(before)).toEqual(sorted(['a', ...many]))
    // Nor does writing to what it gave reach the adapter's books (a ReadonlySet, cast away).
    ;(before as Set<Room>).delete('room 1')
    expect(adapter.socketRooms('a')!.has('room 1')).toBe(true)
    adapter.broadcast(message().msg, target({ rooms: ['room 1'] }))
    expect(reached()).toEqual(['a'])
  })

  it('takes a socket out of one room with del and leaves its other rooms', () => {
    const { adapter, reached } = setup()
    adapter.addAll('a', ['red', 'blue'])
    adapter.del('a', 'red')
    adapter.del('a', 'never joined')
    expect(sorted(adapter.socketRooms('a'))).toEqual(['a', 'blue'])
    adapter.broadcast(message().msg, target({ rooms: ['red'] }))
    expect(reached()).toEqual([])
    adapter.broadcast(message().msg, target({ rooms: ['blue'] }))
    expect(reached()).toEqual(['a'])
  })

  it('leaves other members in a room one socket leaves', () => {
    const { adapter, reached } = setup()
    adapter.addAll('a', ['red'])
    adapter.addAll('b', ['red'])
    adapter.del('a', 'red')
    adapter.broadcast(message().msg, target({ rooms: ['red'] }))
    expect(reached()).toEqual(['b'])
  })

  it('takes a socket out of every room with delAll, so that no broadcast reaches it', () => {
    const { adapter, reached } = setup()
    adapter.addAll('a', ['red', 'blue'])
    adapter.addAll('b', ['red'])
    adapter.delAll('a')
    adapter.delAll('a')
    expect(adapter.socketRooms('a')).toBeUndefined()
    adapter.broadcast(message().msg, target({ rooms: ['red', 'blue', 'a'] }))
    expect(reached()).toEqual(['b'])
    adapter.broadcast(message().msg, target())
    expect(reached()).toEqual(['b', 'c', 'd'])
  })

  it('lets a socket join again after delAll', () => {
    const { adapter, reached } = setup()
    adapter.addAll('a', ['red'])
    adapter.delAll('a')
    adapter.addAll('a', ['red'])
    adapter.broadcast(message().msg, target({ rooms: ['red'] }))
    expect(reached()).toEqual(['a'])
  })
  it("lets another socket join a socket's own room, beside that socket, until it leaves", () => {
    const { adapter, sockets } = setup()
    adapter.addAll('b', ['a'])
    const reachedBy = (options: { rooms?: Room[]; except?: Room[] }) => {
      for (const s of sockets.values()) s.delivered.length = 0
      adapter.broadcast(message().msg, target(options))
      return [...sockets.values()].filter((s) => s.delivered.length > 0).map((s) => s.id)
    }
    expect(reachedBy({ rooms: ['a'] })).toEqual(['a', 'b'])
    expect(reachedBy({ except: ['a'] })).toEqual(['c', 'd'])
    adapter.del('b', 'a')
    expect(reachedBy({ rooms: ['a'] })).toEqual(['a'])
    expect(sorted(adapter.socketRooms('b'))).toEqual(['b'])
    adapter.delAll('a')
    expect(reachedBy({ rooms: ['a'] })).toEqual([])
    adapter.addAll('a', ['a'])
    expect(reachedBy({ rooms: ['a'] })).toEqual(['a'])
  })

  it('never takes a socket out of its own room: del and delSockets skip it, delAll alone does it', () => {
    const { adapter, reached, sockets } = setup()
    adapter.addAll('b', ['a', 'red'])
    adapter.del('a', 'a')
    adapter.delSockets(target(), ['a', 'b', 'c', 'red'])
    expect(sorted(adapter.socketRooms('a'))).toEqual(['a'])
    // b leaves a's room and red, and stays in its own; c and d were never in those.
    expect(sorted(adapter.socketRooms('b'))).toEqual(['b'])
    expect(sorted(adapter.socketRooms('c'))).toEqual(['c'])
    adapter.broadcast(message().msg, target({ rooms: ['a', 'b', 'c'] }))
    expect(reached()).toEqual(['a', 'b', 'c'])
    for (const s of sockets.values()) s.delivered.length = 0
    // A sender leaves itself out by its own room: still so.
    adapter.broadcast(message().msg, target({ except: ['a'] }))
    expect(reached()).toEqual(['b', 'c', 'd'])
    adapter.delAll('a')
    expect(adapter.socketRooms('a')).toBeUndefined()
  })

  it('keeps a socket in its own room and one more apart: leaving that one keeps its own', () => {
    const { adapter, reached } = setup()
    adapter.addAll('a', ['red'])
    expect([...adapter.socketRooms('a')!]).toEqual(['a', 'red'])
    adapter.del('a', 'a')
    expect([...adapter.socketRooms('a')!]).toEqual(['a', 'red'])
    adapter.del('a', 'red')
    expect([...adapter.socketRooms('a')!]).toEqual(['a'])
    adapter.broadcast(message().msg, target({ rooms: ['red'] }))
    expect(reached()).toEqual([])
    adapter.broadcast(message().msg, target({ rooms: ['a'] }))
    expect(reached()).toEqual(['a'])
    adapter.addAll('b', ['blue', 'green'])
    adapter.del('b', 'blue')
    expect([...adapter.socketRooms('b')!]).toEqual(['b', 'green'])
    adapter.del('b', 'green')
    adapter.del('b', 'b')
    expect([...adapter.socketRooms('b')!]).toEqual(['b'])
    // Rooms joined before its own (the server joins its own first): a list without it.
    adapter.addAll('x', ['red', 'blue'])
    adapter.del('x', 'red')
    expect([...adapter.socketRooms('x')!]).toEqual(['blue'])
    adapter.del('x', 'blue')
    expect([...adapter.socketRooms('x')!]).toEqual([])
  })

  it('keeps a socket in many rooms apart from the others, and lets it leave each', () => {
    const { adapter } = setup()
    const rooms = Array.from({ length: 40 }, (_, i) => `r${i}`)
    adapter.addAll('a', rooms)
    adapter.addAll('b', rooms.slice(0, 3))
    for (const room of rooms.slice(0, 30)) adapter.del('a', room)
    expect(sorted(adapter.socketRooms('a'))).toEqual(['a', ...rooms.slice(30)].sort())
    expect(sorted(adapter.socketRooms('b'))).toEqual(['b', 'r0', 'r1', 'r2'])
    adapter.delAll('a')
    expect(adapter.socketRooms('a')).toBeUndefined()
  })
})

describe('MemoryAdapter: broadcast', () => {
  it('reaches every socket when no room is named', () => {
    const { adapter, reached, sockets } = setup()
    adapter.broadcast(message().msg, target())
    expect(reached()).toEqual(['a', 'b', 'c', 'd'])
    for (const socket of sockets.values()) expect(socket.delivered).toHaveLength(1)
  })

  it('reaches the members of any named room, each socket once', () => {
    const { adapter, reached, sockets } = setup()
    adapter.addAll('a', ['red', 'blue'])
    adapter.addAll('b', ['blue'])
    adapter.addAll('d', ['green'])
    adapter.broadcast(message().msg, target({ rooms: ['red', 'blue'] }))
    expect(reached()).toEqual(['a', 'b'])
    for (const socket of sockets.values()) expect(socket.delivered.length).toBeLessThanOrEqual(1)
  })

  it('reaches a single socket by the room of its id', () => {
    const { adapter, reached } = setup()
    adapter.broadcast(message().msg, target({ rooms: ['c'] }))
    expect(reached()).toEqual(['c'])
  })

  it('leaves out sockets in any except room', () => {
    const { adapter, reached } = setup()
    adapter.addAll('b', ['muted'])
    adapter.broadcast(message().msg, target({ except: ['a', 'muted'] }))
    expect(reached()).toEqual(['c', 'd'])
  })

  it('leaves out excepted sockets from the named rooms too', () => {
    const { adapter, reached } = setup()
    for (const id of ['a', 'b', 'c']) adapter.addAll(id, ['red'])
    adapter.broadcast(message().msg, target({ rooms: ['red'], except: ['b'] }))
    expect(reached()).toEqual(['a', 'c'])
  })

  it('reaches no one in a room nobody joined, and prepares nothing then', () => {
    const { adapter, reached } = setup()
    const { msg, prepared } = message()
    adapter.broadcast(msg, target({ rooms: ['empty'] }))
    expect(reached()).toEqual([])
    expect(prepared).not.toHaveBeenCalled()
  })

  it('prepares the encoding once and hands the same one to every socket', () => {
    const { adapter, sockets } = setup()
    const { msg, prepared } = message('news', ['one', 2])
    adapter.broadcast(msg, target())
    expect(prepared).toHaveBeenCalledOnce()
    const events = [...sockets.values()].map((socket) => socket.delivered[0]!.event)
    expect(new Set(events).size).toBe(1)
    expect(events[0]).toMatchObject({ name: 'news', args: ['one', 2] })
  })

  it('passes the volatile flag through to each socket', () => {
    const { adapter, socket } = setup()
    adapter.broadcast(message().msg, target({ rooms: ['a'], volatile: true }))
    adapter.broadcast(message().msg, target({ rooms: ['a'] }))
    expect(socket('a').delivered.map((d) => d.volatile)).toEqual([true, false])
  })

  it('skips a socket that is still in a room but no longer on this node', () => {
    const { adapter, sockets, reached } = setup()
    adapter.addAll('a', ['red'])
    adapter.addAll('b', ['red'])
    const gone = sockets.get('a')!
    sockets.delete('a')
    adapter.broadcast(message().msg, target({ rooms: ['red'] }))
    expect(reached()).toEqual(['b'])
    expect(gone.delivered).toEqual([])
  })
})

describe('MemoryAdapter: broadcast to some of the matching sockets', () => {
  it('leaves out the sockets that `only` refuses, rooms and except still applied', () => {
    const { adapter, reached } = setup()
    adapter.addAll('a', ['red'])
    adapter.addAll('b', ['red'])
    adapter.addAll('c', ['red', 'muted'])
    adapter.broadcast(message().msg, target({ rooms: ['red'], except: ['muted'] }), (id) => id !== 'a')
    expect(reached()).toEqual(['b'])
  })
})

describe('MemoryAdapter: broadcast with acks', () => {
  it('tells how many sockets it reached and hands on each reply', () => {
    const { adapter, socket } = setup()
    adapter.addAll('a', ['red'])
    adapter.addAll('c', ['red'])
    const expect_ = vi.fn()
    const replies: BroadcastReply[] = []
    adapter.broadcastWithAck(message().msg, target({ rooms: ['red'] }), 1500, expect_, (r) => replies.push(r))
    expect(expect_).toHaveBeenCalledExactlyOnceWith(2)
    expect(replies).toEqual(
      expect.arrayContaining([
        { ok: true, value: 'reply from a' },
        { ok: true, value: 'reply from c' },
      ]),
    )
    expect(replies).toHaveLength(2)
    expect(socket('a').askedWithin).toEqual([1500])
    expect(socket('b').delivered).toEqual([])
  })

  it('tells 0, prepares nothing and waits for no reply when no socket matches', () => {
    const { adapter } = setup()
    const { msg, prepared } = message()
    const expect_ = vi.fn()
    const reply = vi.fn()
    adapter.broadcastWithAck(msg, target({ rooms: ['empty'] }), 1000, expect_, reply)
    expect(expect_).toHaveBeenCalledExactlyOnceWith(0)
    expect(reply).not.toHaveBeenCalled()
    expect(prepared).not.toHaveBeenCalled()
  })

  it('counts only the sockets left once except rooms are taken out', () => {
    const { adapter } = setup()
    const expect_ = vi.fn()
    adapter.broadcastWithAck(message().msg, target({ except: ['a', 'b'] }), 1000, expect_, () => {})
    expect(expect_).toHaveBeenCalledExactlyOnceWith(2)
  })
})

describe('MemoryAdapter: socket operations', () => {
  it('describes the matching sockets', async () => {
    const { adapter } = setup()
    adapter.addAll('b', ['red'])
    adapter.addAll('d', ['red'])
    const found = await adapter.fetchSockets(target({ rooms: ['red'] }))
    expect(found.map((d) => d.id).sort()).toEqual(['b', 'd'])
    expect(found.find((d) => d.id === 'b')).toMatchObject({ data: { name: 'b' } })
    expect(await adapter.fetchSockets(target({ rooms: ['empty'] }))).toEqual([])
    expect((await adapter.fetchSockets(target({ except: ['a'] }))).map((d) => d.id).sort()).toEqual([
      'b',
      'c',
      'd',
    ])
  })

  it('makes the matching sockets join rooms', () => {
    const { adapter } = setup()
    adapter.addAll('a', ['red'])
    adapter.addAll('b', ['red'])
    adapter.addSockets(target({ rooms: ['red'], except: ['b'] }), ['vip', 'gold'])
    expect(sorted(adapter.socketRooms('a'))).toEqual(['a', 'gold', 'red', 'vip'])
    expect(sorted(adapter.socketRooms('b'))).toEqual(['b', 'red'])
    expect(sorted(adapter.socketRooms('c'))).toEqual(['c'])
  })

  it('makes the matching sockets leave rooms', () => {
    const { adapter, reached } = setup()
    for (const id of ['a', 'b', 'c']) adapter.addAll(id, ['red', 'blue'])
    adapter.delSockets(target({ except: ['c'] }), ['red', 'blue'])
    expect(sorted(adapter.socketRooms('a'))).toEqual(['a'])
    expect(sorted(adapter.socketRooms('c'))).toEqual(['blue', 'c', 'red'])
    adapter.broadcast(message().msg, target({ rooms: ['red'] }))
    expect(reached()).toEqual(['c'])
  })

  it('disconnects every matching socket, and only those', () => {
    const { adapter, socket } = setup()
    adapter.addAll('a', ['red'])
    adapter.addAll('b', ['red'])
    adapter.disconnectSockets(target({ rooms: ['red'] }))
    expect([socket('a'), socket('b'), socket('c'), socket('d')].map((s) => s.disconnects)).toEqual([
      1, 1, 0, 0,
    ])
  })

  it('disconnects every socket when no room is named', () => {
    const { adapter, sockets } = setup()
    adapter.disconnectSockets(target())
    expect([...sockets.values()].map((s) => s.disconnects)).toEqual([1, 1, 1, 1])
  })

  it('holds every session on this node', () => {
    const { adapter } = setup()
    expect(adapter.sessionOwner()).toBe('local')
  })
})
