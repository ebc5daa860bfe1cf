// A question whose count waits (for a socket joined without a cut, or past its claim marker):
// the replies made meanwhile are held, and passed on after the count. One made while they are
// passed on (a reply whose taker makes another socket reply at once) goes behind them, in the
// order the replies were made, never dropped.
import { type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import type { AskWithAck } from '../src/held-questions.js'
import { PastMarkerSockets } from '../src/past-marker.js'
import { UncutSockets } from '../src/uncut-sockets.js'
import { Warnings } from '../src/warnings.js'
import { askInR, asking } from './ask-holding.js'
import { FakeSockets, repliesAs } from './handoff-support.js'

describe('the replies held behind a socket joined without a cut', () => {
  it('passes on a reply made while the held ones are passed on behind them', () => {
    const replies = new Map<string, (value: string) => void>()
    // Every socket the filter lets through is counted at once, and replies when told to.
    const ask: AskWithAck = (_message, _options, _timeout, expectCount, reply, only) => {
      const asked = ['first', 'second', 'third', 'held'].filter((id) => !only || only(id))
      for (const id of asked) replies.set(id, (value) => reply({ ok: true, value }))
      expectCount(asked.length)
      return undefined
    }
    const uncut = new UncutSockets(() => undefined)
    uncut.joined('held')
    const seen: unknown[] = []
    askInR({
      ask,
      uncut,
      timeout: 5000,
      seen,
      onReply: (value) => {
        if (value === 'first') replies.get('second')?.('second')
      },
    })
    replies.get('first')?.('first')
    replies.get('third')?.('third')
    expect(seen).toEqual([])
    uncut.read('held', undefined, () => undefined)
    expect(seen).toEqual(['count 3', 'first', 'third', 'second'])
  })

  it('passes on a reply made while those held behind a socket past its marker are passed on', () => {
    const sockets = new FakeSockets()
    const memory = new MemoryAdapter(sockets)
    const past = new PastMarkerSockets(memory, sockets, new Warnings({ warn: () => undefined }), () => 0)
    for (const id of ['s1', 's2', 's3']) {
      repliesAs(sockets.add(id), id)
      memory.addAll(id, new Set([id, 'r']))
    }
    // s3 replies only when told to.
    let settleS3: ((reply: BroadcastReply) => void) | undefined
    const s3 = sockets.get('s3')
    if (s3) s3.deliverWithAck = (_event, _timeout, settle) => (settleS3 = settle)
    // s1 is past its claim marker, out of room r while its seal waits; the session stays here.
    const end = past.enter('s1', 0, (aside) => aside.kept())
    const seen = asking(past.askWithAck.bind(past), {
      onReply: (value) => {
        if (value === 's2') settleS3?.({ ok: true, value: 's3' })
      },
    })
    expect(seen).toEqual([])
    end()
    expect(seen).toEqual(['count 3', 's2', 's1', 's3'])
  })
})
