// A broadcast with acks asked of this node's sockets each on its own (ask-each.ts) must reach
// and count the sockets the memory adapter's would: a socket still in a room but no longer on
// this node (its session ended, its rooms not left yet) is neither counted nor failed there.
import { type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { askEach } from '../src/ask-each.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, repliesAs, to } from './handoff-support.js'

/** Sockets a and b in room r, a no longer on this node. */
function scene() {
  const sockets = new FakeSockets()
  const memory = new MemoryAdapter(sockets)
  for (const id of ['a', 'b']) {
    repliesAs(sockets.add(id), id)
    memory.addAll(id, new Set([id, 'r']))
  }
  sockets.sockets.delete('a')
  return { sockets, memory }
}

/** What the sender hears of a question to room r: the count, then each reply's value. */
function heard(ask: (expect: (count: number) => void, reply: (reply: BroadcastReply) => void) => void) {
  const seen: unknown[] = []
  ask(
    (count) => seen.push(`count ${count}`),
    (made) => seen.push(made.ok ? made.value : `failed ${made.error.code}`),
  )
  return seen
}

describe('a broadcast with acks asked of each socket on its own', () => {
  it('leaves out a socket still in a room but no longer on this node, as the memory adapter does', () => {
    const lines: string[] = []
    const warnings = new Warnings({ warn: (_details, line) => lines.push(line) })
    const each = scene()
    const one = scene()
    const asked = heard((expectCount, reply) =>
      askEach(each.memory, each.sockets, warnings, message('asked', []), to(['r']), 5000, expectCount, reply),
    )
    const inMemory = heard((expectCount, reply) =>
      one.memory.broadcastWithAck(message('asked', []), to(['r']), 5000, expectCount, reply),
    )
    expect(inMemory).toEqual(['count 1', 'b'])
    expect(asked).toEqual(inMemory)
    expect(lines).toEqual([])
  })
})
