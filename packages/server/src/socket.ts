import {
  type AckReply,
  type AckTable,
  type ArgsWithoutAck,
  CloseReason,
  checkEventName,
  type DefaultEventsMap,
  type EmitArgs,
  ErrorCode,
  type ErrorOnlyArgs,
  type ErrorPacket,
  type EventNames,
  type EventsMap,
  farAckId,
  type JsonValue,
  type NumberedPacket,
  PacketType,
  ParleyError,
  type PreparedEvent,
  type ReplyPacket,
  type Settle,
  type TimedArgs,
  type TransportName,
  type WireValue,
} from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { Adapter, BroadcastOptions, BroadcastReply, Room, SocketDescription } from './adapter/adapter.js'
import type { SessionSnapshot } from './adapter/handoff.js'
import { callGuarded } from './adapter-failures.js'
import { checkListener } from './argument-error.js'
import { BroadcastOperator, checkRoom, checkTimeout, roomList } from './broadcast.js'
import { logLine } from './burst-log.js'
import {
  addListener,
  countOf,
  type Listener,
  type ListenerStore,
  listenerAt,
  listening,
  onceWrapper,
  removeListener,
} from './emitter.js'
import { type EventFailures, HANDLER_FAILED, REFUSAL_TOO_LONG } from './event-failures.js'
import { type ForwardedReplies, movedBeforeReply } from './forwarded-replies.js'
import {
  type EventMiddleware,
  EventPipeline,
  type EventRefusal,
  hasAppCode,
  type IncomingEvent,
  isThenable,
  refusalOf,
} from './incoming.js'
import { InputFirstAckTable } from './input-first-acks.js'
import { jsonCopy } from './json-copy.js'
import { type MembershipStep, reaches, roomsAfter, type UnsettledSockets } from './membership.js'
import { type Metrics, noMetrics } from './metrics.js'
import { oldNextAckId } from './old-ack-ids.js'
import { type Question, RestoringQuestions } from './restoring-questions.js'
import { keptParams, type RouteParams } from './route-params.js'
import type { IncomingMessage, Session } from './session.js'
import { roomsEntry, sameRooms } from './tail-rooms.js'
import { preparedOutgoing } from './transports/transport.js'
import type { Handshake, SocketReservedEvents } from './types.js'

interface EmitFlags {
  volatile?: boolean
  timeout?: number
}

const NO_FLAGS: EmitFlags = Object.freeze({})

/** What a socket's joins and leaves need to know of the handoff of its session. */
interface HandoffRooms {
  /** The rooms the snapshot holds (frozen), or that went with the session at the cut (moved). */
  readonly rooms: Room[]
  /**
   * The steps still under way at the cut: they went with the session, as called, so the old
   * node's adapter failing one after that changes nothing.
   */
  readonly carried?: Set<MembershipStep> | undefined
  /** Another node took the session over: a join or leave here can no longer reach it. */
  readonly moved?: true
}

/** The books of a socket that only a move between nodes uses (see `ServerSocket.#move`). */
interface SocketMoveBooks {
  /**
   * Handed over from another node: ack ids that node awaited. The client's replies to them go
   * back to that node when it awaits them (`forwardReply`), and are dropped here otherwise
   * (their callbacks were rejected there); this node does not reuse them.
   */
  movedAcks: Set<number> | undefined
  /**
   * Taken over from a node that awaits the client's replies to `movedAcks` (its snapshot's
   * `repliesAwaited`): where each goes instead of being dropped (see `SessionClaim.forwardReply`).
   */
  forwardReply: ((reply: ReplyPacket | ErrorPacket) => void) | undefined
  /** Taken over, until the old node's tail is read: the questions asked meanwhile. */
  restoringQuestions: RestoringQuestions | undefined
  /** Frozen (handed off): where the session's numbered packets go, in order. */
  tailSink: ((text: string) => void) | undefined
  /** Frozen for a handoff, or moved on by one: what joins and leaves need to know of it. */
  handoff: HandoffRooms | undefined
  /** Thawed after a move given up on: the events the freeze took, held until `keptAfterAll`. */
  thawedWork: SessionSnapshot['waiting'] | undefined
}

const newSocketMoveBooks = (): SocketMoveBooks => ({
  movedAcks: undefined,
  forwardReply: undefined,
  restoringQuestions: undefined,
  tailSink: undefined,
  handoff: undefined,
  thawedWork: undefined,
})

/** Why a volatile emit that awaited a reply ended its wait at once: it was dropped. */
function droppedError(event: string): ParleyError<string> {
  return new ParleyError(
    ErrorCode.ACK_TIMEOUT,
    `"${event}" was dropped (volatile: no transport, or past highWaterMark): no reply will come`,
    { details: { dropped: true } },
  )
}

/**
 * Most client requests a socket keeps track of while their handlers have not answered. A handler
 * that takes no callback never answers, so without a bound a client could grow this set for the
 * session's life by asking it (a few dozen bytes a request). Past it the oldest is forgotten:
 * its handler's reply, if one ever comes, still reaches the client; only a hand-off no longer
 * answers it with PARLEY_SESSION_MOVED, and by then the client has long had 1 000 newer ones.
 */
export const MAX_OPEN_REQUESTS = 1_000

/**
 * `socket.volatile`: the same emit methods, with the flag set. Flags chain in either order and
 * add up (`socket.volatile.timeout(ms)`, `socket.timeout(ms).volatile`), as a broadcast's do.
 */
export interface SocketEmitter<E extends EventsMap> {
  /** Sends an event; with a trailing callback, waits for the reply. */
  emit<K extends EventNames<E>>(event: K, ...args: EmitArgs<E[K]>): boolean
  /** Sends an event and resolves with the first argument of the client's reply. */
  emitWithAck<K extends EventNames<E>>(event: K, ...args: ArgsWithoutAck<E[K]>): Promise<AckReply<E[K]>>
  /** The same emits, volatile (see `ServerSocket.volatile`). */
  readonly volatile: SocketEmitter<E>
  /** The same emits, with a timeout: callbacks become error-first (see `ServerSocket.timeout`). */
  timeout(ms: number): TimeoutEmitter<E>
}

/**
 * `socket.timeout(ms)`: acks time out with PARLEY_ACK_TIMEOUT; callbacks are error-first, and
 * stay so down the chain (`socket.timeout(ms).volatile.emit(..., (err, reply) => ...)`).
 */
export interface TimeoutEmitter<E extends EventsMap> {
  emit<K extends EventNames<E>>(event: K, ...args: TimedArgs<E[K]>): boolean
  /** The same emit with a callback that takes the error alone (`(error) => ...`). */
  emit<K extends EventNames<E>>(event: K, ...args: ErrorOnlyArgs<E[K]>): boolean
  emitWithAck<K extends EventNames<E>>(event: K, ...args: ArgsWithoutAck<E[K]>): Promise<AckReply<E[K]>>
  /** The same emits, volatile too. */
  readonly volatile: TimeoutEmitter<E>
  /** The same emits with another timeout (the last one given counts). */
  timeout(ms: number): TimeoutEmitter<E>
}

/** What a socket needs from its server. */
export interface SocketContext {
  log: FastifyBaseLogger
  /** The largest packet a client accepts (what broadcasts are checked against). */
  maxPayload: number
  maxPendingAcks: number
  /** An application's ack callback threw (logged once per burst: the other waits and the packet go on). */
  ackFailed(err: unknown): void
  /** Where handlers, middleware and listeners that failed are logged, once per burst. */
  failures: EventFailures
  /** Socket `id` is handed off with a `socket.data` that is not plain JSON (logged once per burst). */
  unplainData(id: string): void
  /** The adapter could not take ended socket `id` out of its rooms (logged once per burst). */
  leaveFailed(id: string, err: unknown): void
  /** Incoming events that may wait behind an unfinished middleware (see EventPipeline). */
  maxWaitingEvents: number
  /** Null when an event's arguments pass the server's schema for it (or it has none). */
  validate(event: string, args: unknown[]): string | null
  /**
   * The session `sid` of socket `id` ended, for `reason`; `handingOff` when it was frozen for a
   * handoff (its snapshot stored or being stored) and ended instead of moving.
   */
  ended(sid: string, id: string, reason: CloseReason, handingOff: boolean): void
  /** Rooms and broadcast: the only way a socket reaches other sockets. */
  adapter: Adapter
  /**
   * Where the waits of a session that moved go on, for replies the node that took it over sends
   * back; undefined when the adapter does not forward them (see `Adapter.forwardsReplies`).
   */
  forwarded: ForwardedReplies | undefined
  /**
   * The sockets of this node with a join or leave under way (see `ServerSocket.inTurn`): each
   * socket adds itself while it has one, and takes itself out when the last is done.
   */
  unsettled: UnsettledSockets
  /**
   * True once `socket` is one of the node's sockets (`LocalSockets.get` finds it): not yet
   * while its handshake middleware runs. What an adapter's `addSockets` reaches, and so
   * `inTurn` too.
   */
  registered(socket: { readonly id: string }): boolean
  /** Where ack timeouts are counted (`noMetrics` without the `metrics` option). */
  metrics: Metrics
}

/**
 * The application's view of one client: events in and out, acks, and the session's life.
 *
 * - `L`: events the client may send (what `on` listens to)
 * - `E`: events the server may send (what `emit` takes)
 * - `D`: the type of `socket.data`, the application's own per-socket state
 *
 * ```ts
 * app.parley.on('connection', (socket) => {
 *   socket.join('lobby')
 *   socket.on('chat', (msg, ack) => {
 *     socket.to('lobby').emit('chat', msg)
 *     ack?.({ ok: true })
 *   })
 *   socket.on('disconnect', (reason) => app.log.info({ id: socket.id, reason }, 'left'))
 * })
 * ```
 */
export class ServerSocket<
  L extends EventsMap = DefaultEventsMap,
  E extends EventsMap = DefaultEventsMap,
  D = Record<string, unknown>,
> {
  /**
   * A public id for this socket, safe to show to other clients; the client knows it too (it
   * comes in OPEN, as the client's `socket.id`). It is not the session id: that one is a bearer
   * secret that the server never hands to the application. A resumed session keeps its id.
   */
  readonly id: string
  /** The application's own state for this socket. */
  get data(): D {
    // Made when first read: a socket whose application never uses it keeps no object.
    this.#data ??= {} as D
    return this.#data
  }
  set data(value: D) {
    this.#data = value
  }
  #data: D | undefined
  /** What the client said at its latest handshake (updated on every resume). */
  handshake: Handshake
  /**
   * @internal The route parameters the session opened under (or, taken over from another node,
   * was first resumed under here): a request or resume of it under others is refused.
   */
  readonly params: RouteParams
  /** True when the latest attach resumed the session with nothing lost. */
  recovered = false

  readonly #session: Session
  readonly #context: SocketContext
  // Made on first use: most sockets never await a reply or add a middleware, and an idle
  // connection should cost as little memory as possible.
  #ackTable: AckTable | undefined
  #pipeline: EventPipeline | undefined
  #listeners: ListenerStore
  /** Ack ids of the client's requests that reached a handler and have no answer yet. */
  #openRequests: Set<number> | undefined
  /**
   * What only a move between nodes uses (a freeze, a takeover, a move given up on), made at the
   * first: a socket that never moves keeps none of it, 32 bytes less per idle socket.
   */
  #move: SocketMoveBooks | undefined
  /**
   * Settles (never rejects) once the last join or leave of this socket is done, when the adapter
   * has not finished it yet (an `addAll` or `del` that returned a promise); undefined when none
   * is under way. The next one waits for it, so that the adapter applies them in the order they
   * were made; and the socket leaves its rooms again after it when its session ends: a join that
   * lands after that leave would keep an ended socket's id in its rooms for good.
   */
  #membership: Promise<void> | undefined
  /**
   * The joins and leaves `#membership` waits for, in the order made, while any is under way:
   * what a handoff's snapshot adds to the rooms the adapter holds (see `freeze`).
   */
  #steps: MembershipStep[] | undefined

  /** Sockets are made by the server, one per session; applications do not construct them. */
  constructor(session: Session, handshake: Handshake, context: SocketContext) {
    this.#session = session
    this.id = session.id
    this.handshake = handshake
    this.params = keptParams(handshake.params)
    this.#context = context
    // The socket is its session's owner itself (its `session*` members; no `implements`
    // clause, since the published types leave internal members out).
    session.setOwner(this)
  }

  /** @internal The session's report: an application packet from the client, in order. */
  sessionMessage(packet: IncomingMessage): void {
    this.#onMessage(packet)
  }

  /** @internal The session's report: its transport changed (null: lost, awaiting a resume). */
  sessionTransportChanged(now: TransportName | null, before: TransportName | null): void {
    this.#fire('transport', [now, before])
  }

  /** @internal The session's report: it ended. */
  sessionEnded(reason: CloseReason): void {
    this.#onEnded(reason)
  }

  /** @internal */
  get session(): Session {
    return this.#session
  }

  /** The current transport, or null while the session waits for a resume (or has ended). */
  get transport(): TransportName | null {
    return this.#session.transport?.name ?? null
  }

  /**
   * Outgoing bytes this socket holds for its client: the larger of what the client has not
   * acknowledged yet (kept for replay) and what the transport has not written yet. Past the
   * `highWaterMark` option volatile emits are dropped; past `maxBufferedBytes` the socket is
   * disconnected with 'slow consumer'. 0 once disconnected.
   */
  get bufferedAmount(): number {
    return this.#session.bufferedAmount
  }

  /** True until the session ends (also while it waits, detached, for a resume). */
  get connected(): boolean {
    return this.#session.state !== 'closed'
  }

  /**
   * Adds a middleware for incoming events: `socket.use(([event, ...args], next) => next())`.
   * Middleware run in the order they were added, after the event's schema check (if the server
   * declared one) and before its handlers; events pass one at a time, in arrival order.
   * `next(error)`, a throw or a rejection refuses the event: a sender that wants a reply gets
   * ERROR with the error's `code` and message when the code is the application's (`A-Z 0-9 _`,
   * at most 64), else PARLEY_HANDLER_ERROR 'refused by middleware' (the error is logged);
   * otherwise the client gets the same as an `error` event.
   * A middleware of one parameter lets the event through when it returns (async: when it
   * resolves); one that declares `next` must call it (until then, later events wait).
   */
  use(middleware: EventMiddleware<IncomingEvent<L>>): this {
    // No event is in a pipeline yet: without one, events are checked and delivered at once.
    this.#pipeline ??= new EventPipeline(this.#context.maxWaitingEvents, {
      validate: (event, args) => this.#context.validate(event, args),
      deliver: (event, args, ackId) => this.#dispatch(event, args as WireValue[], ackId),
      refuse: (event, ackId, refusal, cause) => this.#refuseEvent(event, ackId, refusal, cause),
    })
    this.#pipeline.use(middleware as unknown as EventMiddleware)
    return this
  }

  /** The move books, made at the first use (see `#move`). */
  #moving(): SocketMoveBooks {
    this.#move ??= newSocketMoveBooks()
    return this.#move
  }

  get #acks(): AckTable {
    this.#ackTable ??= new InputFirstAckTable(this.#context.maxPendingAcks, this.#context.ackFailed)
    return this.#ackTable
  }

  /** Listens to an event from the client, or to `disconnect` / `transport`. */
  on<K extends keyof SocketReservedEvents>(event: K, listener: SocketReservedEvents[K]): this
  on<K extends EventNames<L>>(event: K, listener: L[K]): this
  on(event: string, listener: Listener): this {
    checkListener(event, listener)
    this.#listeners = addListener(this.#listeners, event, listener)
    return this
  }

  /** Like `on`, for one call only. */
  once<K extends keyof SocketReservedEvents>(event: K, listener: SocketReservedEvents[K]): this
  once<K extends EventNames<L>>(event: K, listener: L[K]): this
  once(event: string, listener: Listener): this {
    checkListener(event, listener)
    const wrapper = onceWrapper(listener, (self) => {
      this.#listeners = removeListener(this.#listeners, event, self)
    })
    this.#listeners = addListener(this.#listeners, event, wrapper)
    return this
  }

  /** Removes one listener, every listener of an event, or every listener. */
  off<K extends keyof SocketReservedEvents>(event?: K, listener?: SocketReservedEvents[K]): this
  off<K extends EventNames<L>>(event?: K, listener?: L[K]): this
  off(event?: string, listener?: Listener): this {
    this.#listeners = removeListener(this.#listeners, event, listener)
    return this
  }

  /**
   * Sends an event. Numbered: kept until the client acknowledges it and resent after a resume,
   * so it arrives once and in order even across transport changes. A trailing function is an
   * ack callback, called with the reply's arguments (never on failure: use `timeout(ms)` or
   * `emitWithAck` to hear about failures). Returns false when the socket has disconnected.
   * Throws, and sends nothing, PARLEY_UNSERIALIZABLE for values JSON cannot carry (arguments
   * nested past 64 levels included), PARLEY_RESERVED_EVENT_NAME / PARLEY_INVALID_EVENT_NAME for a
   * bad name, what the client would refuse (PARLEY_PAYLOAD_TOO_LARGE past `maxPayload`,
   * PARLEY_TOO_DEEP for what a `toJSON` returns nested that deep, PARLEY_FORBIDDEN_KEY),
   * PARLEY_TOO_MANY_PENDING_ACKS past `maxPendingAcks`.
   */
  emit<K extends EventNames<E>>(event: K, ...args: EmitArgs<E[K]>): boolean {
    return this.#emit(NO_FLAGS, event, args as unknown[])
  }

  /**
   * Sends an event and resolves with the first argument of the client's reply. Rejects with a
   * ParleyError: the client's ERROR (e.g. PARLEY_HANDLER_ERROR), PARLEY_DISCONNECTED when the
   * session ends first, PARLEY_ACK_TIMEOUT under `timeout(ms)`.
   */
  emitWithAck<K extends EventNames<E>>(event: K, ...args: ArgsWithoutAck<E[K]>): Promise<AckReply<E[K]>> {
    return this.#emitWithAck(NO_FLAGS, event, args as unknown[]) as Promise<AckReply<E[K]>>
  }

  /**
   * Emits whose reply must come within `ms`; their callbacks are error-first. Past 2^31-1 ms
   * (Infinity included) no timer is set: the wait lasts as long as the session. Anything but a
   * number of 0 or more throws PARLEY_INVALID_ARGUMENT (a RangeError for a number). Chains with
   * `volatile`, either way round: `socket.timeout(ms).volatile.emit(...)`.
   */
  timeout(ms: number): TimeoutEmitter<E> {
    return this.#flagged(NO_FLAGS).timeout(ms)
  }

  /**
   * Emits that may be dropped: not numbered, not kept, never resent; dropped (emit returns
   * false) while the transport is missing or `bufferedAmount` is past the `highWaterMark`.
   * A dropped emit that awaits a reply ends its wait at once with PARLEY_ACK_TIMEOUT
   * (`details.dropped` true). Chains with `timeout(ms)`: `socket.volatile.timeout(ms).emit(...)`.
   */
  get volatile(): SocketEmitter<E> {
    return this.#flagged(NO_FLAGS).volatile
  }

  /**
   * The emit methods under `flags`, and the way to add more: each link of a chain is a new
   * emitter, so a kept one (`const timed = socket.timeout(500)`) is not changed by later links.
   */
  #flagged(flags: EmitFlags): SocketEmitter<E> & TimeoutEmitter<E> {
    const chain = (more: EmitFlags) => this.#flagged({ ...flags, ...more })
    return {
      emit: (event: string, ...args: unknown[]) => this.#emit(flags, event, args),
      emitWithAck: (event: string, ...args: unknown[]) => this.#emitWithAck(flags, event, args),
      get volatile() {
        return chain({ volatile: true })
      },
      timeout: (ms: number) => {
        checkTimeout(ms)
        return chain({ timeout: ms })
      },
    } as SocketEmitter<E> & TimeoutEmitter<E>
  }

  /**
   * The rooms this socket is in, its own (named by its id) included: a snapshot (read it again
   * after a join or leave).
   */
  get rooms(): ReadonlySet<Room> {
    return this.#context.adapter.socketRooms(this.id) ?? new Set()
  }

  /**
   * Joins one room or several. Rooms stay across transport changes and resumes, and are left
   * when the session ends. With an adapter whose joins cross the network (it returns a promise),
   * await the result before relying on it. Joins and leaves of one socket take effect in the
   * order they were made, on any adapter: `socket.join('a'); socket.leave('a')` leaves it out.
   * A room is a string of 1 to MAX_ROOM_NAME_LENGTH (256) characters: anything else throws a
   * TypeError, and no room is joined.
   * Once disconnected, it does nothing: the socket left every room when its session ended.
   * A join the adapter is still doing when the session ends is left once it is done.
   * While the session is handed off (frozen for a drain or a move), joins and leaves go on here
   * and go with the session at the cut: it arrives on the next node in the rooms they leave it
   * in. One still under way at the cut goes as called, and its promise resolves whatever this
   * node's adapter answers after (the next node joined it). From the cut on this socket has
   * disconnected ('server handoff'), and a join or leave on it rejects with
   * PARLEY_SESSION_MOVED (unawaited, it ends nothing): use the socket `restored` gives on the
   * next node.
   */
  join(rooms: Room | readonly Room[]): void | Promise<void> {
    const list = roomList(rooms)
    if (!this.connected) return this.#move?.handoff?.moved ? movedAway() : undefined
    return this.enter(list)
  }

  /**
   * @internal The server's own join: the socket's own room, and a taken-over socket's rooms
   * (checked on the node where they were joined). In turn with the application's joins and
   * leaves, and followed by the leave at the session's end, as `join` is.
   */
  enter(rooms: readonly Room[]): void | Promise<void> {
    // Ended already (during the handshake's awaits, or before a takeover's cut): it has left
    // its rooms, and a join now would keep its id in them for good.
    if (!this.connected) return
    const adapter = this.#context.adapter
    // Nothing under way (always so with the built-in adapters, which answer at once): now, and
    // nothing allocated. Else after the join or leave made before it.
    if (this.#membership === undefined) return this.#keepOrder(adapter.addAll(this.id, rooms), true, rooms)
    return this.#keepOrder(
      this.#membership.then(() => adapter.addAll(this.id, rooms)),
      true,
      rooms,
    )
  }

  /**
   * Leaves a room (a string of 1 to 256 characters, as for `join`), in turn with the joins; its
   * own room (`socket.id`) is never left, so `leave(socket.id)` does nothing. As
   * for `join`, it goes with a session handed off, and rejects with PARLEY_SESSION_MOVED once
   * another node took the session over. Once disconnected otherwise, it does nothing: the
   * socket left every room when its session ended, and the adapter has forgotten it.
   */
  leave(room: Room): void | Promise<void> {
    checkRoom(room)
    if (!this.connected) return this.#move?.handoff?.moved ? movedAway() : undefined
    // A socket is always in its own room: out of it, `socket.to(...)` and `socket.broadcast`
    // (which leave out that room) reached the sender itself, and `to(socket.id)` reached nobody.
    if (room === this.id) return
    const adapter = this.#context.adapter
    if (this.#membership === undefined) return this.#keepOrder(adapter.del(this.id, room), false, room)
    return this.#keepOrder(
      this.#membership.then(() => adapter.del(this.id, room)),
      false,
      room,
    )
  }

  /**
   * @internal `socketsJoin` (`join`) or `socketsLeave` of `rooms`, for this socket while a join
   * or leave of its own is under way (see `changeRooms`): in turn after them, and only if
   * `only` reaches the socket then, in the rooms they left it in. Nothing once disconnected,
   * nor while its handshake middleware runs (the adapter does not reach it either).
   */
  inTurn(join: boolean, rooms: Room[], only: BroadcastOptions): void | Promise<void> {
    if (!this.connected || !this.#context.registered(this)) return
    const adapter = this.#context.adapter
    const change = () => {
      if (!reaches(only, adapter.socketRooms(this.id))) return
      return join ? adapter.addAll(this.id, rooms) : leaveEach(adapter, this.id, rooms)
    }
    return this.#keepOrder((this.#membership ?? Promise.resolve()).then(change), join, rooms, only)
  }

  /**
   * Makes the next join or leave of this socket wait for `result`, when it is a promise: an
   * adapter that answers later could otherwise apply them in another order than they were made
   * (a leave landing before the join it follows). A step that fails holds up none after it: its
   * rejection goes to its own caller only. Until it settles, the step is kept (`join`, `rooms`,
   * `only`: see `MembershipStep`); nothing is kept, nor allocated, for a result that is not a
   * promise.
   */
  #keepOrder(
    result: void | Promise<void>,
    join: boolean,
    rooms: readonly Room[] | Room,
    only?: BroadcastOptions,
  ): void | Promise<void> {
    if (!isThenable(result)) return result
    const step: MembershipStep = { join, rooms, only }
    // Carried to another node while under way, it is done there: a failure here says nothing.
    const answer: Promise<void> = Promise.resolve(result).then(undefined, (error: unknown) => {
      if (!this.#move?.handoff?.carried?.has(step)) throw error
    })
    if (this.#steps === undefined) {
      this.#steps = [step]
      this.#context.unsettled.add(this)
    } else this.#steps.push(step)
    const settled = () => {
      // Steps settle in the order made (each waits for the one before): this is the oldest.
      const at = this.#steps?.indexOf(step) ?? -1
      if (at >= 0) this.#steps!.splice(at, 1)
      if (this.#membership !== done) return
      this.#membership = undefined
      this.#steps = undefined
      this.#context.unsettled.delete(this)
    }
    // Its rejection goes to the caller: this handler only keeps one nobody awaits from
    // ending the process, as an adapter's own promise never did.
    const done: Promise<void> = answer.then(settled, settled)
    this.#membership = done
    return answer
  }

  /**
   * Takes the socket out of every room, now and once more after the joins and leaves under way
   * (one of them could put a room back). An adapter of the application's that throws (its store
   * away) is logged, never thrown on: this runs as the session ends, and the rest of its end
   * (the server's books, `disconnect`) must happen all the same. Logged once, however many of
   * the two fail: the log counts sockets left in their rooms.
   */
  #leaveAll(): void {
    const adapter = this.#context.adapter
    let logged = false
    const failed = (err: unknown) => {
      if (logged) return
      logged = true
      this.#context.leaveFailed(this.id, err)
    }
    callGuarded(() => adapter.delAll(this.id), failed)
    this.#membership?.then(() => adapter.delAll(this.id)).catch(failed)
  }

  /** A broadcast to `rooms`, leaving this socket out: `socket.to('lobby').emit(...)`. */
  to(rooms: Room | readonly Room[]): BroadcastOperator<E> {
    return this.broadcast.to(rooms)
  }

  /** The same as `to`. */
  in(rooms: Room | readonly Room[]): BroadcastOperator<E> {
    return this.to(rooms)
  }

  /** A broadcast to everyone but this socket and the sockets in `rooms`. */
  except(rooms: Room | readonly Room[]): BroadcastOperator<E> {
    return this.broadcast.except(rooms)
  }

  /** A broadcast to every socket but this one. */
  get broadcast(): BroadcastOperator<E> {
    return new BroadcastOperator<E>(
      this.#context.adapter,
      this.#context.maxPayload,
      new Set(),
      new Set([this.id]),
      undefined,
      this.#context.unsettled,
      this.#context.ackFailed,
    )
  }

  /**
   * @internal A broadcast's prepared event for this socket (see Adapter). The node-to-node
   * boundary: the event is sent as it is, unchecked. `BroadcastOperator` checked it once where
   * it was emitted; an adapter that builds one elsewhere answers for it.
   */
  deliver(event: PreparedEvent, volatile: boolean): void {
    if (!this.connected) return
    if (volatile) this.#session.sendVolatile(() => preparedOutgoing(event, 0, 0))
    else this.#session.sendPrepared(event, 0)
  }

  /**
   * @internal The same, asking for a reply within `timeout` ms. Volatile, it is what
   * `volatile.emitWithAck` is for one socket: unnumbered, and dropped when it cannot go now, a
   * failed reply at once (a broadcast then need not wait its whole timeout for this socket).
   */
  deliverWithAck(
    event: PreparedEvent,
    timeout: number,
    settle: (reply: BroadcastReply) => void,
    volatile = false,
  ): void {
    if (!this.connected) {
      settle({ ok: false, error: new ParleyError(ErrorCode.DISCONNECTED, 'the socket has disconnected') })
      return
    }
    let question: Question
    try {
      question = this.#ask(
        (error, reply) => settle(error ? { ok: false, error } : { ok: true, value: reply[0] }),
        timeout,
      )
    } catch (error) {
      settle({ ok: false, error: error as ParleyError<string> })
      return
    }
    // The id is read as the packet is numbered: a restored socket's may change until then.
    if (!volatile) this.#session.sendEncoded((seq) => preparedOutgoing(event, seq, question.id))
    else if (!this.#session.sendVolatile(() => preparedOutgoing(event, 0, question.id))) {
      this.#forget(question)
      settle({ ok: false, error: droppedError(event.name) })
    }
  }

  /** @internal A plain description for `fetchSockets()`. */
  describe(): SocketDescription {
    return { id: this.id, handshake: this.handshake, rooms: new Set(this.rooms), data: this.data }
  }

  /** Ends the session: the client gets CLOSE 'server disconnect' and must not resume. */
  disconnect(): this {
    this.#session.end(CloseReason.SERVER_DISCONNECT)
    return this
  }

  /**
   * @internal Events the session acknowledged that have not reached the handlers yet: they wait
   * in the middleware (see `EventPipeline.pending`).
   */
  get eventsInMiddleware(): number {
    return this.#pipeline?.pending ?? 0
  }

  /**
   * @internal The server closes without handing this session off: events from the client are
   * taken no more (see `Session.refuseEvents`), and the promise resolves once those it took have
   * gone through the middleware to the handlers (or were refused), or the session ended.
   */
  finishEvents(): Promise<void> {
    this.#session.refuseEvents()
    return this.#pipeline?.through() ?? Promise.resolve()
  }

  /**
   * @internal The node drains: freezes the session (nothing more is read from the client) and
   * describes it for the node that will take it over (see `handOff`).
   */
  freeze(): SessionSnapshot {
    const books = this.#session.freeze((text) => this.#move?.tailSink?.(text))
    const move = this.#moving()
    move.tailSink = (text) => this.#context.adapter.appendHandOff?.(books.sid, text)
    const waiting = (this.#pipeline?.takeWaiting() ?? []) as [string, JsonValue[], number][]
    // With the ids of the node this session came from that the client has not answered yet (a
    // second move): the next node sends their replies here, which go on there (see `claimed`),
    // and never numbers a question of its own onto one, which would take such a reply.
    const pendingAcks = [...(move.movedAcks ?? []), ...(this.#ackTable?.ids() ?? [])]
    const data = jsonCopy(this.data)
    if (data === undefined) this.#context.unplainData(this.id)
    const rooms = this.#roomsBesidesOwn()
    move.handoff = { rooms }
    return {
      v: 1,
      ...books,
      rooms,
      data: data ?? null,
      dataLost: data === undefined,
      waiting,
      openRequests: [...(this.#openRequests ?? [])],
      pendingAcks,
      ...(this.#context.forwarded && { repliesAwaited: true as const }),
      nextAckId: this.#ackTable?.nextId ?? 1,
      maxPayload: this.#context.maxPayload,
      created: this.handshake.issued,
      params: { ...this.params },
    }
  }

  /**
   * The rooms as this socket's joins and leaves were called, without its own: the adapter's,
   * with those it has not finished, or that wait their turn, applied. A snapshot that read the
   * adapter alone would hand the session on without a join still under way, and with a leave
   * still under way undone. Not awaited: the freeze is one turn, and an adapter may never
   * answer. A step under way that fails after the freeze is out of them again at the cut,
   * where `claimed` reads them once more.
   */
  #roomsBesidesOwn(): Room[] {
    const rooms = this.#steps === undefined ? this.rooms : roomsAfter(this.rooms, this.#steps)
    return [...rooms].filter((room) => room !== this.id)
  }

  /**
   * @internal The snapshot is stored: the client is told to resume elsewhere after `retryAfter`
   * ms (or, `switched`, that it already did: MOVED). Callbacks awaiting its replies are rejected
   * with PARLEY_SESSION_MOVED (the replies will reach the other node), unless the adapter sends
   * them back here: then they wait on (see `claimed`).
   */
  handOff(retryAfter: number, switched = false): void {
    if (!this.#context.forwarded) this.#ackTable?.rejectAll(movedBeforeReply())
    this.#session.handOff(retryAfter, switched)
  }

  /**
   * @internal The snapshot `freeze` made could not be stored in time: the session goes on here.
   * Its write may still land and be claimed by another node, which would run what the snapshot
   * holds: until `keptAfterAll`, nothing the client sent runs here, neither the events the
   * freeze took from the middleware's queue nor what comes from now on (see
   * `Session.holdInbound`).
   */
  thaw(snapshot: SessionSnapshot): void {
    const move = this.#moving()
    move.tailSink = undefined
    move.handoff = undefined
    this.#session.thaw()
    // The freeze closed the pipeline; what runs here from now on needs one.
    this.#pipeline = this.#pipeline?.successor()
    this.#session.holdInbound()
    move.thawedWork = snapshot.waiting
  }

  /**
   * @internal The drain could not store the snapshot `freeze` made, and the freeze took events
   * from the middleware's queue that the session had acknowledged: rather than end at once and
   * lose them, the session finishes here. It goes back on its transport taking no new event (its
   * client sends those again to the next server), and those it holds wait until `keptAfterAll`,
   * which the drain calls once the snapshot can no longer be claimed (a node that took it over
   * would run them too).
   */
  stayToFinish(snapshot: SessionSnapshot): void {
    const move = this.#moving()
    move.tailSink = undefined
    move.handoff = undefined
    this.#session.unfreeze()
    // The freeze closed the pipeline; what runs here from now on needs one.
    this.#pipeline = this.#pipeline?.successor()
    move.thawedWork = snapshot.waiting
  }

  /**
   * @internal The move `thaw` gave up on is taken back, and the session stayed here: the events
   * the freeze took run after all, then what the client sent since, in order. The same for a
   * drain's session that `stayToFinish`.
   */
  keptAfterAll(): void {
    const move = this.#move
    const waiting = move?.thawedWork
    if (move) move.thawedWork = undefined
    if (this.#session.state === 'closed') return
    if (waiting) this.resumeWork(waiting, [])
    this.#session.releaseInbound()
  }

  /**
   * @internal The handshake turned this new socket away (a middleware refused it, or the client
   * went meanwhile): it never connected, so no `disconnect` fires, but `connected` turns false,
   * it leaves the rooms it joined (in a middleware), and replies it awaits (asked for in a
   * middleware) reject with PARLEY_DISCONNECTED.
   */
  turnedAway(): void {
    this.#leaveAll()
    this.#session.discard()
    this.#pipeline?.close()
    this.#ackTable?.rejectAll(new ParleyError(ErrorCode.DISCONNECTED, 'the handshake was refused'))
  }

  /**
   * @internal Another node took the session over: answers each client request still open
   * here with ERROR PARLEY_SESSION_MOVED, leaves the replies still awaited here to wait for
   * the other node to send them back (or, when the adapter does not, rejects them with
   * PARLEY_SESSION_MOVED), and returns those last packets (their wire text) for
   * the tail instead of sending them. The socket then ends here ('server handoff').
   *
   * The cut is where the session's rooms move too. Joins and leaves made since the freeze (a
   * timer's, another socket's handler's, a `socketsJoin` that reached this socket) went to
   * this node's adapter, in the order called, and the tail's broadcasts followed them; when
   * they, or a step under way at the freeze that failed since, leave the rooms other than the
   * snapshot's, the rooms as called now end the tail (see `roomsEntry`), and the new node
   * makes its own match. Steps still under way go as called (see `HandoffRooms.carried`).
   */
  claimed(): string[] {
    const last: string[] = []
    const move = this.#moving()
    move.tailSink = (text) => last.push(text)
    this.#answerMoved(this.#openRequests ?? [])
    this.#openRequests = undefined
    move.tailSink = undefined
    const rooms = this.#roomsBesidesOwn()
    const handed = move.handoff?.rooms
    if (handed && !sameRooms(rooms, handed)) last.push(roomsEntry(rooms))
    move.handoff = { rooms, carried: this.#steps && new Set(this.#steps), moved: true }
    // The questions of the snapshot, and those asked since into the tail: the client replies to
    // the other node. One whose adapter forwards the replies sends them back here, where they
    // settle these waits: taken from the socket before its end, which would reject them. Else
    // that node drops them (see `movedInTail`), and they moved as the session did.
    // So too the questions of the node this session came from that the client has not answered:
    // the next node sends their replies here (the next snapshot lists them), and they go on there.
    const forwarded = this.#context.forwarded
    if (forwarded) {
      const relay = move.forwardReply &&
        move.movedAcks && { ids: new Set(move.movedAcks), forward: move.forwardReply }
      forwarded.keep(this.id, this.#ackTable, relay)
      this.#ackTable = undefined
    } else this.#ackTable?.rejectAll(movedBeforeReply())
    this.#session.moved()
    return last
  }

  /** Answers client requests that no handler will answer: the session moved on without them. */
  #answerMoved(ackIds: Iterable<number>): void {
    for (const ackId of ackIds) {
      this.#session.sendNumbered((seq) => ({
        type: PacketType.ERROR,
        seq,
        ackId,
        code: ErrorCode.SESSION_MOVED,
        message: 'the node handling this request shut down before it replied',
      }))
    }
  }

  /**
   * @internal A socket taken over from another node: its data, and the replies owed to that
   * node's emits: sent there with `forward` when that node awaits them (`repliesAwaited`),
   * dropped here otherwise.
   */
  restore(snapshot: SessionSnapshot, forward?: (reply: ReplyPacket | ErrorPacket) => void): void {
    if (!snapshot.dataLost) this.data = snapshot.data as D
    const move = this.#moving()
    if (snapshot.pendingAcks.length > 0) move.movedAcks = new Set(snapshot.pendingAcks)
    if (snapshot.repliesAwaited === true) move.forwardReply = forward
    // Broadcasts with acks may reach this socket before the old node's tail is read, whose
    // questions this node learns only then (see `movedInTail`): its own are numbered far away.
    this.#acks.nextId = farAckId(oldNextAckId(snapshot))
    move.restoringQuestions = new RestoringQuestions()
    this.recovered = true
  }

  /**
   * @internal The old node's tail is in: the questions it asked after its snapshot (between the
   * freeze and the cut, into the tail) await replies there, rejected with PARLEY_SESSION_MOVED,
   * as those of the snapshot are. Their replies come here: dropped, and their ids never reused,
   * or a question of this node would take the reply meant for one of the old node's. A question
   * this node asked meanwhile under one of them takes another id (see `RestoringQuestions`):
   * called before `Session.release` numbers its packet.
   */
  movedInTail(ackIds: readonly number[]): void {
    const move = this.#move
    const restoring = move?.restoringQuestions
    if (move) move.restoringQuestions = undefined
    if (ackIds.length === 0) return
    const moving = this.#moving()
    moving.movedAcks ??= new Set()
    for (const id of ackIds) moving.movedAcks.add(id)
    restoring?.renumber(
      ackIds,
      (id) => this.#acks.forget(id),
      (settle, timeout) => this.#register(settle, timeout),
    )
  }

  /**
   * @internal Runs the events the old node acknowledged but did not hand to a handler, and
   * answers the client requests it left open when its tail is incomplete (`open`).
   */
  resumeWork(waiting: SessionSnapshot['waiting'], open: readonly number[]): void {
    this.#answerMoved(open)
    for (const [name, args, ackId] of waiting)
      this.#onMessage({ type: PacketType.EVENT, seq: 0, name, args, ackId })
  }

  /** Awaits a reply; with metrics, a timeout is counted on the way to `settle`. */
  #register(settle: Settle, timeout: number | undefined): number {
    const metrics = this.#context.metrics
    const counted: Settle =
      timeout === undefined || metrics === noMetrics
        ? settle
        : (error, reply) => {
            if (error?.code === ErrorCode.ACK_TIMEOUT) metrics.ackTimeout()
            settle(error, reply)
          }
    let id = this.#acks.register(counted, timeout)
    // An id the previous node awaits a reply on would catch that reply: take the next one.
    while (this.#move?.movedAcks?.has(id)) {
      this.#acks.forget(id)
      id = this.#acks.register(counted, timeout)
    }
    return id
  }

  /** Awaits a reply: a question whose id may still change while the socket is restored. */
  #ask(settle: Settle, timeout: number | undefined): Question {
    const restoring = this.#move?.restoringQuestions
    if (!restoring) return { id: this.#register(settle, timeout) }
    return restoring.ask(settle, timeout, (done) => this.#register(done, timeout))
  }

  /** Ends a wait whose packet could not go. */
  #forget(question: Question): void {
    this.#move?.restoringQuestions?.forget(question)
    this.#acks.forget(question.id)
  }

  #emitWithAck(flags: EmitFlags, event: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const settle: Settle = (error, reply) => (error ? reject(error) : resolve(reply[0]))
      this.#send(flags, event, args as WireValue[], settle)
    })
  }

  #emit(flags: EmitFlags, event: string, args: unknown[]): boolean {
    let settle: Settle | undefined
    const last = args[args.length - 1]
    if (typeof last === 'function') {
      args = args.slice(0, -1)
      const callback = last as (...reply: unknown[]) => void
      settle =
        flags.timeout === undefined
          ? (error, reply) => {
              if (!error) callback(...reply)
            }
          : (error, reply) => callback(error, ...reply)
    }
    return this.#send(flags, event, args as WireValue[], settle)
  }

  #send(flags: EmitFlags, event: string, args: WireValue[], settle: Settle | undefined): boolean {
    const bad = checkEventName(event)
    if (bad) throw bad
    if (!this.connected) {
      if (settle) {
        const error = new ParleyError(ErrorCode.DISCONNECTED, 'the socket has disconnected')
        queueMicrotask(() => settle(error, []))
      }
      return false
    }
    const question = settle ? this.#ask(settle, flags.timeout) : undefined
    try {
      if (flags.volatile) {
        const ackId = question?.id ?? 0
        const sent = this.#session.sendVolatile({ type: PacketType.EVENT, seq: 0, name: event, args, ackId })
        if (!sent && settle && question) {
          // Dropped: no reply can come, and nothing would end the wait before the session.
          this.#forget(question)
          const error = droppedError(event)
          queueMicrotask(() => settle(error, []))
        }
        return sent
      }
      // The id is read as the packet is numbered: a restored socket's may change until then.
      return this.#session.sendNumbered(
        (seq) => ({
          type: PacketType.EVENT,
          seq,
          name: event,
          args,
          ackId: question?.id ?? 0,
        }),
        // Dropped unsent (see `Session.sendNumbered`): no reply can come, and nothing would end
        // the wait before its timeout or the session.
        question && ((error) => queueMicrotask(() => this.#ackTable?.settle(question.id, error, []))),
      )
    } catch (error) {
      if (question) this.#forget(question)
      throw error
    }
  }

  #onMessage(packet: IncomingMessage): void {
    switch (packet.type) {
      case PacketType.EVENT:
        if (this.#pipeline) this.#pipeline.push(packet.name, packet.args, packet.ackId)
        else this.#receiveEvent(packet.name, packet.args, packet.ackId)
        return
      case PacketType.REPLY:
        if (this.#movedReply(packet)) return
        this.#ackTable?.settle(packet.ackId, null, packet.args)
        return
      case PacketType.ERROR:
        if (packet.ackId > 0 && this.#movedReply(packet)) return
        if (packet.ackId > 0)
          this.#ackTable?.settle(packet.ackId, new ParleyError(packet.code, packet.message), [])
        else this.#context.log.debug({ code: packet.code }, `parley: client error notice: ${packet.message}`)
        return
    }
  }

  /**
   * True when `reply` answers a question of the node this session moved from: sent there when
   * that node awaits it, dropped otherwise. Once: the id is forgotten here.
   */
  #movedReply(reply: ReplyPacket | ErrorPacket): boolean {
    const move = this.#move
    if (!move?.movedAcks?.delete(reply.ackId)) return false
    move.forwardReply?.(reply)
    return true
  }

  /** An event on a socket without middleware: the pipeline's schema check, then the handlers. */
  #receiveEvent(name: string, args: WireValue[], ackId: number): void {
    const problem = this.#context.validate(name, args)
    if (problem === null) this.#dispatch(name, args, ackId)
    else
      this.#refuseEvent(
        name,
        ackId,
        { code: ErrorCode.VALIDATION_FAILED, message: `"${name}": ${problem}` },
        undefined,
      )
  }

  /**
   * Answers an event that did not reach its handlers (schema, middleware). A middleware's error
   * without a code of the application's is logged as a handler's failure is: the client was told
   * only 'refused by middleware', and it may be a bug.
   */
  #refuseEvent(event: string, ackId: number, refusal: EventRefusal, cause: unknown): void {
    if (cause !== undefined && !hasAppCode(cause)) this.#context.failures.middleware(event, cause)
    else
      logLine(
        this.#context.log,
        'debug',
        // No cause (a schema's refusal, a queue full): no err, rather than one that says undefined.
        { ...(cause !== undefined && { err: cause }), code: refusal.code, event },
        `parley: event refused: ${refusal.message}`,
      )
    const refuse = (message: string) =>
      this.#session.sendNumbered((seq) => ({
        type: PacketType.ERROR,
        seq,
        ackId,
        code: refusal.code,
        message,
      }))
    try {
      refuse(refusal.message)
    } catch (error) {
      // Past `maxPayload` (a message of up to 1024 characters, the event's name besides, under
      // a small limit): thrown from here, it would escape to the transport's reader and leave
      // the pipeline stuck on this event. The client still gets the code; the log says what
      // it lost.
      refuse(REFUSAL_TOO_LONG)
      this.#context.failures.refusalTooLong(event, refusal.code, error)
    }
  }

  #dispatch(name: string, args: WireValue[], ackId: number): void {
    const listeners = listening(this.#listeners, name)
    const count = countOf(listeners)
    if (ackId === 0) {
      // No reply wanted: nothing to answer, so no per-event closures on this hot path.
      for (let i = 0; i < count; i++) {
        const listener = listenerAt(listeners!, i)
        try {
          const result = (listener as (...a: unknown[]) => unknown)(...args)
          if (isThenable(result)) result.then(undefined, (error: unknown) => this.#handlerFailed(name, error))
        } catch (error) {
          this.#handlerFailed(name, error)
        }
      }
      return
    }
    let answered = false
    this.#openRequests ??= new Set()
    const open = this.#openRequests
    open.add(ackId)
    // A Set iterates in insertion order: its first entry is the oldest request.
    if (open.size > MAX_OPEN_REQUESTS) open.delete(open.values().next().value!)
    const answer = (make: (seq: number) => NumberedPacket) => {
      if (answered) return
      answered = true
      open.delete(ackId)
      try {
        // What keeps the reply from going names the event it answers: `reply to "<name>": ...`.
        this.#session.sendNumbered(make, undefined, name)
      } catch (error) {
        // The reply could not be encoded: the client still gets an answer.
        this.#context.failures.reply(name, error)
        this.#session.sendNumbered((seq) => ({
          type: PacketType.ERROR,
          seq,
          ackId,
          code: ErrorCode.HANDLER_ERROR,
          message: HANDLER_FAILED,
        }))
      }
    }
    const fail = (error: unknown) => {
      const coded = this.#handlerFailed(name, error)
      const { code, message } = coded
        ? refusalOf(error, ErrorCode.HANDLER_ERROR, HANDLER_FAILED)
        : { code: ErrorCode.HANDLER_ERROR, message: HANDLER_FAILED }
      answer((seq) => ({ type: PacketType.ERROR, seq, ackId, code, message }))
    }
    if (count === 0) {
      // Without this the client would wait for its whole timeout.
      answer((seq) => ({
        type: PacketType.ERROR,
        seq,
        ackId,
        code: ErrorCode.NO_HANDLER,
        message: `no handler for "${name}"`,
      }))
      return
    }
    const callArgs: unknown[] = [...args]
    callArgs.push((...reply: unknown[]) =>
      answer((seq) => ({ type: PacketType.REPLY, seq, ackId, args: reply as WireValue[] })),
    )
    for (let i = 0; i < count; i++) {
      try {
        const result = (listenerAt(listeners!, i) as (...a: unknown[]) => unknown)(...callArgs)
        if (isThenable(result)) result.then(undefined, fail)
      } catch (error) {
        fail(error)
      }
    }
  }

  /**
   * Logs a handler's failure. An error with the application's own code is a deliberate refusal
   * (its code and message go to the client, and it is logged at debug); anything else is a
   * bug, logged as an error (once per burst: see `EventFailures`) and told to the client only
   * as 'the handler failed'. Returns whether the error was coded.
   */
  #handlerFailed(name: string, error: unknown): boolean {
    const coded = hasAppCode(error)
    if (coded)
      logLine(this.#context.log, 'debug', { err: error, event: name }, 'parley: event handler refused')
    else this.#context.failures.handler(name, error)
    return coded
  }

  #onEnded(reason: CloseReason): void {
    // Still set: the session ended while frozen, not by another node's claim (`claimed` clears it).
    const move = this.#move
    const handingOff = move?.tailSink !== undefined
    if (move) move.tailSink = undefined
    this.#pipeline?.close()
    // Those a handoff left waiting for replies sent back too (see `handOff`): ended here before
    // any node took it over, the session moved nowhere, and no reply can come.
    this.#ackTable?.rejectAll(new ParleyError(ErrorCode.DISCONNECTED, `the session ended: ${reason}`))
    this.#fire('disconnecting', [reason])
    this.#leaveAll()
    this.#context.ended(this.#session.sid, this.id, reason, handingOff)
    this.#fire('disconnect', [reason])
  }

  #fire(event: keyof SocketReservedEvents, args: unknown[]): void {
    const listeners = listening(this.#listeners, event)
    for (let i = 0; i < countOf(listeners); i++) {
      const listener = listenerAt(listeners!, i)
      try {
        const result = (listener as (...a: unknown[]) => unknown)(...args)
        if (isThenable(result)) {
          result.then(undefined, (err: unknown) => this.#context.failures.listener(event, err))
        }
      } catch (err) {
        this.#context.failures.listener(event, err)
      }
    }
  }
}

/**
 * A join or leave on a socket whose session another node took over: its rooms are that node's
 * now, where `restored` gave the application the socket to change them on. Rejects, so that a
 * caller who awaits it learns that nothing changed; handled here too, so that one who does not
 * await it does not end the process.
 */
function movedAway(): Promise<void> {
  const refused = Promise.reject(
    new ParleyError(
      ErrorCode.SESSION_MOVED,
      'the session moved to another node: change its rooms on the socket "restored" gave there',
    ),
  )
  refused.catch(() => {})
  return refused
}

/**
 * `socketsLeave` for one socket, room after room: the adapter takes a socket's leaves one at a
 * time (see `Adapter.addAll`). The first that fails rejects, and the rooms after it are kept.
 */
async function leaveEach(adapter: Adapter, id: string, rooms: readonly Room[]): Promise<void> {
  for (const room of rooms) await adapter.del(id, room)
}
