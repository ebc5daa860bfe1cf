// A cluster query (`fetchSockets`, `socketsJoin`, `socketsLeave`, `disconnectSockets`) sent to
// the other live nodes, and the wait for their answers: bounded by requestTimeout, with what
// came by then, and counted and logged when some node did not answer. Redis delivers a PUBLISH
// only to the connections subscribed as it runs it: a live node whose subscriber was
// reconnecting (Redis restarted, its link dropped) never hears the query, nor this node the
// answers sent while its own was. Each says when it is subscribed again, and the query asks
// again, within the same bound, each node it still waits for. A node that drops out of the live
// set while the query waits is not waited for: one that said goodbye took its sockets with it,
// but one whose record lapsed (its heartbeats late, Redis restarted empty) may still hold
// sockets, and the short list is counted and logged as a timeout is, naming it.
import { AnswersFirstTimer } from './answers-first-timer.js'
import { type Pending, type PendingRequests, requestId } from './pending.js'
import type { Publisher } from './publish.js'
import type { DistributiveOmit } from './remote.js'
import { shortReasons } from './short-reasons.js'
import type { Warnings } from './warnings.js'
import type { QueryPacket, ResponsePacket } from './wire.js'

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
  request: DistributiveOmit<QueryPacket, 'n' | 'id' | 'to'>,
): Promise<ResponsePacket[]> {
  if (others.length === 0) return Promise.resolve([])
  const { pending, requestTimeout, warnings } = parts
  const id = requestId()
  return new Promise((resolve) => {
    const answers: ResponsePacket[] = []
    const waiting = new Set(others)
    /** Nodes whose record lapsed while the query waited for them (see `gone`). */
    const lapsed: string[] = []
    const finish = () => {
      timer.clear()
      pending.delete(id)
      resolve(answers)
    }
    /** `why` the query ends short, if it does, with the nodes that lapsed said beside it. */
    const incomplete = (why?: string) => {
      // The PUBLISH may be given up after the query's own timer ended it: counted once.
      if (!pending.has(id)) return
      const incompleteRequests = parts.incomplete()
      const reasons = shortReasons(why, lapsed, 'answering')
      warnings.warn('request', `a cluster query went unanswered by some nodes: ${reasons}`, {
        query: request.k,
        ...(lapsed.length > 0 && { lapsed: [...lapsed] }),
        incompleteRequests,
      })
      finish()
    }
    /** Every node asked answered or left: whole, unless one of them lapsed. */
    const complete = () => {
      if (lapsed.length > 0) incomplete()
      else finish()
    }
    // Until Redis took the PUBLISH, no node could answer: a timeout then is Redis's doing.
    let sent = false
    // The verdict waits one turn of the event loop (see `AnswersFirstTimer`), as a broadcast's
    // count does: an answer that reached this node in time is read first, even when this node
    // was held past the bound (see stalled-answers.test.ts).
    const timer = new AnswersFirstTimer(requestTimeout, () =>
      incomplete(
        sent
          ? `${waiting.size} did not answer within ${requestTimeout} ms`
          : `Redis did not answer its PUBLISH within ${requestTimeout} ms`,
      ),
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
        if (waiting.size === 0) complete()
      },
      // Not waited for any more: a node that said goodbye closed with its sockets; one that
      // lapsed may still hold some, which this list lacks, and that must not pass unsaid.
      gone: (node, lapse) => {
        if (!waiting.delete(node)) return
        if (lapse) lapsed.push(node)
        if (waiting.size === 0) complete()
      },
      // Asked again of that node alone (`to`): the others, which ran it, do not run it twice (a
      // node of an earlier version does, and its second answer is not taken, see `answer`).
      // Not sent, it is not counted here: the query waits for its bound, as for a silent node.
      heard: (node) => {
        const again = node === parts.node ? [...waiting] : waiting.has(node) ? [node] : []
        for (const to of again) parts.publisher.publish(parts.channel, { ...request, n: parts.node, id, to })
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
