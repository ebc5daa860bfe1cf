// The question the tests of held questions ask: the message `asked` to room r, its count and
// replies put in what the sender saw, in order. `askInR` asks it with askHolding, as node c's
// first, on an adapter's parts of which only `ask` and `uncut` are the test's own.

import { type BroadcastReply, MemoryAdapter } from '@parley/server'
import { type AskWithAck, askHolding, type GiveNow } from '../src/held-questions.js'
import type { UncutSockets } from '../src/uncut-sockets.js'
import { UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, to } from './handoff-support.js'

/** The sender's side: `count N` for the count, then each reply's value (`failed` for a failed one). */
function senderInto(seen: unknown[], onReply?: (value: unknown) => void) {
  return {
    expect: (count: number) => void seen.push(`count ${count}`),
    reply: (made: BroadcastReply) => {
      seen.push(made.ok ? made.value : 'failed')
      if (made.ok) onReply?.(made.value)
    },
  }
}

export interface Asking {
  /** The question's timeout: 5000 by default. */
  timeout?: number
  /** Called after each reply is seen, with its value. */
  onReply?: (value: unknown) => void
}

/** What the sender saw, in order, of the question asked with `ask` (not an own one, ran). */
export function asking(ask: AskWithAck, { timeout = 5000, onReply }: Asking = {}): unknown[] {
  const seen: unknown[] = []
  const sender = senderInto(seen, onReply)
  ask(message('asked', []), to(['r']), timeout, sender.expect, sender.reply, undefined, true)
  return seen
}

export interface AskedInR {
  ask: AskWithAck
  uncut: UncutSockets
  timeout: number
  /** What the sender saw, in order. */
  seen: unknown[]
  /** Called after each reply is seen, with its value. */
  onReply?: (value: unknown) => void
  /** The rooms' adapter and its sockets: empty ones by default. */
  memory?: MemoryAdapter
  sockets?: FakeSockets
}

export function askInR({
  ask,
  uncut,
  timeout,
  seen,
  onReply,
  sockets = new FakeSockets(),
  memory = new MemoryAdapter(sockets),
}: AskedInR): GiveNow {
  const sender = senderInto(seen, onReply)
  return askHolding(
    {
      memory,
      sockets,
      ask,
      uncut,
      unread: new UnreadTakeovers(),
      warnings: new Warnings({ warn: () => undefined }),
    },
    { node: 'c', q: 1, ran: true },
    message('asked', []),
    to(['r']),
    timeout,
    sender.expect,
    sender.reply,
  )
}
