// What reaches one socket on its own, many sockets in a row: a broadcast or a question held
// behind a takeover's tail (given or asked at its read), an own broadcast given up behind one
// before a claim marker, a broadcast or a question given into a tail at its seal. Found by
// walking the room with a test that passes that socket alone, a burst of takeovers or a drain
// into a room of N sockets costs N² tests; each must be found by its own rooms instead,
// reaching exactly whom that walk reaches.
import { type BroadcastOptions, type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { askAtSeal, deliverAtSeal } from '../src/at-seal.js'
import { deliverOne } from '../src/deliver-each.js'
import { askHolding } from '../src/held-questions.js'
import { askAlone, deliverAlone } from '../src/one-socket.js'
import { deliverUncut, UncutSockets } from '../src/uncut-sockets.js'
import { UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, repliesAs } from './handoff-support.js'
import { CountingMemory, CountingRooms, oneSocketCases } from './one-socket-support.js'

const quiet = () => new Warnings({ warn: () => undefined })

/** Room r of `n` sockets, each replying with its id; `rooms`, the options that reach r. */
function room(n: number) {
  const sockets = new FakeSockets()
  const memory = new CountingMemory(sockets)
  const ids = Array.from({ length: n }, (_, i) => `s${i}`)
  for (const id of ids) {
    repliesAs(sockets.add(id), id)
    memory.addAll(id, new Set([id, 'r']))
  }
  const rooms = new CountingRooms(['r'])
  const options: BroadcastOptions = { rooms, except: new Set(), volatile: false, local: false }
  /** How many events each socket got. */
  const got = () => ids.map((id) => sockets.get(id)?.got.length)
  return { sockets, memory, ids, rooms, options, got }
}

const N = 400

describe('one socket after another, in a room of many', () => {
  it('a takeover burst: what each held is given at its read without walking the room again', () => {
    const r = room(N)
    const uncut = new UncutSockets((message, options, id) =>
      deliverUncut(r.memory, r.sockets, quiet(), message, options, id),
    )
    for (const id of r.ids) uncut.joined(id)
    const held = { node: 'c', q: 1, message: message('news', ['n']), options: r.options }
    // Read on the channel: held by every socket, the room walked once.
    r.memory.broadcast(held.message, held.options, uncut.only(held, undefined))
    expect(r.got().every((count) => count === 0)).toBe(true)
    for (const id of r.ids) uncut.read(id, undefined, () => undefined)

    expect(r.got().every((count) => count === 1)).toBe(true)
    expect(r.memory.visits).toBeLessThanOrEqual(2 * N)
    expect(r.rooms.reads).toBeLessThanOrEqual(4 * N)
  })

  it('a takeover burst: a question each held is asked at its read without walking the room again', () => {
    const r = room(N)
    const uncut = new UncutSockets(() => undefined)
    for (const id of r.ids) uncut.joined(id)
    const seen: unknown[] = []
    askHolding(
      {
        memory: r.memory,
        sockets: r.sockets,
        ask: (message, options, _timeout, expectCount, reply, only) => {
          r.memory.broadcastWithAck(message, options, 5000, expectCount, reply, only)
          return undefined
        },
        uncut,
        unread: new UnreadTakeovers(),
        warnings: quiet(),
      },
      { node: 'c', q: 1, ran: true },
      message('asked', []),
      r.options,
      5000,
      (count) => seen.push(`count ${count}`),
      (made: BroadcastReply) => seen.push(made.ok ? made.value : 'failed'),
    )
    expect(seen).toEqual([])
    for (const id of r.ids) uncut.read(id, undefined, () => undefined)

    expect(seen[0]).toBe(`count ${N}`)
    expect(seen.slice(1)).toEqual(r.ids)
    expect(r.got().every((count) => count === 1)).toBe(true)
    expect(r.memory.visits).toBeLessThanOrEqual(2 * N)
    expect(r.rooms.reads).toBeLessThanOrEqual(4 * N)
  })

  it.each([
    ['given up behind one before a claim marker', deliverOne],
    ['given into a tail at its seal', deliverAtSeal],
  ])('an own broadcast %s, to each socket, walks no room', (_name, deliver) => {
    const r = room(N)
    const news = message('news', ['n'])
    for (const id of r.ids) deliver(r.memory, r.sockets, quiet(), news, r.options, id)

    expect(r.got().every((count) => count === 1)).toBe(true)
    expect(r.memory.visits).toBe(0)
    expect(r.rooms.reads).toBeLessThanOrEqual(2 * N)
  })

  it('a drain: a question asked of each socket as its tail is sealed walks no room', () => {
    const r = room(N)
    const seen: unknown[] = []
    let count = 0
    for (const id of r.ids)
      askAtSeal(
        r.memory,
        r.sockets,
        quiet(),
        message('asked', []),
        r.options,
        5000,
        (n) => {
          count += n
        },
        (made: BroadcastReply) => seen.push(made.ok ? made.value : 'failed'),
        id,
      )

    expect(count).toBe(N)
    expect(seen).toEqual(r.ids)
    expect(r.memory.visits).toBe(0)
    expect(r.rooms.reads).toBeLessThanOrEqual(2 * N)
  })
})

describe('a socket given a broadcast alone, by its id', () => {
  /** What each socket got when `deliver` gives it on a fresh node. */
  function gotWith(
    deliver: (memory: MemoryAdapter, sockets: FakeSockets) => void,
    setup: (memory: MemoryAdapter) => void,
  ) {
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    const all = ['a', 'b', 'gone'].map((id) => sockets.add(id))
    setup(memory)
    sockets.sockets.delete('gone')
    deliver(memory, sockets)
    return all.map((socket) => socket.got)
  }

  const news = message('news', ['n'])
  const alone: [
    string,
    (memory: MemoryAdapter, sockets: FakeSockets, options: BroadcastOptions, id: string) => void,
  ][] = [
    ['deliverAlone', (memory, sockets, options, id) => deliverAlone(memory, sockets, news, options, id)],
    [
      'deliverUncut',
      (memory, sockets, options, id) => deliverUncut(memory, sockets, quiet(), news, options, id),
    ],
    ['deliverOne', (memory, sockets, options, id) => deliverOne(memory, sockets, quiet(), news, options, id)],
    [
      'deliverAtSeal',
      (memory, sockets, options, id) => deliverAtSeal(memory, sockets, quiet(), news, options, id),
    ],
  ]
  for (const [name, deliver] of alone) {
    it.each(oneSocketCases)(
      `${name} reaches whom a walk of the rooms would: %s`,
      (_case, id, options, setup) => {
        const walked = gotWith((memory) => memory.broadcast(news, options, (other) => other === id), setup)
        expect(gotWith((memory, sockets) => deliver(memory, sockets, options, id), setup)).toEqual(walked)
      },
    )
  }

  it.each(oneSocketCases)(
    'askAlone and askAtSeal ask and count whom a walk of the rooms would: %s',
    (_case, id, options, setup) => {
      const askedWith = (ask: (memory: MemoryAdapter, sockets: FakeSockets, seen: unknown[]) => void) => {
        const sockets = new FakeSockets()
        const memory = new MemoryAdapter(sockets)
        const all = ['a', 'b', 'gone'].map((id) => sockets.add(id))
        for (const socket of all) repliesAs(socket, socket.id)
        setup(memory)
        sockets.sockets.delete('gone')
        const seen: unknown[] = []
        ask(memory, sockets, seen)
        return [seen, all.map((socket) => socket.got)]
      }
      const count = (seen: unknown[]) => (n: number) => seen.push(`count ${n}`)
      const reply = (seen: unknown[]) => (made: BroadcastReply) => seen.push(made.ok ? made.value : 'failed')
      const asked = message('asked', ['q'])
      const walked = askedWith((memory, _sockets, seen) =>
        memory.broadcastWithAck(asked, options, 5000, count(seen), reply(seen), (other) => other === id),
      )
      expect(
        askedWith((memory, sockets, seen) =>
          askAlone(memory, sockets, asked, options, 5000, count(seen), reply(seen), id),
        ),
      ).toEqual(walked)
      expect(
        askedWith((memory, sockets, seen) =>
          askAtSeal(memory, sockets, quiet(), asked, options, 5000, count(seen), reply(seen), id),
        ),
      ).toEqual(walked)
    },
  )

  it('a socket that throws loses the broadcast alone, logged as before', () => {
    const logged: string[] = []
    const warnings = new Warnings({ warn: (_details, line) => logged.push(line) })
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    sockets.add('a').deliver = () => {
      throw new Error('the socket threw')
    }
    memory.addAll('a', ['a', 'r'])
    const options: BroadcastOptions = {
      rooms: new Set(['r']),
      except: new Set(),
      volatile: false,
      local: false,
    }
    deliverUncut(memory, sockets, warnings, news, options, 'a')
    deliverOne(memory, sockets, warnings, news, options, 'a')
    deliverAtSeal(memory, sockets, warnings, news, options, 'a')
    expect(logged).toHaveLength(3)
    expect(logged[0]).toMatch(/taken over before its claim marker came back/)
    expect(logged[1]).toMatch(/failed at its delivery to a socket/)
    expect(logged[2]).toMatch(/as that tail was sealed/)
  })

  it('a socket that throws at a question asked at its seal is counted, its reply failed, logged', () => {
    const logged: string[] = []
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    sockets.add('a').deliver = () => {
      throw new Error('the socket threw')
    }
    memory.addAll('a', ['a', 'r'])
    const seen: unknown[] = []
    askAtSeal(
      memory,
      sockets,
      new Warnings({ warn: (_details, line) => logged.push(line) }),
      message('asked', []),
      { rooms: new Set(['r']), except: new Set(), volatile: false, local: false },
      5000,
      (n) => seen.push(`count ${n}`),
      (made: BroadcastReply) => seen.push(made.ok ? made.value : 'failed'),
      'a',
    )
    expect(seen).toEqual(['count 1', 'failed'])
    expect(logged).toHaveLength(1)
    expect(logged[0]).toMatch(/as that tail was sealed/)
  })
})
