// A cluster query (`fetchSockets`, `socketsJoin`, `socketsLeave`, `disconnectSockets`) sent to
// the other live nodes, and the wait for their answers: bounded by requestTimeout, with what
// came by then, and counted and logged when some node did not answer.
import { type Pending, type PendingRequests, requestId } from './pending.js'
import type { Publisher } from './publish.js'
import type { DistributiveOmit } from './remote.js'
import type { Warnings } from './warnings.js'
import type { RequestPacket, ResponsePacket } from './wire.js'

/** What a query needs of the adapter. */
export interface QueryParts {
  /** This node's id. */
  readonly node: string
  readonly pending: PendingRequests
  readonly publisher: Publisher
  /** The channel every node reads requests on. */
  readonly channel: string
  readonly requestTimeout: number
  readonly warnings: Warnings
  /** Counts one more request left incomplete (`stats.incompleteRequests`): the count now. */
  readonly incomplete: () => number
}

/** Runs a query on the live nodes `others`; resolves with the answers that came in time. */
export function query(
  parts: QueryParts,
  others: readonly string[],
  request: DistributiveOmit<RequestPacket, 'n' | 'id'>,
): Promise<ResponsePacket[]> {
  if (others.length === 0) return Promise.resolve([])
  const { pending, requestTimeout, warnings } = parts
  const id = requestId()
  return new Promise((resolve) => {
    const answers: ResponsePacket[] = []
    const waiting = new Set(others)
    const finish = () => {
      clearTimeout(timer)
      pending.delete(id)
      resolve(answers)
    }
    const incomplete = (why: string) => {
      // The PUBLISH may be given up after the query's own timer ended it: counted once.
      if (!pending.has(id)) return
      const incompleteRequests = parts.incomplete()
      warnings.warn('request', `a cluster query went unanswered by some nodes: ${why}`, {
        query: request.k,
        incompleteRequests,
      })
      finish()
    }
    // Until Redis took the PUBLISH, no node could answer: a timeout then is Redis's doing.
    let sent = false
    // The verdict waits one turn of the event loop, as a broadcast's count does: an answer that
    // reached this node in time is read first, even when this node was held past the bound.
    const timer = setTimeout(
      () =>
        setImmediate(() =>
          incomplete(
            sent
              ? `${waiting.size} did not answer within ${requestTimeout} ms`
              : `Redis did not answer its PUBLISH within ${requestTimeout} ms`,
          ),
        ),
      requestTimeout,
    )
    // A node that joined after this node's last view of the live set got the query too: its
    // answer counts if it comes before the others' (asked, it answers once).
    const asked = new Set(others)
    const waits: Pending = {
      answer: (node, packet) => {
        if (!waiting.delete(node)) {
          if (asked.has(node)) return
          asked.add(node)
        }
        answers.push(packet)
        if (waiting.size === 0) finish()
      },
      gone: (node) => {
        if (waiting.delete(node) && waiting.size === 0) finish()
      },
      cancel: finish,
    }
    pending.set(id, waits)
    parts.publisher.publish(
      parts.channel,
      { ...request, n: parts.node, id },
      (why) => incomplete(why),
      () => {
        sent = true
      },
    )
  })
}
