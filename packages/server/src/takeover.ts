import {
  CloseReason,
  ErrorCode,
  type ErrorPacket,
  type EventsMap,
  type HelloPacket,
  isAckId,
  ParleyError,
  type ReplyPacket,
} from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { Room } from './adapter/adapter.js'
import type { HandOffTail, SessionClaim } from './adapter/handoff.js'
import { AdapterCallFailed, type AdapterFailures, callGuarded } from './adapter-failures.js'
import type { BurstLog } from './burst-log.js'
import { answeredIn, askedIn, safely } from './drain.js'
import type { HandoffLogs } from './handoff-logs.js'
import { isMiddlewareTimeout } from './handshake-middleware.js'
import type { Metrics } from './metrics.js'
import {
  claimUnsettled,
  disconnectedEarly,
  keptElsewhere,
  moving,
  type Refusal,
  unrestorable,
} from './refusals.js'
import { sameParams } from './route-params.js'
import { frozen, Session, type SessionConfig } from './session.js'
import type { ServerSocket } from './socket.js'
import { splitTail } from './tail-rooms.js'
import type { Transport } from './transports/transport.js'
import type { Handshake } from './types.js'

/**
 * What a takeover needs from the server: the sessions' shared config, its logs and counters, and
 * the steps it shares with a handshake (the middleware, the maps, the owner record), never the
 * server itself.
 */
export interface TakeoverContext<L extends EventsMap, E extends EventsMap, D> {
  log: FastifyBaseLogger
  metrics: Metrics
  handoffLogs: HandoffLogs
  adapterFailures: AdapterFailures
  /** What every session runs on: a restored one too. */
  sessionConfig: SessionConfig
  /** A socket for `session`, not registered yet. */
  socketFor: (session: Session, handshake: Handshake) => ServerSocket<L, E, D>
  /**
   * Runs the middleware; the refusal, or null (see `ParleyServer.use`). Once the node began to
   * close, PARLEY_SERVER_SHUTTING_DOWN without waiting for it (see `HandshakeMiddleware.run`).
   */
  runMiddleware: (socket: ServerSocket<L, E, D>) => Promise<Refusal | null>
  /** Puts `socket` in the server's maps: the session is this node's from here on. */
  register: (socket: ServerSocket<L, E, D>) => void
  /** Takes a registered socket that never attached out of the maps and the adapter, quietly. */
  unregisterNew: (socket: ServerSocket<L, E, D>) => void
  /** Tells the adapter this node owns `sid`, waiting (bounded) for its record; never rejects. */
  recordOwner: (sid: string) => Promise<void>
  /**
   * Answers a resume of `sid` with the session's CLOSE when its end is remembered here, and
   * closes `transport`: false when it is not.
   */
  answerEnded: (transport: Transport, sid: string, hello: HelloPacket) => boolean
  /** `sid` lives on this node again (it left before: A→B→A), not elsewhere. */
  backHere: (sid: string) => void
  /** Fires the `restored` listeners. */
  restored: (socket: ServerSocket<L, E, D>) => void
  /**
   * True once the node began to close (`drain()`, or the close's first moment) and before
   * `close()` ended its sessions: a session taken over now is handed on by the drain, which waits
   * for the takeovers under way (see `Departures.drain`).
   */
  handsOn: () => boolean
}

/**
 * The takeover of a session another node handed off and this node claimed: its snapshot
 * restored, the middleware run, its rooms joined at the adapter's cut point, the old node's
 * tail awaited and released, then the client's transport attached and `restored` fired. Apart
 * from the claim (see `Arrivals`), which decides whether there is a session to take over at all.
 */
export class Takeover<L extends EventsMap, E extends EventsMap, D> {
  readonly #context: TakeoverContext<L, E, D>

  constructor(context: TakeoverContext<L, E, D>) {
    this.#context = context
  }

  /**
   * Takes over a session that another node handed off, claimed for this node: restores it,
   * runs the middleware, joins its rooms at the adapter's cut point, waits for the old node's
   * tail, then attaches `transport` (OPEN `recovered: true`) and fires `restored`. `toEnd`: a
   * takeover made only to end the session on its client's goodbye (see `ParleyServer.handedOffGoodbye`),
   * which runs no middleware: there is no client to admit, and the request it has carries no
   * `auth`. Refused there, the claim would be given back, and the session end with neither
   * `restored` nor `disconnect` on any node. What the old node left undone follows: events it
   * had not handled yet, and an error for each request it left unanswered when its tail is
   * incomplete. `adoptFor`: a takeover a draining node asked for, its client away (see
   * `LocalSockets.adopt`): no middleware runs either, and the session waits, detached, for its
   * client's resume for `adoptFor` ms from the takeover's start, what was left of its client's
   * recovery window then (not a new window), counted `adopted`. Undefined when the session ended
   * on the old node after all (`HandOffTail.ended`), or its snapshot cannot be restored: the
   * caller opens a new session instead. A "try again" refusal when it went on there instead (`HandOffTail.kept`). A
   * middleware's refusal answered by the node's close, or a middleware the close no longer waits
   * for: the session is taken over all the same, left awaiting its client for the drain to hand
   * on, and that refusal is returned. So for a middleware that did not settle within
   * `handshakeTimeout` (PARLEY_HANDSHAKE_TIMEOUT): the session waits here for its client's next
   * try, within what was left of its client's recovery window when the claim was made (see
   * `#keptFor`), as a resume's session waits where it is, its window running.
   */
  async run(
    claim: SessionClaim,
    transport: Transport,
    hello: HelloPacket,
    handshake: Handshake,
    toEnd: boolean,
    adoptFor?: number,
  ): Promise<Refusal | null | undefined> {
    const context = this.#context
    const { metrics, handoffLogs } = context
    // The takeover's start: what `adoptFor` counts from, and a claim's time when it gives no
    // moment of its own (see `#keptFor`).
    const began = performance.now()
    const snapshot = claim.snapshot
    if (snapshot.params !== undefined && !sameParams(snapshot.params, handshake.params)) {
      // A resume under other route parameters (another tenant of `/:tenant`) than the session
      // opened under: taken over, it would change tenant. Given back for its own client to
      // claim, and a new session here, as for a resume of a session this node does not hold.
      this.giveBack(claim)
      return undefined
    }
    let session: Session
    try {
      // An adapter of the application's may carry any number: one that is no ack id would make
      // this node's questions collide with the old node's, or number past the id space.
      if (snapshot.nextAckId !== undefined && !isAckId(snapshot.nextAckId))
        throw new ParleyError(ErrorCode.INVALID_PACKET, 'the snapshot’s nextAckId is not an ack id')
      session = new Session(context.sessionConfig, snapshot)
    } catch (err) {
      handoffLogs.unrestorable.record({ err, socket: snapshot.id })
      this.giveBack(claim)
      // No node can ever restore it: a new session now (as for `ClaimMissed` 'unreadable'),
      // rather than a "try again" whose next try finds nothing left to claim.
      return undefined
    }
    const socket = context.socketFor(session, handshake)
    const failures = context.adapterFailures.forwardReply
    const forward =
      claim.forwardReply &&
      ((reply: ReplyPacket | ErrorPacket) =>
        forwardReply(claim, reply, (err) => failures.record({ err, socket: socket.id })))
    socket.restore(snapshot, forward)
    const admitted = toEnd || adoptFor !== undefined
    const refusal = (admitted ? undefined : await context.runMiddleware(socket)) ?? disconnectedEarly(session)
    // Refused as the node closes (see `HandshakeMiddleware`): what the middleware met may be the
    // close itself, no verdict on a client admitted before. Or not waited for once the node began
    // to close (see `HandshakeMiddleware.run`), or past `handshakeTimeout`. Given back,
    // the claim would end the handoff, and the client's next try start anew. So the session is
    // taken over without its client (as for a goodbye), which gets the refusal and tries again:
    // its next try resumes it (here, or on a node that asks for it), or the drain hands it on.
    const withoutClient = refusal !== null && this.#noVerdict(refusal, session)
    if (refusal && !withoutClient) {
      this.giveBack(claim)
      session.end(CloseReason.SERVER_DISCONNECT, { notify: false })
      return refusal
    }
    context.register(socket)
    const rooms = [socket.id, ...snapshot.rooms]
    // A socket dropped or ended from here on leaves its rooms after this join, should the
    // adapter's `addAll` still be under way (see `ServerSocket.enter`).
    let taken: HandOffTail
    try {
      taken = await claim.takeOver(() => void this.#joinRestored(socket, rooms))
    } catch (err) {
      // It never fails by its contract: one that does is the adapter's failure all the same.
      // The socket, registered already, would stay for good (never attached, no timer).
      context.unregisterNew(socket)
      throw new AdapterCallFailed(err)
    }
    const { tail, complete, late = false, alone = false, ended = false, kept = false, retry = false } = taken
    if (ended) return this.#dropClaimed(socket, transport, kept ? 'kept' : 'ended')
    if (retry) return this.#dropClaimed(socket, transport, 'retry')
    const { packets, rooms: roomsAtCut } = splitTail(tail)
    // Before the release numbers what this node asked meanwhile: a question of its own under an
    // id the tail uses too takes another (see `ServerSocket.movedInTail`).
    socket.movedInTail(askedIn(packets))
    // Numbered after the client's position, should it be past the snapshot and its tail.
    const unrecorded = session.release(packets, hello.ack ?? 0)
    if (unrecorded === undefined) {
      const err = new ParleyError(ErrorCode.INVALID_PACKET, 'the tail does not follow the snapshot in order')
      // Taken over (the old node's part is done), not given back: an outcome of its own.
      metrics.handoff('broken_tail')
      handoffLogs.unrestorable.record({ err, socket: socket.id })
      session.end(CloseReason.SESSION_EXPIRED, { notify: false })
      return this.#refuseResume(transport, hello, snapshot.sid)
    }
    // The old node went on with the session past its snapshot (a move it gave up on, taken back
    // too late), and the client has packets no tail recorded: this node numbered its own after
    // them. Or the client lies (any ack up to 2^32 past the snapshot is taken at its word): a
    // line any client can cause, so at debug, once for this takeover, never a warning.
    if (unrecorded > 0)
      context.log.debug(
        { socket: socket.id, unrecorded },
        'parley: session taken over from a snapshot older than what its client had (the node that handed it off sent it more after its snapshot, unrecorded: how many); this node numbers what it sends after them',
      )
    if (roomsAtCut) this.#moveRooms(socket, snapshot.rooms, roomsAtCut)
    // Ended here meanwhile (its application disconnected it while the tail was awaited): its end
    // took its owner record away, which a write now would put back for a session no node has.
    if (session.state !== 'closed') await context.recordOwner(session.sid)
    // The old node's last word may come after the tail was read (see `SessionClaim.confirm`).
    const standing = (await safely(() => claim.confirm?.())) ?? 'taken'
    if (standing !== 'taken' && session.state !== 'closed')
      return this.#dropClaimed(socket, transport, standing)
    const whole = adoptFor !== undefined ? 'adopted' : 'taken'
    metrics.handoff(!complete ? 'incomplete' : !late ? whole : alone ? 'restarted' : 'late')
    // A drain or a restart brings many of these at once: one line per burst of each kind.
    if (!complete) handoffLogs.incomplete.record({ socket: socket.id })
    if (late) (alone ? handoffLogs.restarted : handoffLogs.late).record({ socket: socket.id })
    if (session.state === 'closed') return this.#refuseResume(transport, hello, snapshot.sid)
    // Asked for by another node meanwhile (a WebSocket resume reached it): on its way there.
    if (frozen(session)) return moving()
    // Back on this node, which it left before (A→B→A): it lives here, not elsewhere. A resume of
    // it that finds it gone from here from now on finds it ended here or moved away again (added
    // anew), never the old move; one that came during this takeover resumes it here (see
    // `Arrivals`).
    context.backHere(session.sid)
    if (!transport.open || withoutClient)
      session.awaitResume(
        // What was left as the takeover began, less the takeover's own time.
        adoptFor !== undefined
          ? Math.max(1, adoptFor - (performance.now() - began))
          : withoutClient
            ? this.#keptFor(claim, began)
            : undefined,
        adoptFor !== undefined,
      )
    else {
      metrics.resume(true)
      session.attach(transport, hello.ack ?? 0, true)
    }
    context.restored(socket)
    if (socket.connected) {
      // The tail is decoded once, not once per open request.
      const answered = complete ? undefined : answeredIn(packets)
      const open = answered ? snapshot.openRequests.filter((ackId) => !answered.has(ackId)) : []
      socket.resumeWork(snapshot.waiting, open)
    }
    return withoutClient ? refusal : null
  }

  /**
   * How long a session taken over without its client, who was answered "try again" (see
   * `#noVerdict`), waits for that try: what was left of the client's recovery window when the
   * claim was made (`SessionClaim.recoveryLeft`), less the time since the store answered the
   * claim (`SessionClaim.answeredAt`; without it, since `began`, the takeover's start), never
   * past this node's own window; at least 1 ms (a window spent meanwhile ends the session at
   * once, and the client's try gets its end). Undefined, the whole window from now, when the
   * adapter does not say what was left. A client whose transport went during the takeover is not
   * counted so: its window begins as its transport goes, as at any detach.
   */
  #keptFor(claim: SessionClaim, began: number): number | undefined {
    // An adapter of the application's may give anything.
    const left: unknown = claim.recoveryLeft
    if (typeof left !== 'number' || !(left >= 0)) return undefined
    const answered: unknown = claim.answeredAt
    // Counted from a moment after `began` (or from none), the session would outlast its window.
    const from = typeof answered === 'number' && answered >= 0 && answered <= began ? answered : began
    const window = this.#context.sessionConfig.recoveryWindow
    return Math.max(1, Math.min(left - (performance.now() - from), window))
  }

  /**
   * True for an answer of the middleware's run that is no verdict on the client, for a session
   * still this node's to keep: a run past `handshakeTimeout` (PARLEY_HANDSHAKE_TIMEOUT, which the
   * client tries again: the session kept here for its resume, as a resume's session is kept where
   * it is), or a refusal the node's close answered (PARLEY_SERVER_SHUTTING_DOWN: a throw once it
   * began to close, or a run it no longer waited for) while a drain is still to hand the session
   * on, not once `close()` has ended the sessions here. Never for a session the middleware ended
   * (`socket.disconnect()`), nor for a throw settled before the close began, whatever its code:
   * the application's verdict, which gives the claim back.
   */
  #noVerdict(refusal: Refusal, session: Session): boolean {
    if (session.state === 'closed') return false
    if (isMiddlewareTimeout(refusal)) return true
    return refusal.code === ErrorCode.SERVER_SHUTTING_DOWN && this.#context.handsOn()
  }

  /**
   * Gives back a claim this node does not go on with (its snapshot cannot be restored, or the
   * middleware refused the client, or the server closed before it could): the takeover runs
   * with no join, which ends the handoff. By its contract it never fails; one that throws or
   * rejects is logged, never left unhandled, which would end the process.
   */
  giveBack(claim: SessionClaim): void {
    this.#context.metrics.handoff('given_back')
    callGuarded(
      () => claim.takeOver(() => {}),
      (err) => this.#context.adapterFailures.giveBack.record({ err }),
    )
  }

  /**
   * A claimed session is not this node's after all: it ended on its old node (its application
   * saw it end: no second life here; never connected here, it goes quietly, and the client gets
   * a new session, as for one unknown: undefined), or it lives on there, ahead of the snapshot
   * (the client keeps its session and tries again, and is sent there, or the session moves here
   * from its current state), or the adapter gave the claim back, unable to take it over now
   * (`HandOffTail.retry`: the client keeps its session and tries again).
   */
  #dropClaimed(
    socket: ServerSocket<L, E, D>,
    transport: Transport,
    why: 'ended' | 'kept' | 'retry',
  ): Refusal | null | undefined {
    this.#context.unregisterNew(socket)
    if (why === 'ended') return undefined
    if (!transport.open) return null
    return why === 'kept' ? keptElsewhere() : claimUnsettled()
  }

  /**
   * A resume that cannot go on after all: the client hears the session is over (its CLOSE), or,
   * when no end of it is known here (a tail out of order, see `run`), to try again, the same on
   * every transport: its next try finds nothing to claim and gets a new session. Closed bare, a
   * WebSocket told the client nothing, and it stepped down to SSE.
   */
  #refuseResume(transport: Transport, hello: HelloPacket, sid: string): Refusal | null {
    this.#context.metrics.resume(false)
    if (this.#context.answerEnded(transport, sid, hello) || !transport.open) return null
    return unrestorable()
  }

  /**
   * Puts a taken-over socket back into its rooms. Not awaited at the cut point (see `run`);
   * should the session end before the adapter is done, the socket leaves its rooms after the
   * join (see `ServerSocket.enter`).
   */
  #joinRestored(socket: ServerSocket<L, E, D>, rooms: Room[]): Promise<void> {
    return this.#changeRestored(socket, () => socket.enter(rooms), this.#context.adapterFailures.rejoin)
  }

  /**
   * The old node's socket ended in rooms other than the snapshot's (see `roomsEntry`): joins
   * and leaves made there after the freeze. The difference is made here, after the cut's join
   * (in turn with it), so that the session is in the rooms the application asked for last.
   */
  #moveRooms(socket: ServerSocket<L, E, D>, handed: readonly Room[], atCut: readonly Room[]): void {
    const before = new Set(handed)
    const after = new Set(atCut)
    const joined = atCut.filter((room) => !before.has(room))
    if (joined.length > 0) void this.#joinRestored(socket, joined)
    for (const room of handed) {
      if (after.has(room)) continue
      void this.#changeRestored(
        socket,
        () => socket.leave(room),
        this.#context.adapterFailures.leaveAfterFreeze,
      )
    }
  }

  /**
   * A taken-over socket's join or leave. Never rejects: an adapter that fails (a promise that
   * rejects, or a throw) is logged in `failures`, never left unhandled, which would end the
   * process; the session goes on.
   */
  async #changeRestored(
    socket: ServerSocket<L, E, D>,
    change: () => void | Promise<void>,
    failures: BurstLog,
  ): Promise<void> {
    try {
      await change()
    } catch (err) {
      failures.record({ err, socket: socket.id })
    }
  }
}

/**
 * Sends the client's reply to the old node's question there (see `SessionClaim.forwardReply`),
 * guarded: it runs as the session reads the client's packets, which an adapter that breaks its
 * contract must not break off. A reply lost so ends the old node's wait as without forwarding:
 * at its own timeout, or with PARLEY_SESSION_MOVED; `failed` says so here, where it was lost.
 */
function forwardReply(
  claim: SessionClaim,
  reply: ReplyPacket | ErrorPacket,
  failed: (err: unknown) => void,
): void {
  callGuarded(() => claim.forwardReply?.(reply), failed)
}
