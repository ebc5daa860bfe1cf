import { type EventsMap, type HelloPacket, PacketType } from '@parley/protocol'
import { AdapterCallFailed } from './adapter-failures.js'
import type { Arrivals } from './arrivals.js'
import { type Ending, endingFor } from './ended-sessions.js'
import { type HandshakeRequest, paramsOf, SocketHandshake } from './handshake.js'
import type { Metrics } from './metrics.js'
import {
  arriving,
  claimedElsewhere,
  disconnectedEarly,
  moving,
  type Refusal,
  shuttingDown,
} from './refusals.js'
import { ResumeTurns } from './resume-turns.js'
import { sameParams } from './route-params.js'
import { frozen, Session, type SessionConfig } from './session.js'
import type { SessionLimit } from './session-limit.js'
import type { ServerSocket } from './socket.js'
import { outgoing, type Transport } from './transports/transport.js'
import type { Handshake } from './types.js'

/**
 * What answering a HELLO needs from the server: the sessions' shared config, the steps it shares
 * with a takeover (the middleware, the maps, the owner record), and what the server knows of the
 * sessions that ended, never the server itself.
 */
export interface HellosContext<L extends EventsMap, E extends EventsMap, D> {
  metrics: Metrics
  /** What every session runs on: a new one too. */
  sessionConfig: SessionConfig
  /** `maxSessions`: new sessions past it are refused. */
  limit: SessionLimit
  /** Resumes of sessions this node does not hold: claimed from another node's handoff. */
  arrivals: Arrivals<L, E, D>
  /** A socket for `session`, not registered yet. */
  socketFor: (session: Session, handshake: Handshake) => ServerSocket<L, E, D>
  /**
   * Runs the middleware, within `handshakeTimeout`, stopping once `gone` (the client left); the
   * refusal, or null (see `HandshakeMiddleware.run`).
   */
  runMiddleware: (socket: ServerSocket<L, E, D>, gone: () => boolean) => Promise<Refusal | null>
  /** Waits for a resume's turn, within `handshakeTimeout`: null, or the refusal (see `HandshakeMiddleware.wait`). */
  waitForTurn: (turn: Promise<void>) => Promise<Refusal | null>
  /** The socket whose session `sid` names, if it is alive here. */
  socketOf: (sid: string) => ServerSocket<L, E, D> | undefined
  /** How many sessions are alive here. */
  held: () => number
  /** Puts `socket` in the server's maps: the session is this node's from here on. */
  register: (socket: ServerSocket<L, E, D>) => void
  /** Takes a registered socket that never attached out of the maps and the adapter, quietly. */
  unregisterNew: (socket: ServerSocket<L, E, D>) => void
  /** Tells the adapter this node owns `sid`, waiting (bounded) for its record; never rejects. */
  recordOwner: (sid: string) => Promise<void>
  /** How `sid` ended here, if it did lately. */
  endedHere: (sid: string) => Ending | undefined
  /** How `sid` ended, here or (as the adapter keeps it) on another node, if it did lately. */
  endOf: (sid: string) => Promise<Ending | undefined>
  /** A resume named `sid`, which this node does not know: counted, and logged. */
  unknownResume: (sid: string) => void
  /** Fires the `connection` listeners. */
  connected: (socket: ServerSocket<L, E, D>) => void
  /**
   * True from the first moment of the instance's close (see `ParleyServer.closeBegins`), or once
   * `drain()` or `close()` has begun.
   */
  closing: () => boolean
  /**
   * Whether a closing instance at this mount point's path, which this one succeeded on a shared
   * HTTP server, holds `sid`'s session live under the route parameters `params` (see
   * `ParleyServer.succeeding`).
   */
  liveBefore: (sid: string, params: Record<string, string>) => boolean
  /**
   * How `sid`'s session ended lately on a closing instance at this mount point's path, which this
   * one succeeded on a shared HTTP server (see `ParleyServer.succeeding`).
   */
  endedBefore: (sid: string) => Ending | undefined
}

/**
 * The answer to each HELLO: a resume of the session it names (here, or claimed from another
 * node's handoff: see `Arrivals`), a new session, or a refusal. The resumes of one session take
 * turns here (see `ResumeTurns`).
 */
export class Hellos<L extends EventsMap, E extends EventsMap, D> {
  readonly #context: HellosContext<L, E, D>
  /** Resumes of one session take turns (see `ResumeTurns`). */
  readonly #resumes = new ResumeTurns<ServerSocket<L, E, D>>()

  constructor(context: HellosContext<L, E, D>) {
    this.#context = context
  }

  /**
   * `socket`'s session was taken over by another node: a resume of it still running here must
   * not start a new session when it finds the session gone (see `#resume`).
   */
  movedAway(socket: ServerSocket<L, E, D>): void {
    this.#resumes.movedAway(socket)
  }

  /** See `ParleyServer.handshake`. */
  async handshake(
    transport: Transport,
    hello: HelloPacket,
    request: HandshakeRequest,
    left: string | undefined,
  ): Promise<Refusal | null> {
    const context = this.#context
    const { arrivals, metrics } = context
    if (context.closing()) return shuttingDown()
    const handshake: Handshake = new SocketHandshake(request, hello.auth, transport.name)

    let existing = hello.sid === undefined ? undefined : context.socketOf(hello.sid)
    // What a session found by its sid alone is compared with: one opened under other route
    // parameters (another tenant of `/:tenant`) is not this client's, live or ended, here or on
    // another node, and it learns nothing of it (below).
    const params = paramsOf(request)
    // A session the instance this one succeeded at its path still holds live, as it closes: its
    // client's resume (an upgrade probe, a resume after a cut) reached this one, which takes the
    // path's new WebSockets and handshakes, but is that instance's to answer, and it refuses
    // resumes while it closes. A new session here would leave that one, and its last words,
    // behind: the client tries again, and keeps its session until its CLOSE.
    if (hello.sid !== undefined && !existing && context.liveBefore(hello.sid, params)) return shuttingDown()
    // One that instance ended lately: its client hears why, as that instance told it while open
    // (a 'server disconnect' is not to be undone by a new session here). Without an adapter
    // across nodes, whose record of ended sessions `endOf` reads, nothing else here knows it.
    const endedBefore =
      hello.sid !== undefined && !existing && !context.endedHere(hello.sid)
        ? endingFor(context.endedBefore(hello.sid), params)
        : undefined
    if (endedBefore) {
      metrics.resume(false)
      answerEnded(transport, endedBefore, hello)
      return null
    }
    if (hello.sid !== undefined && !existing) {
      if (!context.endedHere(hello.sid)) {
        const answer = await arrivals.resume(hello.sid, transport, hello, handshake, request, left)
        if (answer !== undefined) return answer
        // Undefined: nothing to take over here (or the session ended on its old node after the
        // claim), or another resume of the same session took it over here meanwhile (see
        // `Arrivals`): then this one is an ordinary resume of it, below.
        existing = context.socketOf(hello.sid)
      }
      if (!existing) {
        metrics.resume(false)
        // Ended on another node (or while this node claimed it): answered as there. Not one
        // that opened under other route parameters: its end is not this client's to hear, and
        // it is answered (and counted) as a session this node does not know.
        const ending = await context.endOf(hello.sid)
        if (answerEnded(transport, endingFor(ending, params), hello)) return null
        context.unknownResume(hello.sid)
      }
    }
    if (existing && !sameParams(existing.params, params)) {
      // Found by its sid alone, under other route parameters (another tenant of `/:tenant`):
      // resumed, the session would change tenant behind its application's back. Not resumed,
      // as one this node does not know (and counted so): the client gets a new session under
      // its own route, and the first one waits out its recovery window for its own client.
      metrics.resume(false)
      context.unknownResume(existing.session.sid)
      existing = undefined
    }
    if (existing && frozen(existing.session)) return moving()
    // Still being taken over here (a resume the client gave up on is waiting for the old
    // node's tail, or for its claim to be confirmed): attached now, the transport would carry
    // events to the socket before its `restored` listeners are there, or stay with a copy the
    // takeover drops a moment later ('kept', 'ended'), its client never told. The client tries
    // again in a moment.
    if (existing && arrivals.arriving(existing.session.sid)) return arriving()
    if (existing) {
      const answer = await this.#resume(existing, transport, hello, handshake)
      if (answer !== undefined) return answer
    }

    // Before the middleware, so that a flood does not run it; again after, since other
    // handshakes may have filled the node while it ran.
    const full = context.limit.refuse(context.held())
    if (full) return full
    const session = new Session(context.sessionConfig)
    const socket = context.socketFor(session, handshake)
    const refusal = await context.runMiddleware(socket, () => !transport.open)
    // From here to the registration, no await: the node's count stays as #turnedAway read it.
    const turnedAway = refusal ?? this.#turnedAway(socket, transport)
    if (turnedAway !== undefined) {
      // Not registered: it leaves the rooms its middleware joined, or is joining.
      socket.turnedAway()
      return turnedAway
    }
    context.register(socket)
    await context.recordOwner(session.sid)
    try {
      await socket.enter([socket.id])
    } catch (err) {
      // An adapter of the application's that failed: the socket, registered already, would stay
      // for good (never attached, no timer). The handshake fails, as the adapter's failure.
      context.unregisterNew(socket)
      throw new AdapterCallFailed(err)
    }
    // Read again after the awaits: the application may have ended the session meanwhile
    // (`disconnectSockets()`), or a drain begun to hand it off; `attach` would throw.
    if (session.state === 'closed') {
      // Its end took it out of its rooms, and again after this join if it came during it (an
      // ended socket joins nothing more: see `ServerSocket.enter`). The client gets the
      // session's CLOSE instead of OPEN, as for a resume of one that ended: its own, which the
      // table of ended sessions may have forgotten already (the adapter took longer than the
      // recovery window, or many sessions ended meanwhile).
      // It never took anything of its client's: no ACK goes with its CLOSE.
      const close = session.endedWith
      const ending = close ? { close, ack: 0 } : context.endedHere(session.sid)
      if (!answerEnded(transport, ending) && transport.open) transport.close('normal')
      return null
    }
    if (frozen(session)) return moving()
    if (!transport.open) {
      // The client left during the awaits (its WebSocket closed): attached, the session would
      // wait for a heartbeat on a dead transport and then for a resume nobody can make (its
      // client never got the sid). It never connected: turned away, as after the middleware.
      context.unregisterNew(socket)
      return null
    }
    session.attach(transport, 0, false)
    metrics.handshake()
    // The session may end inside a listener (disconnect(), slow consumer): firing stops there.
    context.connected(socket)
    return null
  }

  /**
   * Resumes `socket`'s session on `transport` once the resumes of it that came before are over
   * (see `ResumeTurns`; past `handshakeTimeout`, answered PARLEY_HANDSHAKE_TIMEOUT): runs the
   * middleware, which reads this resume's handshake on the socket throughout (within its bound),
   * then attaches (OPEN `recovered: true`). Returns the refusal, or null when the
   * transport got its answer (or died meanwhile); undefined when the session ended meanwhile
   * and its end is forgotten already, so that the client gets a new session after all.
   */
  async #resume(
    socket: ServerSocket<L, E, D>,
    transport: Transport,
    hello: HelloPacket,
    handshake: Handshake,
  ): Promise<Refusal | null | undefined> {
    const context = this.#context
    const turn = this.#resumes.take(socket, handshake)
    const session = socket.session
    // Read again after every await (the wait for the turn too): the server may begin to close,
    // the client leave, the session end or begin to move, or another node take it over.
    const cannot = (): Refusal | null | undefined => {
      if (context.closing()) return shuttingDown()
      if (!transport.open) return null
      // Another node took it over meanwhile (the client's WebSocket resume reached that node):
      // the client tries again and is sent there. A new session here would leave that one
      // behind, with whatever it holds for the client.
      if (turn.movedAway) return claimedElsewhere()
      if (frozen(session)) return moving()
      return undefined
    }
    const alive = () => session.state !== 'closed'
    try {
      // Behind another resume of this session still under way (its middleware, which reads its
      // own handshake, within its bound; or its owner record): this one waits for it, within its
      // own bound, with middleware or without (see `ResumeTurns`).
      const late = turn.waiting && (await context.waitForTurn(turn.waiting))
      if (late) return late
      let verdict = cannot()
      if (verdict !== undefined) return verdict
      if (alive()) {
        const refusal = await context.runMiddleware(socket, () => !transport.open)
        if (refusal) return refusal
        verdict = cannot()
        if (verdict !== undefined) return verdict
      }
      if (alive()) {
        await context.recordOwner(session.sid)
        verdict = cannot()
        if (verdict !== undefined) return verdict
      }
      if (alive()) {
        context.metrics.resume(true)
        socket.recovered = true
        turn.attached()
        session.attach(transport, hello.ack ?? 0, true)
        return null
      }
      // It ended meanwhile: the client hears why (or, should the end be forgotten already, gets
      // a new session after all).
      context.metrics.resume(false)
      return answerEnded(transport, context.endedHere(session.sid), hello) ? null : undefined
    } finally {
      turn.end()
    }
  }

  /**
   * After a new socket's middleware passed, what may have changed while it ran. Undefined: open
   * the session; else the refusal, or null when the transport went away.
   */
  #turnedAway(socket: ServerSocket<L, E, D>, transport: Transport): Refusal | null | undefined {
    // Before the middleware's own `socket.disconnect()`: one made once the node began to close may
    // answer the close itself (its database pool closed), as a throw then may, and is answered
    // so too (see `HandshakeMiddleware`): the client tries a live node rather than stop for good.
    if (this.#context.closing()) return shuttingDown()
    const disconnected = disconnectedEarly(socket.session)
    if (disconnected) return disconnected
    if (!transport.open) return null
    // Other handshakes may have filled the node while the middleware ran.
    return this.#context.limit.refuse(this.#context.held()) ?? undefined
  }
}

/**
 * Answers a resume of a session that ended with that session's CLOSE, instead of OPEN, and
 * closes the transport: no new session is made (the client starts one with a HELLO without
 * sid). False when there is no `ending` (no ended session of that sid is remembered). For a
 * client that reads one (`hello.closeAck`), the session's last ACK goes first: the CLOSE may
 * never have reached it, nor the ACK before it (a 'slow consumer' cut drops both), and what
 * the session took would otherwise go again into the client's next session.
 */
export function answerEnded(transport: Transport, ending: Ending | undefined, hello?: HelloPacket): boolean {
  if (!ending) return false
  if (transport.open) {
    const { close, ack } = ending
    transport.handshake(
      close,
      hello?.closeAck && ack > 0 ? outgoing({ type: PacketType.ACK, ack }) : undefined,
    )
    transport.close('normal')
  }
  return true
}
