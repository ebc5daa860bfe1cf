// Asking a live node to adopt the sessions a drain handed off and nobody claimed (see
// `Adapter.askAdoption`): one request per node, for all of its sessions, and the wait for how
// many it took over.
import { MAX_TIMER_MS } from '@parley/protocol'
import type { Adoption, AdoptionAsk } from '@parley/server'
import type { AskParts } from './ask-handoff.js'
import { requestId } from './pending.js'
import type { AdoptRequest } from './wire.js'

/**
 * Asks `node` to adopt `sessions`; resolves with how many it took over, 0 when it would not, did
 * not answer within twice `requestTimeout` (its claims and takeovers each wait on Redis; at most
 * `MAX_TIMER_MS`), or left. The drain waits no longer than its own bound anyway: this only keeps
 * the pending request from outliving it. `says`: `node` is of a version that says it took the
 * request (`asked`) before any claim: `ask.taking` is called then; for a node that does not, at
 * once (it cannot tell, so it is taken at its word, as before). `ask.within` goes with the
 * request, for `node` to start no claim past it.
 */
export function askAdoption(
  parts: AskParts,
  node: string,
  sessions: readonly Adoption[],
  says: boolean,
  ask?: AdoptionAsk,
): Promise<number> {
  const id = requestId()
  const { pending } = parts
  const wait = Math.min(2 * parts.requestTimeout, MAX_TIMER_MS)
  // Called once: a node that said it again and again is heard once.
  let heard = false
  const taking = () => {
    if (heard) return
    heard = true
    try {
      ask?.taking()
    } catch {
      // The server's own callback: nothing of this request depends on it.
    }
  }
  return new Promise((resolve) => {
    const finish = (taken: number) => {
      clearTimeout(timer)
      pending.delete(id)
      resolve(taken)
    }
    const timer = setTimeout(() => finish(0), wait)
    pending.set(id, {
      answer: (from, packet) => {
        if (from !== node) return
        if (packet.k === 'asked') taking()
        else if (packet.k === 'adopted') finish(Math.min(packet.c, sessions.length))
      },
      gone: (from) => {
        if (from === node) finish(0)
      },
      cancel: () => finish(0),
    })
    const within = ask === undefined ? undefined : Math.min(Math.max(0, Math.round(ask.within)), MAX_TIMER_MS)
    const request: AdoptRequest = {
      n: parts.node,
      id,
      k: 'adopt',
      to: node,
      s: sessions.map(({ sid, params, left }) => [sid, { ...params }, Math.max(0, Math.round(left))]),
      ...(says && { a: true as const }),
      ...(within !== undefined && Number.isFinite(within) && { w: within }),
    }
    if (!says) taking()
    parts.publisher.publish(parts.channel, request, () => finish(0))
  })
}
