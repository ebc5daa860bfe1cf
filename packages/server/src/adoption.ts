// A drain asking live nodes to adopt the sessions nobody claimed (see `Adapter.askAdoption`):
// the shares, round-robin over the nodes; the wait for each node's word that it took its share;
// the share of a node that said nothing (dead or stuck, still in the live set) asked of another;
// and what a node that took fewer than asked (its close begun after it was listed) left, asked
// of a node that adopted.
import type { Adapter } from './adapter/adapter.js'
import type { Adoption } from './adapter/handoff.js'
import { ADOPT_WAIT_MS, safely, within } from './drain.js'

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
  /**
   * How long the adoption may take in all: its word's wait is `ADOPT_TAKING_SHARE` of it, or of
   * `ADOPT_WAIT_MS` when longer (a wait sized for many sessions: see `adoptionWait`).
   */
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
  /**
   * The nodes that answered that they took over fewer sessions than asked, some of those still
   * unclaimed then (a node whose close began after it was listed adopts none).
   */
  short: number
  /** The sessions of their answers, still unclaimed then, asked of a node that adopted. */
  reaskedShort: number
}

/** A bound on the rounds of the final wait: each ends with an answer, or the deadline. */
const MOST_WAITS = 10_000

/**
 * Asks each node for its share; waits for every node's word that it took it, at most
 * `ADOPT_TAKING_SHARE` of `wait`; asks the still unclaimed sessions of the silent nodes' shares
 * of the nodes that are not silent (those that said so first); then waits for the answers of
 * every node that is not silent, until `deadline`. A silent node's answer that comes by then
 * still counts. A node that answers fewer than it was asked (closing, say: it adopts none) has
 * the sessions of that answer still unclaimed asked of a node that adopted some (or of one asked
 * nothing yet; with neither, they wait for a node to adopt), while the deadline leaves time. No
 * session is asked more than twice: two nodes closing together cannot pass it back and forth.
 * Never rejects.
 */
export async function askToAdopt(round: AdoptionRound): Promise<AdoptionOutcome> {
  const { adapter, nodes, deadline } = round
  const started = performance.now()
  const shares = split(round.sessions, nodes)
  if (shares.size === 0) return { adopted: 0, silent: [], reasked: 0, short: 0, reaskedShort: 0 }
  let adopted = 0
  const heard = new Set<string>()
  /** Nodes that took over sessions: where a short answer's sessions go. */
  const took = new Set<string>()
  /** Nodes that took over none of what they were asked (closing, say): asked nothing more. */
  const refused = new Set<string>()
  /** Nodes whose answer left sessions to ask again. */
  const short = new Set<string>()
  /** Sessions asked a second time: never a third. */
  const again = new Set<string>()
  /** Sessions of short answers, waiting for a node that took some. */
  let held: Adoption[] = []
  let reaskedShort = 0
  /** The asks whose answers the round waits for. */
  const waiting = new Set<Promise<void>>()
  let allHeard: () => void = () => {}
  const everyWord = new Promise<void>((resolve) => {
    allHeard = resolve
  })
  const hear = (node: string) => {
    heard.add(node)
    if ([...shares.keys()].every((asked) => heard.has(asked))) allHeard()
  }
  /** `sessions` still worth asking a second time: unclaimed, and never asked twice. */
  const open = (sessions: readonly Adoption[]) =>
    sessions.filter(({ sid }) => !again.has(sid) && round.unclaimed(sid))
  /** `sessions` as they are asked now: what is left of their windows; none past the deadline. */
  const now = (sessions: readonly Adoption[]) => {
    if (deadline - performance.now() <= 0) return []
    const elapsed = performance.now() - started
    return sessions
      .map((session) => ({ ...session, left: session.left - elapsed }))
      .filter(({ left }) => left > 0)
  }
  const ask = (node: string, sessions: readonly Adoption[], taking: () => void) => {
    const answer = safely(() =>
      adapter.askAdoption?.(node, sessions, { within: deadline - performance.now(), taking }),
    ).then((answered) => {
      // Only a count: an adapter that answers anything else adopted nothing.
      const taken =
        typeof answered === 'number' && Number.isSafeInteger(answered) && answered > 0 ? answered : 0
      adopted += taken
      // An answer is a word too: the node is there.
      hear(node)
      if (taken > 0) took.add(node)
      else if (sessions.length > 0) refused.add(node)
      if (taken < sessions.length) {
        const left = open(sessions)
        if (left.length > 0) short.add(node)
        held.push(...left)
      }
      sendHeld()
    })
    waiting.add(answer)
    void answer.finally(() => waiting.delete(answer))
    return answer
  }
  // What short answers left, asked of the nodes that took some, else of those asked nothing;
  // with neither yet, kept for the first node that takes some.
  const sendHeld = () => {
    held = open(held)
    const sessions = now(held)
    if (sessions.length === 0) return
    const adopters = [...took].filter((node) => !refused.has(node))
    const to = adopters.length > 0 ? adopters : nodes.filter((node) => !shares.has(node))
    if (to.length === 0) return
    held = []
    for (const { sid } of sessions) again.add(sid)
    reaskedShort += sessions.length
    for (const [node, share] of split(sessions, to)) void ask(node, share, () => {})
  }
  const answers = new Map<string, Promise<void>>()
  for (const [node, sessions] of shares)
    answers.set(
      node,
      ask(node, sessions, () => hear(node)),
    )
  // A third of a second at most, however long the wait for claims: the word comes before any.
  await within(everyWord, Math.min(round.wait, ADOPT_WAIT_MS) * ADOPT_TAKING_SHARE, undefined)
  const silent = [...shares.keys()].filter((node) => !heard.has(node))
  // Said first, then not asked: a node asked nothing has not proved itself, nor failed to. One
  // that took none of its own share is asked nothing more.
  const others = [...heard, ...nodes.filter((node) => !shares.has(node))].filter((node) => !refused.has(node))
  const quiet = now(open(silent.flatMap((node) => shares.get(node) ?? [])))
  const reasked = others.length > 0 ? quiet.length : 0
  if (reasked > 0) {
    // Their own answers are waited for no longer: the sessions are another node's to take.
    for (const node of silent) {
      const answer = answers.get(node)
      if (answer) waiting.delete(answer)
    }
    for (const { sid } of quiet) again.add(sid)
    for (const [node, sessions] of split(quiet, others)) void ask(node, sessions, () => {})
  }
  // Nobody else to ask: the silent nodes' own answers are all there is to wait for.
  for (let turn = 0; turn < MOST_WAITS && waiting.size > 0; turn++) {
    const left = deadline - performance.now()
    if (left <= 0) break
    await within(Promise.race(waiting), left, undefined)
  }
  return { adopted, silent, reasked, short: short.size, reaskedShort }
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
