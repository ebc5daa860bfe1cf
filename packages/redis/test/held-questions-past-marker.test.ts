// A question asked on a node that both holds a socket joined without a cut (a takeover here,
// its tail not read yet) and a socket past its claim marker (a handoff from here, its seal
// waiting): the count of the socket past its marker comes only at the end of that wait, and the
// node's count must wait for it, not be given at once without the sockets asked meanwhile.
import { type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { askHolding } from '../src/held-questions.js'
import { PastMarkerSockets } from '../src/past-marker.js'
import { UncutSockets } from '../src/uncut-sockets.js'
import { UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, to } from './handoff-support.js'

describe('a question asked beside a socket joined without a cut', () => {
  it("gives the node's count once the socket past its marker is asked, with every reply after it", () => {
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    const warnings = new Warnings({ warn: () => undefined })
    const past = new PastMarkerSockets(memory, sockets, warnings, () => 0)
    // s1 is past its claim marker, out of room r while its seal waits; s2 is in r.
    for (const id of ['s1', 's2']) {
      sockets.add(id)
      memory.addAll(id, new Set([id, 'r']))
    }
    // At the end of its wait the session stays here: s1 is asked what it kept aside.
    const end = past.enter('s1', 0, (aside) => aside.kept())
    // s3, a takeover's socket joined without a cut, is in another room.
    const uncut = new UncutSockets(() => undefined)
    sockets.add('s3')
    memory.addAll('s3', new Set(['s3', 'elsewhere']))
    uncut.joined('s3')

    const heard: (number | BroadcastReply)[] = []
    askHolding(
      {
        memory,
        sockets,
        ask: (...args) => past.askWithAck(...args),
        uncut,
        unread: new UnreadTakeovers(),
        warnings,
      },
      { node: 'c', q: 1, ran: true },
      message('asked', ['q']),
      to(['r']),
      5000,
      (count) => heard.push(count),
      (reply) => heard.push(reply),
      undefined,
    )
    // s2 replied at once; the count waits for s1.
    expect(heard).toEqual([])
    end()
    expect(heard).toEqual([2, { ok: true, value: null }, { ok: true, value: null }])
  })
})
