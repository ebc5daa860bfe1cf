// A question to a room during a drain, or a burst of takeovers: many of the room's sockets have
// a count that waits (their tail to take the question, their takeover's tail to be read, their
// seal past a claim marker), and each of them is asked on its own. Asked by walking the room
// again with a test that passes it alone, a room of N such sockets costs N² tests, which blocks
// the node in the middle of a deploy; each must be found by its own rooms instead, with the same
// sockets asked, once each, and the same count.
import { type BroadcastOptions, type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { askEach } from '../src/ask-each.js'
import type { AskWithAck } from '../src/held-questions.js'
import { oneSocket } from '../src/one-socket.js'
import { PastMarkerSockets } from '../src/past-marker.js'
import { askCountingTails } from '../src/tail-questions.js'
import { askCountingTakeovers, UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message } from './handoff-support.js'
import { CountingMemory, CountingRooms, oneSocketCases as cases } from './one-socket-support.js'

/**
 * Room r of `n` sockets, on a node that hands off the first `tails` of them (their tails take
 * appends, the first `pastMarker` of those out of the room past their claim marker) and whose
 * takeovers joined the next `unread`, their tails not read yet: asked as the adapter asks.
 */
function scene(n: number, tails: number, pastMarker: number, unread: number) {
  const sockets = new FakeSockets()
  const memory = new CountingMemory(sockets)
  const warnings = new Warnings({ warn: () => undefined })
  const past = new PastMarkerSockets(memory, sockets, warnings, () => 0)
  /** How many times each socket was asked. */
  const asked = new Map<string, number>()
  const ids = Array.from({ length: n }, (_, i) => `s${i}`)
  for (const id of ids) {
    const socket = sockets.add(id)
    socket.deliverWithAck = (_event, _timeout, settle) => {
      asked.set(id, (asked.get(id) ?? 0) + 1)
      settle({ ok: true, value: id })
    }
    memory.addAll(id, new Set([id, 'r']))
  }
  const handingOff = new Set(ids.slice(0, tails))
  // At the end of their wait their sessions stay here: they are asked what they kept aside.
  const ends = ids.slice(0, pastMarker).map((id) => past.enter(id, 0, (aside) => aside.kept()))
  const takeovers = new UnreadTakeovers()
  const joined = ids.slice(tails, tails + unread)
  for (const id of joined) takeovers.joined(id)
  const ask: AskWithAck = askCountingTakeovers(
    askCountingTails((...args) => past.askWithAck(...args), {
      empty: () => handingOff.size === 0,
      has: (id) => handingOff.has(id),
      // Each tail takes the question at once (nothing appended to wait for).
      watchAppends: (_id, askIt) => {
        askIt()
        return false
      },
    }),
    takeovers,
  )
  return {
    memory,
    asked,
    ask,
    /** Ends every wait: the claim markers' and the takeovers' reads. */
    settle: () => {
      for (const end of ends) end()
      for (const id of joined) takeovers.read(id, false)
    },
  }
}

describe('a question to a room whose sockets are mostly held', () => {
  it('asks each held socket without walking the room again, every socket once, counted once', () => {
    const n = 400
    const tails = 200
    const pastMarker = 100
    const unread = 100
    const held = tails + unread
    const room = scene(n, tails, pastMarker, unread)
    const rooms = new CountingRooms(['r'])
    const seen: unknown[] = []
    room.ask(
      message('asked', []),
      { rooms, except: new Set(), volatile: false, local: false },
      5000,
      (count) => seen.push(`count ${count}`),
      (made: BroadcastReply) => seen.push(made.ok ? made.value : 'failed'),
      undefined,
      true,
    )
    room.settle()

    // The room is walked once: the held sockets are found by their own rooms, not by a walk each.
    expect(room.memory.visits).toBeLessThanOrEqual(n + held)
    // Each socket is tested against the question's rooms a bounded number of times, not once per held socket.
    expect(rooms.reads).toBeLessThanOrEqual(4 * n)
    expect(seen[0]).toBe(`count ${n}`)
    expect(seen.slice(1).sort()).toEqual([...room.asked.keys()].sort())
    expect(room.asked.size).toBe(n)
    expect([...room.asked.values()].every((times) => times === 1)).toBe(true)
  })
})

describe('a socket asked alone, by its id', () => {
  /** Who is asked, and the count, when `only` is given to askEach on a fresh node. */
  function askedWith(
    only: (id: string) => boolean,
    options: BroadcastOptions,
    setup: (memory: MemoryAdapter) => void,
  ) {
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    for (const id of ['a', 'b', 'gone']) sockets.add(id)
    setup(memory)
    sockets.sockets.delete('gone')
    const seen: unknown[] = []
    askEach(
      memory,
      sockets,
      new Warnings({ warn: () => undefined }),
      message('asked', []),
      options,
      5000,
      (count) => seen.push(`count ${count}`),
      (made) => seen.push(made.ok ? 'replied' : 'failed'),
      only,
    )
    return seen
  }

  it.each(cases)('is asked as a walk of the rooms would ask it: %s', (_name, id, options, setup) => {
    const walked = askedWith((other) => other === id, options, setup)
    expect(askedWith(oneSocket(id), options, setup)).toEqual(walked)
    // A test it carries still decides.
    expect(
      askedWith(
        oneSocket(id, () => false),
        options,
        setup,
      ),
    ).toEqual(['count 0'])
  })
})
