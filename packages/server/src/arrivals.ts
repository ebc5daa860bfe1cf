import {
  CloseReason,
  type EventsMap,
  type HelloPacket,
  MAX_TIMER_MS,
  type Packet,
  PacketType,
} from '@parley/protocol'
import type { Adapter } from './adapter/adapter.js'
import { type Adoption, type ClaimAnswer, claimMissed } from './adapter/handoff.js'
import type { AdapterFailures } from './adapter-failures.js'
import { safely } from './drain.js'
import type { Ending } from './ended-sessions.js'
import { GoodbyesOnArrival } from './goodbyes-on-arrival.js'
import type { HandoffLogs } from './handoff-logs.js'
import { type HandshakeRequest, SocketHandshake } from './handshake.js'
import { ROUTED_HEADER, SENT_ON } from './http/routing.js'
import { inBatches } from './in-batches.js'
import { inTurn } from './in-turn.js'
import type { ResolvedOptions } from './options.js'
import { RecentSessions } from './recent-sessions.js'
import {
  arriving,
  claimedElsewhere,
  claimUnsettled,
  heldElsewhere,
  keptElsewhere,
  type Refusal,
  shuttingDown,
} from './refusals.js'
import { routeParams } from './route-params.js'
import type { Session } from './session.js'
import type { Takeover } from './takeover.js'
import type { Transport } from './transports/transport.js'
import type { Handshake } from './types.js'
import { UnsettledResumes } from './unsettled-resumes.js'

/**
 * The most adoption claims (see `LocalSockets.adopt`) a node runs at once. Each claim and its
 * takeover send a few commands to the adapter's store and wait for the old node's seal; a node
 * asked to adopt thousands would otherwise send them all at once, past what the adapter keeps
 * unanswered or queued (`@parley/redis` refuses commands past `MAX_UNANSWERED_COMMANDS` and
 * `MAX_QUEUED_COMMANDS`, its heartbeat among them), and each refused claim leaves its session to
 * be sealed unclaimed: on one Redis, 3000 at once had none adopted, 64 at a time about half
 * within the drain's second. 64 keeps the store's round trips busy (a claim waits mostly on them,
 * not on this process) while a few hundred claims fit in that second, in order: those the wait
 * cannot hold are the last ones, not a random half.
 */
export const ADOPT_CLAIMS_AT_ONCE = 64

/**
 * How many sessions an adoption claims in one call of an adapter that takes several
 * (`Adapter.claimSessions`), `ADOPT_CLAIMS_AT_ONCE` under way in all, as one by one: the next
 * batch is claimed once that many have room. Each claim is a command the adopter sends and reads
 * back, and under load that cost, not Redis', bounds how many a drain's wait holds; half the
 * bound, so that the takeovers of one batch go on while the next is claimed.
 */
export const ADOPT_CLAIM_BATCH = ADOPT_CLAIMS_AT_ONCE / 2

/** What a resume's claim of a session from another node needs from the server. */
export interface ArrivalsContext<L extends EventsMap, E extends EventsMap, D> {
  adapter: Adapter
  /** The `handoff` option: false, no session is asked of another node (see `requestHandOff`). */
  handoff: ResolvedOptions['handoff']
  handoffLogs: HandoffLogs
  adapterFailures: AdapterFailures
  /** The recovery window, in ms: how long a client is told to try again (see `UnsettledResumes`). */
  recoveryWindow: number
  /** How long a session that left this node is remembered as gone elsewhere, in ms. */
  movedAwayTtl: number
  /** How many such sessions are remembered at most (the oldest forgotten first). */
  maxMovedAway: number
  /** The takeover of a session once claimed. */
  takeover: Takeover<L, E, D>
  /** The session `sid` names on this node, if it is alive here. */
  sessionFor: (sid: string) => Session | undefined
  /** Whether `sid` ended here lately (its CLOSE is kept for a resume). */
  endedHere: (sid: string) => boolean
  /** How `sid` ended, here or on another node, if it did lately. */
  endOf: (sid: string) => Promise<Ending | undefined>
  /** Whether this node failed to reach `node` a moment ago. */
  unreachableLately: (node: string) => boolean
  /**
   * True from the first moment of the instance's close (see `ParleyServer.closeBegins`), or once
   * `drain()` or `close()` has begun.
   */
  closing: () => boolean
  /** True once `close()` has run. */
  closed: () => boolean
}

/**
 * Sessions arriving on this node from another one: a resume (or a goodbye, see
 * `handedOffGoodbye`) of a session this node does not hold claims it from the node that handed
 * it off (a WebSocket resume asks a live node for it first, see `requestHandOff`), then takes it
 * over (see `Takeover`). What is kept here is what a handshake, a drain and a move need to know
 * of them: which are under way (a drain waits for them, a move does not start one), which
 * sessions left this node for another, and the goodbyes that crossed them.
 */
export class Arrivals<L extends EventsMap, E extends EventsMap, D> {
  readonly #context: ArrivalsContext<L, E, D>
  /**
   * Resumes of sessions another node handed off, from their claim to the end of their takeover
   * (see `Departures.drain`): a claim still under way may yet win.
   */
  readonly #takingOver = new Set<Promise<Refusal | null | undefined>>()
  /**
   * Sids of those whose claim won, until the takeover is over: past the old node's tail too, the claim may
   * still not stand (see `SessionClaim.confirm`), and the `restored` listeners are not there yet.
   */
  readonly #arriving = new Set<string>()
  /** Relayed goodbyes for sessions still being claimed or taken over here (see `relayedGoodbye`). */
  readonly #goodbyesOnArrival = new GoodbyesOnArrival()
  /** Resumes the adapter could not settle, told to try again for at most the recovery window. */
  readonly #unsettledResumes: UnsettledResumes
  /**
   * Sessions that left this node lately, taken over by another one, by sid (see `#claimAndTakeOver`):
   * as long as a session ended here is kept, or until one comes back (see `Takeover.run`).
   */
  readonly #movedAway: RecentSessions<true>

  constructor(context: ArrivalsContext<L, E, D>) {
    this.#context = context
    this.#unsettledResumes = new UnsettledResumes(context.recoveryWindow)
    this.#movedAway = new RecentSessions(context.movedAwayTtl, context.maxMovedAway)
  }

  /** True while `sid`'s claim won here and its takeover is not over. */
  arriving(sid: string): boolean {
    return this.#arriving.has(sid)
  }

  /** The claims and takeovers under way, each settled once it is over (see `Departures.drain`). */
  underWay(): Promise<Refusal | null | undefined>[] {
    return [...this.#takingOver]
  }

  /**
   * See `ParleyServer.requestHandOff`: a WebSocket resume's first step, before its claim. Not
   * with `handoff: false`, nor once this node is closing (it claims nothing then).
   */
  async requestHandOff(node: string, sid: string, params: Record<string, string>): Promise<boolean> {
    const { adapter, handoff, closing, adapterFailures } = this.#context
    if (!handoff || closing()) return false
    try {
      // Read inside the guard: a getter that throws (its store's client gone) is a failed ask,
      // as a rejection is, not a failed handshake. The registration read both already (see
      // `checkHandoffBound`): this is a member that could be read then and no longer can.
      const ask = adapter.requestHandOff
      if (!ask || !adapter.claimSession) return false
      // The resume's route parameters: `node` hands off no session of another tenant's for it.
      return await ask.call(adapter, node, sid, { ...params })
    } catch (err) {
      adapterFailures.ask.record({ err })
      return false
    }
  }

  /**
   * `sid` was taken over by another node: a resume of it relayed here later, finding nothing to
   * claim, tells its client to try again, and that try is sent there (see `#claimAndTakeOver`).
   */
  movedAway(sid: string): void {
    this.#movedAway.add(sid, true)
  }

  /** `sid` was taken over here: it lives on this node, not elsewhere (see `Takeover.run`). */
  backHere(sid: string): void {
    this.#movedAway.delete(sid)
  }

  /**
   * A resume of `sid`, a session this node neither holds nor ended lately: claimed from a node's
   * handoff and taken over (see `ParleyServer.handshake`, and `#claimAndTakeOver` for the answers).
   */
  resume(
    sid: string,
    transport: Transport,
    hello: HelloPacket,
    handshake: Handshake,
    request: HandshakeRequest,
    left: string | undefined,
  ): Promise<Refusal | null | undefined> {
    return this.#arriveTracked(sid, () =>
      this.#claimAndTakeOver(sid, transport, hello, handshake, request, left),
    )
  }

  /**
   * A resume of `sid`, a session this node does not hold: claims it from a node's handoff and
   * takes it over (`toEnd`: only to end it, see `Takeover.run`). Undefined when there was none to
   * claim (or it ended on its old node after the claim: see `Takeover.run`) and the client may get a
   * new session, or when the session is here now (another resume of it took it over meanwhile)
   * and this one resumes it; else the answer.
   */
  async #claimAndTakeOver(
    sid: string,
    transport: Transport,
    hello: HelloPacket,
    handshake: Handshake,
    request: HandshakeRequest,
    left: string | undefined,
    toEnd = false,
  ): Promise<Refusal | null | undefined> {
    const context = this.#context
    let claim = await this.#claim(sid, handshake.params)
    // Nothing stored, and the store names the session's node now: the node the resume saw it
    // leave kept it (its move given up on), or another took it over. Either way the client is
    // told to try again (below), in words that say which, and its next try is sent there.
    let stayed = false
    // The live node the store names, for a resume that saw the session nowhere (below).
    let holder: string | undefined
    if (claimMissed(claim) && claim.missed === 'owned') {
      stayed = claim.node === left
      // Not one this node failed to reach a moment ago: killed, a node stays live for a few
      // heartbeats, and its clients start anew at once, as they always did.
      if (claim.live && !context.unreachableLately(claim.node)) holder = claim.node
      claim = null
    }
    // Taken over here while this claim was on its way: another resume of the same session (a
    // WebSocket probe beside an HTTP resume, both sent to this node) claimed it first, and its
    // takeover has the session in the maps by now. This resume found neither it here nor (once
    // the takeover read the handoff back) anything to claim: a new session would stand beside
    // the restored one. It resumes the session here instead, as any resume that finds it here
    // (see `ParleyServer.handshake`), which tells it to try again while the takeover is not over.
    if (
      (claim === null || typeof claim === 'string' || claimMissed(claim)) &&
      context.sessionFor(sid) !== undefined
    ) {
      this.#unsettledResumes.settled(sid)
      return undefined
    }
    // No try of the client's can take the session over (its snapshot cannot be read, or the node
    // whose claim won left with it), or none of this one's (it opened under other route
    // parameters: not this client's, and left claimable for its own): a new session now,
    // whatever the resume saw on its way here.
    if (claimMissed(claim)) {
      this.#unsettledResumes.settled(sid)
      if (claim.missed === 'unreadable') context.handoffLogs.unrestorable.record({ err: claim.error })
      if (context.closing()) return shuttingDown()
      return transport.open ? undefined : null
    }
    // Relayed here as to its owner by a node that looked the owner up before this node handed
    // the session to another one (that node asked for it first, and its takeover is done): the
    // session lives there. A new session here would leave it behind; the client tries again,
    // and its next try is sent there.
    const movedAway = request.headers[ROUTED_HEADER] === '1' && this.#movedAway.get(sid) === true
    // Seen leaving its node, yet nothing is left to claim: another node's claim came first (a
    // resume of the same session racing this one, which reached that node), and its takeover is
    // over. A new session here would leave that one behind; the client tries again, and its next
    // try is sent there.
    // Either way, unless the session ended on its new node meanwhile (or on its old one, its
    // snapshot withdrawn): then the client hears that, as for any ended session (see
    // `ParleyServer.handshake`), where told to try again it would try until the recovery window
    // ran out.
    // Or seen nowhere on its way here (the look-up of its owner failed, or read no record at that
    // moment), yet the store names a live node as the session's: a new session here would leave
    // that one behind, with what its client has not received. The client tries again, and its
    // next try is sent there.
    const seenLeaving = movedAway || left !== undefined
    let livesElsewhere = false
    if (claim === null && (seenLeaving || holder !== undefined) && !(await context.endOf(sid))) {
      livesElsewhere = !seenLeaving
      claim = 'elsewhere'
    }
    // Told to try again for at most the recovery window, after which the session cannot be
    // alive anywhere: then a new one, as for an unknown session (see `UnsettledResumes`).
    const unsettled = claim === 'retry' || claim === 'elsewhere'
    if (unsettled && this.#unsettledResumes.tryAgain(sid)) {
      if (context.closing()) return shuttingDown()
      if (!transport.open) return null
      // Taken over here already (a try the client made after it gave up on the first), or by
      // another node (the store answered: the claim was lost, not unsettled).
      if (this.#arriving.has(sid)) return arriving()
      if (claim === 'retry') return claimUnsettled()
      if (livesElsewhere) return heldElsewhere()
      return stayed ? keptElsewhere() : claimedElsewhere()
    }
    this.#unsettledResumes.settled(sid)
    if (claim !== null && typeof claim === 'object') {
      // Won after `close` ended every session here (the claim outlasted the drain's wait):
      // taken over, the session would stay on a closed node, detached until the recovery
      // window ends, while its client starts anew elsewhere. Given back, nothing is left here.
      if (context.closed()) {
        context.takeover.giveBack(claim)
        context.handoffLogs.afterClose.record({ socket: claim.snapshot.id })
        return transport.open ? shuttingDown() : null
      }
      this.#arriving.add(sid)
      try {
        return await context.takeover.run(claim, transport, hello, handshake, toEnd)
      } finally {
        this.#arriving.delete(sid)
      }
    }
    if (context.closing()) return shuttingDown()
    if (!transport.open) return null
    // Sent on by a draining node, but another node claimed the session first (a retry that
    // reached this node after the live nodes changed): a new session here would leave that one
    // behind. The client tries again, and the draining node sends it to the claimer.
    if (request.headers[ROUTED_HEADER] === SENT_ON) return claimedElsewhere()
    return undefined
  }

  /**
   * `#arrive`, tracked from the claim on, not from its win: a drain that begins while the claim
   * is under way waits for it too, and hands on the session it wins (see `Departures.drain`).
   * None starts once the node is closing, so what the drain waits for only shrinks.
   */
  #arriveTracked(
    sid: string,
    takeOver: () => Promise<Refusal | null | undefined>,
    goodbye = false,
  ): Promise<Refusal | null | undefined> {
    const arrival = this.#arrive(sid, takeOver, goodbye)
    this.#takingOver.add(arrival)
    void arrival.finally(() => this.#takingOver.delete(arrival)).catch(() => {})
    return arrival
  }

  /**
   * `takeOver`, a resume's claim and takeover of `sid`, then the goodbye its client sent meanwhile
   * through the node the session left, if one came (see `relayedGoodbye`), or came with it
   * (`goodbye`, see `handedOffGoodbye`).
   */
  async #arrive(
    sid: string,
    takeOver: () => Promise<Refusal | null | undefined>,
    goodbye = false,
  ): Promise<Refusal | null | undefined> {
    const over = this.#goodbyesOnArrival.begin(sid)
    if (goodbye) this.#goodbyesOnArrival.keep(sid)
    try {
      return await takeOver()
    } finally {
      const session = over() ? this.#context.sessionFor(sid) : undefined
      if (session) endByGoodbye(session, [GOODBYE])
    }
  }

  /** See `ParleyServer.relayedGoodbye`. */
  relayedGoodbye(sid: string, packets: readonly Packet[]): boolean {
    const goodbye = packets.some((packet) => packet.type === PacketType.CLOSE)
    if (goodbye ? this.#goodbyesOnArrival.keep(sid) : this.#arriving.has(sid)) return true
    const session = this.#context.sessionFor(sid)
    if (!session) return this.#context.endedHere(sid)
    if (goodbye) endByGoodbye(session, packets)
    return true
  }

  /** See `ParleyServer.handedOffGoodbye`. */
  async handedOffGoodbye(
    sid: string,
    packets: readonly Packet[],
    transport: Transport,
    request: HandshakeRequest,
  ): Promise<boolean> {
    if (!packets.some((packet) => packet.type === PacketType.CLOSE)) return true
    if (this.relayedGoodbye(sid, packets)) return true
    if (this.#context.closing()) return false
    const hello: HelloPacket = { type: PacketType.HELLO, sid }
    const handshake = new SocketHandshake(request, undefined, transport.name)
    await safely(() =>
      this.#arriveTracked(
        sid,
        () => this.#claimAndTakeOver(sid, transport, hello, handshake, request, undefined, true),
        true,
      ),
    )
    return true
  }

  /**
   * See `LocalSockets.adopt`: each session claimed and taken over without a client (`transport`
   * makes a closed transport for each: none is attached), kept for its client's resume for what
   * is left of its window. The claims run in order, `ADOPT_CLAIMS_AT_ONCE` at a time (with
   * `Adapter.claimSessions`, `ADOPT_CLAIM_BATCH` to a call, see `inBatches`), none started past
   * `within` ms from now. Resolves with how many were taken over; 0 at once with
   * handoff off or once this node is closing (it claims nothing then: the draining node seals
   * them as before). Never rejects.
   */
  async adopt(sessions: readonly Adoption[], transport: () => Transport, within?: number): Promise<number> {
    const { handoff, closing, recoveryWindow, adapter } = this.#context
    if (!handoff || closing() || !Array.isArray(sessions)) return 0
    // What each session's `left` counts from: the claims run in turns, and what they wait for
    // here is spent of their clients' windows too (see `#adoptOne`).
    const asked = performance.now()
    // Past what the draining node waits, it has sealed them: a claim then would take a session
    // over late (what was sent to it since the seal lost), as its client's own resume would.
    const until =
      typeof within === 'number' && Number.isFinite(within)
        ? performance.now() + within
        : Number.POSITIVE_INFINITY
    // What an adapter of the application's hands over is read as untrusted: an entry that is no
    // adoption, a sid that is none, or no time left adopts nothing. Never kept past this node's
    // own window, nor past what a timer holds (one past it would fire at once).
    const read = (entry: unknown): Adoption | undefined => {
      if (typeof entry !== 'object' || entry === null) return undefined
      const { sid, params, left } = entry as Partial<Record<keyof Adoption, unknown>>
      if (typeof sid !== 'string' || sid === '' || typeof left !== 'number' || !(left > 0)) return undefined
      return { sid, params: routeParams(params), left: Math.min(left, recoveryWindow, MAX_TIMER_MS) }
    }
    // Tracked as a resume's claim is, from the claim on: a drain that begins meanwhile waits for
    // it, and hands on the session it wins.
    const adoptOne = async (adoption: Adoption, claim: () => Promise<ClaimAnswer>) => {
      const answer = await safely(() =>
        this.#arriveTracked(adoption.sid, () => this.#adoptOne(adoption, transport(), claim, asked)),
      )
      return answer === null && this.#context.sessionFor(adoption.sid) !== undefined
    }
    if (!adapter.claimSessions) {
      const adopted = await inTurn(sessions, ADOPT_CLAIMS_AT_ONCE, until, false, async (entry: unknown) => {
        const adoption = read(entry)
        if (!adoption) return false
        return adoptOne(adoption, () => this.#claim(adoption.sid, adoption.params))
      })
      return adopted.filter(Boolean).length
    }
    // Claimed a batch at a time, each batch in one call, its takeovers then under way together;
    // the next batch claimed as soon as there is room for it, not once the last one is over.
    return inBatches(sessions, ADOPT_CLAIM_BATCH, ADOPT_CLAIMS_AT_ONCE, until, (batch) => {
      const adoptions: Adoption[] = []
      for (const entry of batch) {
        // One entry whose getters throw is its own: the others of its batch go on.
        const adoption = (() => {
          try {
            return read(entry)
          } catch {
            return undefined
          }
        })()
        // Here already: nothing to claim (see `#claim`).
        if (adoption && this.#context.sessionFor(adoption.sid) === undefined) adoptions.push(adoption)
      }
      if (adoptions.length === 0) return []
      const answers = this.#claimMany(adoptions)
      return adoptions.map((adoption, i) => adoptOne(adoption, () => answers.then((all) => all[i] ?? null)))
    })
  }

  /**
   * Takes over `sid`, claimed (`claim`, see `adopt`) for a client that is away: null once taken
   * over, undefined when there was nothing to take (claimed by another node, a resume of its
   * client's first, or here already), or the takeover's refusal. `left` is counted from `asked`: kept for
   * it from the takeover's end, a session waited for its turn and its claim would outlast its
   * client's window by that much.
   */
  async #adoptOne(
    { sid, params, left }: Adoption,
    transport: Transport,
    claimed: () => Promise<ClaimAnswer>,
    asked: number,
  ): Promise<Refusal | null | undefined> {
    const context = this.#context
    const claim = await claimed()
    if (claim === null || typeof claim !== 'object' || claimMissed(claim)) return undefined
    // Won after `close` ended every session here: given back, as for a resume's (see
    // `#claimAndTakeOver`); the old node seals it when it reads the claim given back.
    if (context.closed()) {
      context.takeover.giveBack(claim)
      context.handoffLogs.afterClose.record({ socket: claim.snapshot.id })
      return undefined
    }
    const hello: HelloPacket = { type: PacketType.HELLO, sid }
    const request: HandshakeRequest = { headers: {}, query: {}, address: '', url: '', params }
    const handshake = new SocketHandshake(request, undefined, transport.name)
    this.#arriving.add(sid)
    try {
      const stillLeft = left - (performance.now() - asked)
      return await context.takeover.run(claim, transport, hello, handshake, false, Math.max(1, stillLeft))
    } finally {
      this.#arriving.delete(sid)
    }
  }

  /**
   * `#claim` of each of `adoptions` in one call of `Adapter.claimSessions`: each answer in order.
   * A list that rejects is the store failing, as for one claim: each `'retry'`, logged; an
   * answer that is no list claimed nothing the server can read (each null).
   */
  async #claimMany(adoptions: readonly Adoption[]): Promise<readonly ClaimAnswer[]> {
    const { adapter } = this.#context
    try {
      const answers = await adapter.claimSessions?.(
        adoptions.map(({ sid, params }) => ({ sid, params: { ...params } })),
      )
      return Array.isArray(answers) ? answers : []
    } catch (err) {
      this.#context.adapterFailures.claim.record({ err })
      return adoptions.map(() => 'retry' as const)
    }
  }

  /**
   * Claims `sid` from a node's handoff for a resume under the route parameters `params`, when the
   * adapter can; null when there is none, `'retry'`
   * when the adapter could not tell, `'elsewhere'` when another node won it (see
   * `Adapter.claimSession`). A claim that rejects is the adapter's store failing (away for a
   * moment, say), as `'retry'` says: the session may be stored still, or live on another node,
   * so the client is told to try again (logged, one line per burst), not given a new session.
   */
  async #claim(sid: string, params: Record<string, string>): Promise<ClaimAnswer> {
    const { adapter } = this.#context
    if (!adapter.claimSession || this.#context.sessionFor(sid) !== undefined) return null
    try {
      // The resume's route parameters: an adapter that can claims nothing for a resume under
      // others than the session's (another tenant), which would end it (see `Takeover.run`).
      return await adapter.claimSession(sid, { ...params })
    } catch (err) {
      this.#context.adapterFailures.claim.record({ err })
      return 'retry'
    }
  }
}

/** A client's goodbye, as `#arrive` hands it on. */
const GOODBYE: Packet = { type: PacketType.CLOSE, reason: CloseReason.CLIENT_DISCONNECT, message: '' }

/** Ends `session` on its client's goodbye in `packets` (see `ParleyServer.relayedGoodbye`). */
function endByGoodbye(session: Session, packets: readonly Packet[]): void {
  if (session.goodbyeWhileFrozen(packets)) return
  session.end(CloseReason.CLIENT_DISCONNECT, { notify: false })
}
