// The question the tests of askHolding ask: node c's first, the message `asked` to room r, its
// count and replies put in `seen`, on an adapter's parts of which only `ask` and `uncut` are the
// test's own.

import { MemoryAdapter } from '@parley/server'
import { type AskWithAck, askHolding, type GiveNow } from '../src/held-questions.js'
import type { UncutSockets } from '../src/uncut-sockets.js'
import { UnreadTakeovers } from '../src/unread-takeovers.js'
import { Warnings } from '../src/warnings.js'
import { FakeSockets, message, to } from './handoff-support.js'

export interface AskedInR {
  ask: AskWithAck
  uncut: UncutSockets
  timeout: number
  /** `count N` for the count, then each reply's value (`failed` for a failed one), in order. */
  seen: unknown[]
  /** Called after each reply is put in `seen`, with its value. */
  onReply?: (value: unknown) => void
  /** The rooms' adapter: an empty one by default. */
  memory?: MemoryAdapter
}

export function askInR({ ask, uncut, timeout, seen, onReply, memory }: AskedInR): GiveNow {
  return askHolding(
    {
      memory: memory ?? new MemoryAdapter(new FakeSockets()),
      ask,
      uncut,
      unread: new UnreadTakeovers(),
      warnings: new Warnings({ warn: () => undefined }),
    },
    { node: 'c', q: 1, ran: true },
    message('asked', []),
    to(['r']),
    timeout,
    (count) => seen.push(`count ${count}`),
    (made) => {
      seen.push(made.ok ? made.value : 'failed')
      if (made.ok) onReply?.(made.value)
    },
  )
}
