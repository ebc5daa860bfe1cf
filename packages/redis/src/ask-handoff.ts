// Asking another live node to hand off a session whose client resumed here over WebSocket
// (see `Adapter.requestHandOff`), and the wait for its word: first that it got the request,
// then whether the handoff was stored.
import { MAX_TIMER_MS } from '@parley/protocol'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { requestId } from './pending.js'
import type { QueryParts } from './query.js'
import type { HandOffRequest } from './wire.js'

/**
 * The longest wait (capped by `requestTimeout`) for a node asked to hand a session off to say
 * that it got the request. It answers from its subscriber at once, before any work: a node
 * that does not was killed and has not left the live set yet, and its client, waiting on this
 * node, should not wait for that.
 */
export const HANDOFF_ASKED_MS = 1000

/** What asking needs of the adapter: the parts of a query but its count and its warnings. */
export type AskParts = Pick<QueryParts, 'node' | 'pending' | 'publisher' | 'channel' | 'requestTimeout'>

/**
 * Asks `node` to hand off `sid` for a resume under the route parameters `params` (see
 * `HandOffRequest.p`); resolves with its answer, false when it said no or did not answer in time
 * (see `RedisAdapter.requestHandOff`). `says`: `node` is of a version that says it got the
 * request (`asked`) before any work.
 */
export function askHandOff(
  parts: AskParts,
  node: string,
  sid: string,
  says: boolean,
  params?: Record<string, string>,
): Promise<boolean> {
  const id = requestId()
  const { pending, requestTimeout } = parts
  // Twice a requestTimeout past 2^30 ms is past what a timer holds (it would fire at once).
  const answerWithin = Math.min(2 * requestTimeout, MAX_TIMER_MS)
  return new Promise((resolve) => {
    const finish = (ok: boolean) => {
      timer.clear()
      pending.delete(id)
      resolve(ok)
    }
    const unanswered = () => finish(false)
    // Each wait's verdict comes a turn after its timer (see `AnswersFirstTimer`): after a stall
    // of this node's thread past it, the node's word that came meanwhile is read first, rather
    // than the resume refused while that node hands the session off for it.
    let timer = new AnswersFirstTimer(
      says ? Math.min(HANDOFF_ASKED_MS, requestTimeout) : answerWithin,
      unanswered,
    )
    // Only the first `asked` starts the wait for the answer: a node that said it again and again
    // would otherwise hold the resume for as long as it went on.
    let heard = false
    pending.set(id, {
      answer: (from, packet) => {
        if (from !== node) return
        if (packet.k === 'handoff') finish(packet.ok)
        else if (packet.k === 'asked' && !heard) {
          heard = true
          timer.clear()
          timer = new AnswersFirstTimer(answerWithin, unanswered)
        }
      },
      gone: (from) => {
        if (from === node) finish(false)
      },
      cancel: () => finish(false),
    })
    const request: HandOffRequest = {
      n: parts.node,
      id,
      k: 'handoff',
      to: node,
      sid,
      ...(says && { a: true as const }),
      ...(params !== undefined && { p: params }),
    }
    parts.publisher.publish(parts.channel, request, () => finish(false))
  })
}
