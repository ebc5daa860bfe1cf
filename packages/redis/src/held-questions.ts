// A broadcast with acks asked of this node's sockets, in order with the plain broadcasts for a
// socket joined without a cut whose tail is not read yet: those are held until the read (see
// uncut-sockets.ts), and a question asked at once would reach the session ahead of them.
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { BroadcastMessage, BroadcastOptions, BroadcastReply, MemoryAdapter } from '@parley/server'
import type { UncutSockets } from './uncut-sockets.js'
import type { Warnings } from './warnings.js'

/** What asking with holds needs. */
export interface AskParts {
  readonly memory: MemoryAdapter
  readonly uncut: UncutSockets
  readonly warnings: Warnings
}

/**
 * As `MemoryAdapter.broadcastWithAck`: `expect` hears every matching socket, those that hold
 * what reaches them included, before any reply. Those are asked once their tail is read, after
 * what they hold (`UncutSockets.holdQuestion`); one that leaves first, or no longer matches
 * `options` then, fails its reply (`PARLEY_DISCONNECTED`), as a socket that disconnects does.
 */
export function askHolding(
  parts: AskParts,
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
  only?: (id: string) => boolean,
): void {
  const { memory, uncut } = parts
  if (uncut.empty) {
    memory.broadcastWithAck(message, options, timeout, expect, reply, only)
    return
  }
  const later: string[] = []
  let now = 0
  // Replies before the count (a volatile emit dropped at once) wait for it: a count must come first.
  let early: BroadcastReply[] | undefined = []
  memory.broadcastWithAck(
    message,
    options,
    timeout,
    (count) => {
      now = count
    },
    (made) => {
      if (early) early.push(made)
      else reply(made)
    },
    (id) => {
      if (only && !only(id)) return false
      if (!uncut.holds(id)) return true
      later.push(id)
      return false
    },
  )
  expect(now + later.length)
  const replies = early
  early = undefined
  for (const made of replies) reply(made)
  const gone = () =>
    reply({ ok: false, error: new ParleyError(ErrorCode.DISCONNECTED, 'the socket has disconnected') })
  for (const id of later) {
    const question = {
      ask: () => {
        // Inside the takeover's read of the tail, which never rejects: a socket that throws
        // fails this one question alone.
        try {
          let asked = 0
          memory.broadcastWithAck(
            message,
            options,
            timeout,
            (count) => {
              asked = count
            },
            reply,
            (socket) => socket === id,
          )
          if (asked === 0) gone()
        } catch (err) {
          parts.warnings.warn(
            'uncut-delivery',
            'a broadcast for a socket taken over before its claim marker came back failed at its delivery, and is lost to its session',
            { err, event: message.name, socket: id },
          )
          gone()
        }
      },
      drop: gone,
    }
    if (!uncut.holdQuestion(id, question)) question.ask()
  }
}
