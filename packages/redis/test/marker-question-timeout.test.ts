// A question asked while a socket is past its claim marker (its seal waiting, at most
// MARKER_SETTLE_MS, for an own broadcast Redis may still run): its count waits for the end of
// that wait, but never past the question's own timeout, its sender's, which may be shorter.
// Then the count is given with the sockets asked by then, and the replies they made; the socket
// past its marker, asked later, is left out of it, its reply dropped.
import { type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { askHolding } from '../src/held-questions.js'
import { PastMarkerSockets } from '../src/past-marker.js'
import { UncutSockets } from '../src/uncut-sockets.js'
import { askCountingTakeovers, UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, repliesAs, to } from './handoff-support.js'

/** s1 past its claim marker, out of room r while its seal waits; s2 in r; each replies its id. */
function scene(timeout: number) {
  const sockets = new FakeSockets()
  const memory = new MemoryAdapter(sockets)
  const past = new PastMarkerSockets(memory, sockets, new Warnings({ warn: () => undefined }), () => 0)
  for (const id of ['s1', 's2']) {
    repliesAs(sockets.add(id), id)
    memory.addAll(id, new Set([id, 'r']))
  }
  // At the end of its wait the session stays here: s1 is asked what it kept aside.
  const end = past.enter('s1', 0, (aside) => aside.kept())
  const heard: string[] = []
  past.askWithAck(
    message('asked', ['q']),
    to(['r']),
    timeout,
    (count) => heard.push(`count ${count}`),
    (reply: BroadcastReply) => heard.push(reply.ok ? String(reply.value) : 'failed'),
    undefined,
    true,
  )
  return { heard, end, s1: sockets.get('s1') }
}

describe('a question asked of a socket past its claim marker, at its timeout', () => {
  it('gives the count it has then, the socket past its marker left out', async () => {
    const { heard, end, s1 } = scene(100)
    expect(heard).toEqual([])
    await until(() => heard.length > 0, 3000, 'the count at the timeout')
    expect(heard).toEqual(['count 1', 's2'])
    // The wait ends later: s1 still gets the question, its reply is not passed on.
    end()
    expect(s1?.got).toEqual(['q'])
    expect(heard).toEqual(['count 1', 's2'])
  })

  it('counts the socket past its marker when its wait ends in time, as before', () => {
    const { heard, end } = scene(60_000)
    end()
    expect(heard).toEqual(['count 2', 's2', 's1'])
  })

  it.each([
    ['with none held', false],
    ['beside a socket joined without a cut', true],
  ])('gives the count it has when asked of it at once, %s, through the holds above it', (_, holding) => {
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    const warnings = new Warnings({ warn: () => undefined })
    const past = new PastMarkerSockets(memory, sockets, warnings, () => 0)
    for (const id of ['s1', 's2']) {
      repliesAs(sockets.add(id), id)
      memory.addAll(id, new Set([id, 'r']))
    }
    const end = past.enter('s1', 0, (aside) => aside.kept())
    const uncut = new UncutSockets(() => undefined)
    // Elsewhere: held, but not asked.
    if (holding) uncut.joined('s3')
    const unread = new UnreadTakeovers()
    const heard: string[] = []
    const giveNow = askHolding(
      {
        memory,
        sockets,
        ask: askCountingTakeovers((...args) => past.askWithAck(...args), unread),
        uncut,
        unread,
        warnings,
      },
      { node: 'a', q: 1, ran: true },
      message('asked', ['q']),
      to(['r']),
      60_000,
      (count) => heard.push(`count ${count}`),
      (reply: BroadcastReply) => heard.push(reply.ok ? String(reply.value) : 'failed'),
    )
    expect(heard).toEqual([])
    // Its caller's timeout ends first: s2 counted, with its reply; s1 left out.
    giveNow()
    expect(heard).toEqual(['count 1', 's2'])
    end()
    expect(heard).toEqual(['count 1', 's2'])
  })
})
