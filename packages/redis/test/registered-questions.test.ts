// A socket asked a question on one of the adapter's rarer paths (kept aside past its claim
// marker, or held while its takeover's tail is read) that registers it and then throws as it
// sends it (the server's socket registers first): it is counted once, its reply failed at once,
// and the question settled later where it was registered (its session's end) adds no reply.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { type BroadcastReply, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { askHolding } from '../src/held-questions.js'
import { PastMarkerSockets } from '../src/past-marker.js'
import { UncutSockets } from '../src/uncut-sockets.js'
import { UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, to } from './handoff-support.js'

/** Socket s1 of a node, in room 'r', that registers its questions and throws as it sends them. */
function scene() {
  const sockets = new FakeSockets()
  const memory = new MemoryAdapter(sockets)
  const logged: string[] = []
  const warnings = new Warnings({ warn: (_details, line) => logged.push(line) })
  const past = new PastMarkerSockets(memory, sockets, warnings, () => 0)
  const socket = sockets.add('s1')
  memory.addAll('s1', new Set(['s1', 'r']))
  const registered: ((reply: BroadcastReply) => void)[] = []
  socket.deliverWithAck = (_event, _timeout, settle) => {
    registered.push(settle)
    throw new Error('the socket threw as it sent the question')
  }
  const heard: (number | BroadcastReply)[] = []
  return {
    memory,
    sockets,
    past,
    warnings,
    logged,
    heard,
    expect: (count: number) => heard.push(count),
    reply: (reply: BroadcastReply) => heard.push(reply),
    /** Its session ends: every question it registered is settled there. */
    end() {
      for (const settle of registered)
        settle({ ok: false, error: new ParleyError(ErrorCode.DISCONNECTED, 'the session ended') })
    },
  }
}

describe('a question a socket registered, then threw at as it sent it', () => {
  it('kept aside past its claim marker, counts the socket once, its reply failed', () => {
    const s = scene()
    // Past its marker, out of room r; at the end of its wait the session stays here.
    const endWait = s.past.enter('s1', 0, (aside) => aside.kept())
    s.past.askWithAck(message('asked', ['q']), to(['r']), 5000, s.expect, s.reply, undefined, true)
    expect(s.heard).toEqual([])
    endWait()
    s.end()
    expect(s.heard).toMatchObject([1, { ok: false, error: { code: 'PARLEY_DISCONNECTED' } }])
    expect(s.heard).toHaveLength(2)
    expect(s.logged.some((line) => line.includes('kept aside for a socket'))).toBe(true)
  })

  it('held while its takeover reads the tail, counts the socket once, its reply failed', () => {
    const s = scene()
    // s1 was joined by a takeover before its claim marker came back: it holds what reaches it.
    const uncut = new UncutSockets(() => undefined)
    uncut.joined('s1')
    askHolding(
      {
        memory: s.memory,
        sockets: s.sockets,
        ask: (...args) => s.past.askWithAck(...args),
        uncut,
        unread: new UnreadTakeovers(),
        warnings: s.warnings,
      },
      { node: 'c', q: 1, ran: true },
      message('asked', ['q']),
      to(['r']),
      5000,
      s.expect,
      s.reply,
      undefined,
    )
    expect(s.heard).toEqual([])
    // The tail is read, without places: s1 is asked now.
    uncut.read('s1', undefined, () => undefined)
    s.end()
    expect(s.heard).toMatchObject([1, { ok: false, error: { code: 'PARLEY_DISCONNECTED' } }])
    expect(s.heard).toHaveLength(2)
    expect(s.logged.some((line) => line.includes('taken over before its claim marker'))).toBe(true)
  })
})
