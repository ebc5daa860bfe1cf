// A drain asking live nodes to adopt the sessions nobody claimed (see `Adapter.askAdoption`):
// the shares, round-robin over the nodes; the wait for each node's word that it took its share;
// and the share of a node that said nothing (dead or stuck, still in the live set) asked of
// another.
import type { Adapter } from './adapter/adapter.js'
import type { Adoption } from './adapter/handoff.js'
import { safely, within } from './drain.js'

/**
 * The part of the adoption's wait (`ADOPT_WAIT_MS`) after which a node that has not said it took
 * its share is taken for silent, and the share asked of another node. A live node says so from
 * its subscriber before any claim: one round trip through Redis, milliseconds, however many
 * sessions it is given. A third leaves the other two thirds to the node asked again, its claims
 * bounded as the first node's were (see `ADOPT_CLAIMS_AT_ONCE`); a node that says it later still
 * claims what it can (one of two claims of a session wins, the other misses: no harm).
 */
export const ADOPT_TAKING_SHARE = 1 / 3

/** What an adoption round needs of the drain. */
export interface AdoptionRound {
  adapter: Adapter
  /** The live nodes that adopt (`Adapter.adopters`), in the adapter's order. */
  nodes: readonly string[]
  /** The sessions to ask for, in order. */
  sessions: readonly Adoption[]
  /** Whether `sid` still waits for a claim (not claimed, nor ended, since). */
  unclaimed: (sid: string) => boolean
  /** When the drain seals what is left (`performance.now()`). */
  deadline: number
  /** How long the adoption may take in all: its word's wait is `ADOPT_TAKING_SHARE` of it. */
  wait: number
}

/** What an adoption round did. */
export interface AdoptionOutcome {
  /** Sessions the nodes said they took over. */
  adopted: number
  /** The nodes that did not say in time that they took their share. */
  silent: string[]
  /** The sessions of their shares, still unclaimed then, asked of other nodes. */
  reasked: number
}

/**
 * Asks each node for its share; waits for every node's word that it took it, at most
 * `ADOPT_TAKING_SHARE` of `wait`; asks the still unclaimed sessions of the silent nodes' shares
 * of the nodes that are not silent (those that said so first); then waits for the answers of
 * every node that is not silent, until `deadline`. A silent node's answer that comes by then
 * still counts. Never rejects.
 */
export async function askToAdopt(round: AdoptionRound): Promise<AdoptionOutcome> {
  const { adapter, nodes, deadline } = round
  const started = performance.now()
  let adopted = 0
  const heard = new Set<string>()
  let allHeard: () => void = () => {}
  const everyWord = new Promise<void>((resolve) => {
    allHeard = resolve
  })
  const shares = split(round.sessions, nodes)
  if (shares.size === 0) return { adopted: 0, silent: [], reasked: 0 }
  const ask = (node: string, sessions: readonly Adoption[], taking: () => void) =>
    safely(() =>
      adapter.askAdoption?.(node, sessions, { within: deadline - performance.now(), taking }),
    ).then((taken) => {
      // Only a count: an adapter that answers anything else adopted nothing.
      if (typeof taken === 'number' && Number.isSafeInteger(taken) && taken > 0) adopted += taken
    })
  const answers = new Map<string, Promise<void>>()
  for (const [node, sessions] of shares) {
    answers.set(
      node,
      ask(node, sessions, () => {
        heard.add(node)
        if (heard.size === shares.size) allHeard()
      }),
    )
  }
  await within(everyWord, round.wait * ADOPT_TAKING_SHARE, undefined)
  const silent = [...shares.keys()].filter((node) => !heard.has(node))
  const waited = [...answers].filter(([node]) => heard.has(node)).map(([, answer]) => answer)
  // Said first, then not asked: a node asked nothing has not proved itself, nor failed to.
  const others = [...heard, ...nodes.filter((node) => !shares.has(node))]
  const elapsed = performance.now() - started
  const again = silent
    .flatMap((node) => shares.get(node) ?? [])
    .filter(({ sid }) => round.unclaimed(sid))
    .map((session) => ({ ...session, left: session.left - elapsed }))
    .filter(({ left }) => left > 0)
  const reasked = others.length > 0 ? again.length : 0
  if (reasked > 0) {
    for (const [node, sessions] of split(again, others)) waited.push(ask(node, sessions, () => {}))
  } else {
    // Nobody else to ask: the silent nodes' own answers are all there is to wait for.
    waited.push(...silent.map((node) => answers.get(node) ?? Promise.resolve()))
  }
  await within(Promise.all(waited), deadline - performance.now(), undefined)
  return { adopted, silent, reasked }
}

/** `sessions` dealt round-robin over `nodes`, in order: each node's share. */
function split(sessions: readonly Adoption[], nodes: readonly string[]): Map<string, Adoption[]> {
  const shares = new Map<string, Adoption[]>()
  let turn = 0
  for (const session of sessions) {
    const node = nodes[turn++ % nodes.length]
    if (node === undefined) break
    const share = shares.get(node) ?? []
    share.push(session)
    shares.set(node, share)
  }
  return shares
}
