import {
  type BroadcastArgs,
  CloseReason,
  type DefaultEventsMap,
  type EventNames,
  type EventsMap,
  type HelloPacket,
  type Packet,
  type TransportName,
} from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import {
  type Adapter,
  OWNER_RECORD_WAIT_MS,
  type Room,
  type RoutedRequest,
  type RoutedResponse,
  type SocketDescription,
} from './adapter/adapter.js'
import { checkAdapter } from './adapter/check.js'
import type { Adoption } from './adapter/handoff.js'
import { MemoryAdapter } from './adapter/memory.js'
import { AdapterCallFailed, AdapterFailures, callGuarded, HANDSHAKE_FAILED } from './adapter-failures.js'
import { argumentError, checkListener } from './argument-error.js'
import { Arrivals } from './arrivals.js'
import { BroadcastOperator } from './broadcast.js'
import { logLine } from './burst-log.js'
import { Departures } from './departures.js'
import { EndedElsewhere } from './ended-elsewhere.js'
import { EndedSessions, type Ending, MAX_ENDED_SESSIONS } from './ended-sessions.js'
import { EventFailures } from './event-failures.js'
import { ForwardedReplies } from './forwarded-replies.js'
import { HandoffLogs } from './handoff-logs.js'
import type { HandshakeRequest } from './handshake.js'
import { HandshakeMiddleware, type Middleware } from './handshake-middleware.js'
import { answerEnded, Hellos } from './hellos.js'
import { UnreachableOwners } from './http/unreachable-owners.js'
import { isThenable } from './incoming.js'
import { Lingering } from './lingering.js'
import { type Metrics, noMetrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'
import { type Refusal, tryAgain } from './refusals.js'
import { NO_PARAMS, type RouteParams, sameParams } from './route-params.js'
import { ServerLogs } from './server-logs.js'
import type { Session, SessionConfig } from './session.js'
import { SessionLimit } from './session-limit.js'
import { Shutdown } from './shutdown.js'
import { ServerSocket, type SocketContext } from './socket.js'
import { Takeover } from './takeover.js'
import { shown } from './thrown.js'
import { httpTransports } from './transports/registry.js'
import type { HttpSide, Transport } from './transports/transport.js'
import { UnknownSessions } from './unknown-sessions.js'
import { type EventSchemas, EventValidators } from './validation.js'

/**
 * The server side of Parley, reached as `app.parley`: middleware, the `connection` event, and
 * every connected socket.
 *
 * - `L`: events clients may send; `E`: events the server may send; `D`: `socket.data`'s type.
 *
 * ```ts
 * app.parley.use(async (socket) => {
 *   const { token } = (socket.handshake.auth ?? {}) as { token?: string }
 *   if (!(await isValid(token))) throw new ParleyError('UNAUTHORIZED', 'log in first')
 * })
 * app.parley.on('connection', (socket) => socket.emit('welcome', { id: socket.id }))
 * app.parley.to('lobby').emit('news', { text: 'hi' })
 * ```
 */
export class ParleyServer<
  L extends EventsMap = DefaultEventsMap,
  E extends EventsMap = DefaultEventsMap,
  D = Record<string, unknown>,
> {
  /** The options in force, defaults filled in. */
  readonly options: Readonly<ResolvedOptions>
  readonly #log: FastifyBaseLogger
  /** The application's handshake middleware (see `use`). */
  readonly #middleware: HandshakeMiddleware<ServerSocket<L, E, D>>
  readonly #onConnection = new Set<(socket: ServerSocket<L, E, D>) => void>()
  readonly #onRestored = new Set<(socket: ServerSocket<L, E, D>) => void>()
  /** By session id: what a HELLO resumes. Private: the sid is a secret. */
  readonly #bySid = new Map<string, ServerSocket<L, E, D>>()
  /** By public socket id. */
  readonly #byId = new Map<string, ServerSocket<L, E, D>>()
  /** Closed HTTP transports whose last words wait for one more GET, by sid. */
  readonly #lingering: Lingering
  /** How recently ended sessions ended, by sid: what a resume of one is answered with. */
  readonly #ended: EndedSessions
  /** How sessions ended, as the adapter keeps it for every node (see `Adapter.sessionEnded`). */
  readonly #endedElsewhere: EndedElsewhere
  /** Invalid packets, handshakes failed by a bug, goodbyes not sent on: logged once per burst. */
  readonly #logs: ServerLogs
  /** Requests and resumes naming sessions this node does not know: counted, and logged. */
  readonly #unknown: UnknownSessions
  /** Requests and resumes that could not be handed to the node owning their session. */
  readonly #unreachable: UnreachableOwners
  /** Sessions handed off with something lost (a restart, a late claim, no seal, socket.data): logged once per burst. */
  readonly #handoffLogs: HandoffLogs
  /** The adapter's promises that rejected (an application's adapter whose store went away): logged once per burst. */
  readonly #adapterFailures: AdapterFailures
  /** Handlers, middleware and listeners of the application's that failed: logged once per burst. */
  readonly #eventFailures: EventFailures
  /** WebSockets whose HELLO has not been answered yet, and how `close()` ends each. */
  readonly #pending = new Map<Transport, () => void>()
  readonly #validators = new EventValidators()
  /** `maxSessions`: new sessions past it are refused. */
  readonly #limit: SessionLimit
  /** What every session and every socket runs on: one object each, shared, not one per client. */
  readonly #sessionConfig: SessionConfig
  readonly #socketContext: SocketContext
  #closing = false
  /**
   * True from the first moment of the instance's close (see `closeBegins`), before `#closing`:
   * what the HELLOs and the claims read, so that a new session is refused on every transport
   * alike from then on.
   */
  #closeBegun = false
  /** Resolves `whenClosing()`'s promise, made at its first call, once `#closing` turns true. */
  #closingBegun?: { promise: Promise<void>; resolve: () => void }
  /** True once `close` has run: every session has ended here. */
  #closed = false
  /** How the sessions still here end at shutdown (see `finishEvents` and `close`). */
  readonly #shutdown: Shutdown<L, E, D>
  /** The takeover of a session claimed from another node's handoff (see `Arrivals`). */
  readonly #takeover: Takeover<L, E, D>
  /** Sessions this node claims from another node's handoff and takes over (see `handshake`). */
  readonly #arrivals: Arrivals<L, E, D>
  /** The answer to each HELLO: a session resumed or opened, or a refusal (see `handshake`). */
  readonly #hellos: Hellos<L, E, D>
  /** Sessions leaving this node: moved on another node's request, or handed off by the drain. */
  readonly #departures: Departures<L, E, D>
  /** This node's origin for forwarded requests, once it listens. */
  #url: string | undefined
  /** See `succeeding`. */
  #liveBefore: (sid: string, params: Record<string, string>) => boolean = () => false
  /** See `succeeding`. */
  #endedBefore: (sid: string) => Ending | undefined = () => undefined
  /**
   * The waits of sessions that moved to another node, for the replies that node sends back;
   * undefined when the adapter does not (see `Adapter.forwardsReplies`), or handoff is off.
   */
  readonly #forwarded: ForwardedReplies | undefined
  /** What else ends with the server (requests and relays forwarded to other nodes). */
  readonly #closers: (() => void)[] = []
  /** Answers requests routed here from another node; set when the routes are registered. */
  #serve: ((request: RoutedRequest) => Promise<RoutedResponse>) | undefined
  /** Rooms and broadcast: how the server reaches its sockets (and, multi-node, everyone's). */
  readonly adapter: Adapter
  /** @internal What is counted for Prometheus; `noMetrics` without the `metrics` option. */
  readonly metrics: Metrics

  /**
   * Made by the plugin (`app.parley`); applications do not construct it. `accepted` hears of the
   * adapter once checked: the plugin closes it when the registration fails after that.
   */
  constructor(
    options: ResolvedOptions,
    log: FastifyBaseLogger,
    metrics: Metrics = noMetrics,
    accepted?: (adapter: Adapter) => void,
    /** See `LocalSockets.route`: the plugin gives it, under its context's prefix. */
    route: string = options.path,
    /** See `LocalSockets.routeAnyCase`: whether the application's router ignores letter case. */
    routeAnyCase = false,
  ) {
    this.options = options
    this.metrics = metrics
    this.#log = log
    // No run of the middleware is begun or waited for once the node began to close (see
    // `HandshakeMiddleware.run`): the moment HELLOs read too (see `Hellos`).
    this.#middleware = new HandshakeMiddleware(
      log,
      options.handshakeTimeout,
      () => this.#closing || this.#closeBegun,
    )
    this.#shutdown = new Shutdown<L, E, D>({
      log,
      retryAfter: options.shutdown.retryAfter,
      retrySpread: options.shutdown.retrySpread,
      sockets: () => [...this.#bySid.values()],
      holds: (sid) => this.#bySid.has(sid),
    })
    this.#unknown = new UnknownSessions(log)
    this.#unreachable = new UnreachableOwners(log)
    this.#handoffLogs = new HandoffLogs(log)
    this.#adapterFailures = new AdapterFailures(log)
    this.#eventFailures = new EventFailures(log)
    this.#logs = new ServerLogs(log)
    this.#lingering = new Lingering({
      pingInterval: options.pingInterval,
      pingTimeout: options.pingTimeout,
      maxBufferedBytes: options.maxBufferedBytes,
      closing: () => this.#closing,
    })
    this.#limit = new SessionLimit(options.maxSessions, log, metrics)
    const makeAdapter = options.adapter ?? ((sockets) => new MemoryAdapter(sockets))
    this.adapter = checkAdapter(
      makeAdapter({
        // A ServerSocket is a LocalSocket (checked here, not declared: those members are internal).
        get: (id) => this.#byId.get(id),
        hasSession: (sid) => this.#bySid.has(sid),
        maxPayload: options.maxPayload,
        path: options.path,
        route,
        routeAnyCase,
        serve: (request) => {
          if (!this.#serve) return Promise.reject(new Error('parley: the endpoints are not registered yet'))
          return this.#serve(request)
        },
        url: () => this.#url,
        // Made with the adapter, `#departures` is not there yet while its factory runs: one that
        // asks at once (what its store queued for this node, say) hears this node has none.
        claimed: (sid) => this.#departures?.claimed(sid) ?? [],
        handOff: (sid, params) => this.#departures?.moveOut(sid, params) ?? Promise.resolve(false),
        takenOver: (sid) => this.#departures?.takenOver(sid),
        forwardedReply: (id, reply) => void this.#forwarded?.settle(id, reply),
        adopt: (sessions, within) => this.#adopt(sessions, within),
      }),
      log,
    )
    accepted?.(this.adapter)
    // Read once: a session hands off with its waits kept open only if their replies can come.
    if (options.handoff && forwardsReplies(this.adapter)) {
      this.#forwarded = new ForwardedReplies(options.handoff.timeout)
      // A question waits for its reply up to handoff.timeout after the move, but the adapter
      // takes replies sent back only for the snapshot's life, the recovery window. Not refused:
      // a node whose sessions never move loses nothing, and a window too short for the
      // handoff is a choice other options allow (see the README's `handoff`).
      if (options.handoff.timeout > options.recoveryWindow) {
        log.warn(
          { handoffTimeout: options.handoff.timeout, recoveryWindow: options.recoveryWindow },
          'parley: handoff.timeout is longer than recovery.window: a reply sent back after the window is dropped, and its question ends at its own timeout',
        )
      }
    }
    this.#departures = new Departures<L, E, D>({
      adapter: this.adapter,
      handoff: options.handoff,
      recoveryWindow: options.recoveryWindow,
      log,
      metrics,
      adapterFailures: this.#adapterFailures,
      shutdownRetryAfter: () => this.#shutdown.retryAfter(),
      socketOf: (sid) => this.#bySid.get(sid),
      sockets: () => [...this.#bySid.values()],
      arriving: (sid) => this.#arrivals.arriving(sid),
      arrivalsUnderWay: () => this.#arrivals.underWay(),
      closing: () => this.#closing,
    })
    // A client learns that its transport is dead within pingInterval + pingTimeout and resumes
    // at once: with recovery off, that is how long the CLOSE is worth keeping.
    const endedTtl = options.recoveryWindow || options.pingInterval + options.pingTimeout
    this.#ended = new EndedSessions(endedTtl, MAX_ENDED_SESSIONS)
    this.#endedElsewhere = new EndedElsewhere(this.adapter, endedTtl, options.handshakeTimeout, {
      record: (err) => this.#adapterFailures.endedRecord.record({ err }),
      lookup: (err) => this.#adapterFailures.endedLookup.record({ err }),
    })
    this.#sessionConfig = {
      pingInterval: options.pingInterval,
      pingTimeout: options.pingTimeout,
      handshakeTimeout: options.handshakeTimeout,
      maxPayload: options.maxPayload,
      maxBufferedBytes: options.maxBufferedBytes,
      highWaterMark: options.highWaterMark,
      recoveryWindow: options.recoveryWindow,
      transports: options.transports,
      metrics,
      warn: (message, err) => logLine(this.#log, 'warn', { err }, `parley: ${message}`),
      invalid: (error) => this.#logs.invalidSessions.record({ code: error.code, reason: error.message }),
      // Its session is still in the maps when its transport lingers: its route parameters go
      // with its last words.
      linger: (sid, transport) => this.#lingering.add(sid, transport, this.#bySid.get(sid)?.params),
      ended: (sid, close, ack) => {
        // Still in the maps as it ends (a session its middleware turned away never was): its
        // route parameters go with how it ended, which a resume under others never hears.
        const params = this.#bySid.get(sid)?.params
        this.#ended.add(sid, close, ack, params)
        this.#endedElsewhere.record(sid, close.packet, ack, params)
      },
    }
    this.#socketContext = {
      log,
      maxPayload: options.maxPayload,
      maxPendingAcks: options.maxPendingAcks,
      ackFailed: (err) => this.#eventFailures.ack(err),
      failures: this.#eventFailures,
      unplainData: (id) => this.#handoffLogs.unplainData.record({ socket: id }),
      leaveFailed: (id, err) => this.#adapterFailures.leave.record({ err, socket: id }),
      maxWaitingEvents: options.maxWaitingEvents,
      adapter: this.adapter,
      forwarded: this.#forwarded,
      unsettled: new Set(),
      registered: (socket) => this.#byId.get(socket.id) === socket,
      metrics,
      validate: (event, args) => this.#validators.check(event, args),
      ended: (sid, id, reason, handingOff) => {
        // Taken over by another node: a resume still running here must not start a new
        // session when it finds the session gone (see `Hellos.movedAway`).
        const socket = this.#bySid.get(sid)
        if (socket && reason === CloseReason.SERVER_HANDOFF) {
          this.#hellos.movedAway(socket)
          this.#arrivals.movedAway(sid)
        }
        this.#forget(sid, id)
        if (handingOff) this.#departures.withdraw(sid)
      },
    }
    this.#takeover = new Takeover<L, E, D>({
      log,
      metrics,
      handoffLogs: this.#handoffLogs,
      adapterFailures: this.#adapterFailures,
      sessionConfig: this.#sessionConfig,
      socketFor: (session, handshake) => new ServerSocket<L, E, D>(session, handshake, this.#socketContext),
      runMiddleware: (socket) => this.#middleware.run(socket),
      register: (socket) => this.#register(socket),
      unregisterNew: (socket) => this.#unregisterNew(socket),
      recordOwner: (sid) => this.#recordOwner(sid),
      answerEnded: (transport, sid, hello) => answerEnded(transport, this.#ended.get(sid), hello),
      backHere: (sid) => this.#arrivals.backHere(sid),
      restored: (socket) => this.#fire(this.#onRestored, socket, 'restored'),
      handsOn: () => (this.#closing || this.#closeBegun) && !this.#closed,
    })
    this.#arrivals = new Arrivals<L, E, D>({
      adapter: this.adapter,
      handoff: options.handoff,
      handoffLogs: this.#handoffLogs,
      adapterFailures: this.#adapterFailures,
      recoveryWindow: options.recoveryWindow,
      movedAwayTtl: endedTtl,
      maxMovedAway: MAX_ENDED_SESSIONS,
      takeover: this.#takeover,
      sessionFor: (sid) => this.#bySid.get(sid)?.session,
      endedHere: (sid) => this.#ended.get(sid) !== undefined,
      endOf: (sid) => this.#endOf(sid),
      unreachableLately: (node) => this.#unreachable.lately(node),
      closing: () => this.#closing || this.#closeBegun,
      closed: () => this.#closed,
    })
    this.#hellos = new Hellos<L, E, D>({
      metrics,
      sessionConfig: this.#sessionConfig,
      limit: this.#limit,
      arrivals: this.#arrivals,
      socketFor: (session, handshake) => new ServerSocket<L, E, D>(session, handshake, this.#socketContext),
      runMiddleware: (socket, gone) => this.#middleware.run(socket, gone),
      waitForTurn: (turn) => this.#middleware.wait(turn),
      socketOf: (sid) => this.#bySid.get(sid),
      held: () => this.#bySid.size,
      register: (socket) => this.#register(socket),
      unregisterNew: (socket) => this.#unregisterNew(socket),
      recordOwner: (sid) => this.#recordOwner(sid),
      endedHere: (sid) => this.#ended.get(sid),
      endOf: (sid) => this.#endOf(sid),
      unknownResume: (sid) => this.#unknown.record(sid, 'resume'),
      connected: (socket) => this.#fire(this.#onConnection, socket, 'connection'),
      closing: () => this.#closing || this.#closeBegun,
      liveBefore: (sid, params) => this.#liveBefore(sid, params),
      endedBefore: (sid) => this.#endedBefore(sid),
    })
  }

  /** Puts `socket` in the maps: its session is this node's from here on. */
  #register(socket: ServerSocket<L, E, D>): void {
    this.#bySid.set(socket.session.sid, socket)
    this.#byId.set(socket.id, socket)
  }

  /** A session of this node is over (or never opened): out of the maps and the adapter's records. */
  #forget(sid: string, id: string): void {
    this.#bySid.delete(sid)
    this.#byId.delete(id)
    // An adapter of the application's that throws, or rejects, is logged: this runs as a
    // session ends, which must not fail with it.
    callGuarded(
      () => this.adapter.sessionClosed?.(sid),
      (err) => this.#adapterFailures.ownerRecordLeft.record({ err }),
    )
  }

  /** @internal The server listens at `url` (its origin): what other nodes forward requests to. */
  listening(url: string): void {
    this.#url = url
  }

  /**
   * @internal Tells the server whether a closing instance at its path, which it succeeded on a
   * shared HTTP server (see `UpgradeClaim.liveBefore`), holds a session live under the route
   * parameters given: a resume of one is refused as that instance refuses it, never answered
   * with a new session; and how one ended there lately (see `UpgradeClaim.endedBefore`): a resume
   * of it under the same parameters gets that session's CLOSE.
   */
  succeeding(
    liveBefore: (sid: string, params: Record<string, string>) => boolean,
    endedBefore: (sid: string) => Ending | undefined,
  ): void {
    this.#liveBefore = liveBefore
    this.#endedBefore = endedBefore
  }

  /** @internal How `sid`'s session ended here lately, if it did (see `succeeding`). */
  endedHere(sid: string): Ending | undefined {
    return this.#ended.get(sid)
  }

  /**
   * @internal Whether `sid`'s session is live here, not frozen for its handoff, under the route
   * parameters `params`: a resume of it can reach no other node (see `succeeding`). Not one under
   * others (another tenant of `/:tenant`): that resume is not its client's.
   */
  holdsLive(sid: string, params: Record<string, string>): boolean {
    const socket = this.#bySid.get(sid)
    const state = socket?.session.state
    return (
      socket !== undefined && state !== 'frozen' && state !== 'closed' && sameParams(socket.params, params)
    )
  }

  /** @internal `close` runs `closer` too, first (before WebSocket clients are closed under it). */
  atClose(closer: () => void): void {
    this.#closers.push(closer)
  }

  /** @internal The endpoints answer requests that other nodes route here. */
  serveRoutedWith(serve: (request: RoutedRequest) => Promise<RoutedResponse>): void {
    this.#serve = serve
  }

  /**
   * This server, typed with the application's event maps and socket data: the same object, for
   * the compiler only. Works with interfaces, where a cast of `app.parley` fails (TS2352).
   *
   * ```ts
   * interface SocketData { user: string }
   * const io = app.parley.typed<ClientEvents, ServerEvents, SocketData>()
   * io.on('connection', (socket) => socket.data.user)
   * ```
   */
  typed<L2 extends EventsMap, E2 extends EventsMap, D2 = Record<string, unknown>>(): ParleyServer<
    L2,
    E2,
    D2
  > {
    return this as unknown as ParleyServer<L2, E2, D2>
  }

  /** Adds a middleware. They run in order at every handshake and resume; a throw refuses. */
  use(middleware: Middleware<ServerSocket<L, E, D>>): this {
    if (typeof middleware !== 'function') throw argumentError('middleware must be a function')
    this.#middleware.add(middleware)
    return this
  }

  /**
   * Declares JSON Schemas (draft-07) for the arguments of client events, one per event name:
   * `app.parley.schemas({ chat: { type: 'array', items: [{ type: 'object' }], minItems: 1 } })`.
   * A schema describes the **arguments array** (without the ack function). Each is compiled
   * once, here; a schema that does not compile throws a TypeError naming its event. Every
   * socket checks incoming events against them before its middleware and handlers: an event
   * that fails never reaches them, and the client gets ERROR PARLEY_VALIDATION_FAILED with
   * what is wrong (as the reply to its request, or as an `error` event). Calling it again adds
   * schemas; a new schema for an event replaces the old one (under the same `$id` too).
   */
  schemas(schemas: EventSchemas<EventNames<L>>): this {
    this.#validators.add(schemas)
    return this
  }

  /**
   * `connection`: a new session is open (after OPEN; not on resumes). `restored`: a session
   * another node handed off while it drained is taken over here (after OPEN, `recovered` true),
   * with its `data` and rooms; it fired `connection` on the node where it began, never again.
   * Per-socket handlers are registered in both:
   *
   * ```ts
   * const setup = (socket: ServerSocket) => {
   *   socket.on('chat', (text) => socket.to('lobby').emit('chat', text))
   * }
   * app.parley.on('connection', setup).on('restored', setup)
   * ```
   */
  on(event: 'connection' | 'restored', listener: (socket: ServerSocket<L, E, D>) => void): this {
    const listeners = this.#listenersOf(event)
    checkListener(event, listener)
    listeners.add(listener)
    return this
  }

  /** Removes a `connection` or `restored` listener. */
  off(event: 'connection' | 'restored', listener: (socket: ServerSocket<L, E, D>) => void): this {
    this.#listenersOf(event).delete(listener)
    return this
  }

  #listenersOf(event: string): Set<(socket: ServerSocket<L, E, D>) => void> {
    if (event === 'connection') return this.#onConnection
    if (event === 'restored') return this.#onRestored
    throw argumentError(`unknown server event "${shown(event)}"`)
  }

  /** Every socket whose session is alive (attached or waiting for a resume), by public id. */
  get sockets(): ReadonlyMap<string, ServerSocket<L, E, D>> {
    return this.#byId
  }

  /** How many sessions are alive. */
  get socketsCount(): number {
    return this.#byId.size
  }

  /** A broadcast to every socket in `rooms`: `app.parley.to('lobby').emit('news', data)`. */
  to(rooms: Room | readonly Room[]): BroadcastOperator<E> {
    return this.#everyone().to(rooms)
  }

  /** The same as `to`. */
  in(rooms: Room | readonly Room[]): BroadcastOperator<E> {
    return this.to(rooms)
  }

  /** A broadcast to every socket but those in `rooms`. */
  except(rooms: Room | readonly Room[]): BroadcastOperator<E> {
    return this.#everyone().except(rooms)
  }

  /** A volatile broadcast to every socket. */
  get volatile(): BroadcastOperator<E> {
    return this.#everyone().volatile
  }

  /** A broadcast to this node's sockets only. */
  get local(): BroadcastOperator<E> {
    return this.#everyone().local
  }

  /** A broadcast that collects every socket's reply within `ms`. */
  timeout(ms: number): BroadcastOperator<E> {
    return this.#everyone().timeout(ms)
  }

  /**
   * Sends an event to every socket, encoded once; with a trailing callback, collects every
   * socket's reply (see `BroadcastOperator.emit`).
   */
  emit<K extends EventNames<E>>(event: K, ...args: BroadcastArgs<E[K]>): true {
    return this.#everyone().emit(event, ...args)
  }

  /** Describes every socket (id, handshake, rooms, data). */
  fetchSockets(): Promise<SocketDescription[]> {
    return this.#everyone().fetchSockets()
  }

  /** Makes every socket join `rooms`. */
  socketsJoin(rooms: Room | readonly Room[]): Promise<void> {
    return this.#everyone().socketsJoin(rooms)
  }

  /** Makes every socket leave `rooms`. */
  socketsLeave(rooms: Room | readonly Room[]): Promise<void> {
    return this.#everyone().socketsLeave(rooms)
  }

  /** Ends every socket's session ('server disconnect'). */
  disconnectSockets(): Promise<void> {
    return this.#everyone().disconnectSockets()
  }

  /** A broadcast to every socket, to narrow down. */
  #everyone(): BroadcastOperator<E> {
    return new BroadcastOperator<E>(
      this.adapter,
      this.options.maxPayload,
      undefined,
      undefined,
      undefined,
      this.#socketContext.unsettled,
      this.#socketContext.ackFailed,
    )
  }

  /**
   * How many SSE/polling requests and resumes were answered as naming a session this node does
   * not know, since the server started: each request answered 400 PARLEY_UNKNOWN_SESSION (a
   * session that never was, that ended, whose node cannot be reached, or that opened under other
   * route parameters), and each resume given a new session in place of the one it named (but
   * one answered with its session's CLOSE). A steady rise usually means a load balancer without
   * session affinity in front of nodes that cannot route to each other; the server also logs it
   * at warn, at most once per 10 s.
   */
  get unknownSessionCount(): number {
    return this.#unknown.total
  }

  /**
   * How many requests and resumes this node could not forward to the node that owns their
   * session (that node refused the connection, did not answer in time, or refused the
   * upgrade), since the server started. Each whose client was still there was answered here,
   * mostly as for an unknown session (a client then starts a new session; see the README for
   * sessions being handed off); one whose client had left was answered to nobody, and is counted
   * all the same. The server also logs it at warn, at most once per 10 s.
   */
  get unreachableOwnerCount(): number {
    return this.#unreachable.total
  }

  /**
   * @internal True while this draining node has handed `sid` off and no node has claimed it:
   * a resume of it that comes here goes on to a live node, which claims it (see routes). With
   * `params`, the resume's route parameters when known, only for a session opened under them: a
   * resume under others (another tenant) is answered as one of a session this node does not know.
   */
  handedOff(sid: string, params?: Readonly<Record<string, string>>): boolean {
    return this.#departures.handedOff(sid, params)
  }

  /**
   * @internal A resume of a session handed off here went on to a live node: the drain lasts
   * until `answered` settles (see `Drain.sendingOn`).
   */
  sendingOn(answered: Promise<unknown>): void {
    this.#departures.sendingOn(answered)
  }

  /**
   * @internal The goodbye of a session handed off by a node that is gone, sent on by this closing
   * node, did not reach `node`, the live node picked for it, or was refused there (see
   * `goodbyeOfHandedOff` in routes.ts): no owner of the session, so neither counted nor
   * remembered as one (`unreachableOwnerCount`).
   */
  goodbyeUnsent(node: string, err: unknown): void {
    this.#logs.goodbyesUnsent.record({ err, node })
  }

  /** @internal The adapter's `anotherNode` rejected, asked for a resume of a session handed off here. */
  noOtherNode(err: unknown): void {
    this.#adapterFailures.anotherNode.record({ err })
  }

  /**
   * @internal `handshake` threw: the answer for the client, the same on every transport, with a
   * code the client tries again on, as it does for a resume that the store cannot settle now.
   * Never the error's own message, which may say what the client should not know. The error is
   * logged once per burst, since an adapter whose store is away fails every client: as the
   * adapter's when a call of the adapter's failed (`AdapterCallFailed`), else as a bug.
   */
  handshakeFailed(err: unknown, transport: TransportName): Refusal {
    if (err instanceof AdapterCallFailed)
      this.#adapterFailures.handshake.record({ err: err.cause, transport })
    else this.#logs.handshakeBugs.record({ err, transport })
    return tryAgain(HANDSHAKE_FAILED)
  }

  /** @internal A request or resume for a session of `node` could not be forwarded there. */
  ownerUnreachable(node: string, err: unknown): void {
    this.#unreachable.record(node, err)
  }

  /**
   * @internal An HTTP request that named `sid` is answered as naming no session (400
   * PARLEY_UNKNOWN_SESSION): counted, whatever the session was (see `unknownSessionCount`).
   */
  unknownSession(sid: string): void {
    this.#unknown.record(sid, 'request')
  }

  /** True once `drain()` or `close()` has begun: new handshakes are refused. */
  get closing(): boolean {
    return this.#closing
  }

  /**
   * Resolves once `closing` is true (at once if it is): once the instance's close has reached
   * Parley's preClose hook, or, where that close failed before it (a preClose hook of the
   * application's that threw or outlasted Fastify's `pluginTimeout`, which skips the hooks after
   * it), once it reached Parley's onClose hook, which Fastify runs all the same. So it settles
   * whenever the close settles, and earlier when it goes well: a restart in place hands the
   * server's requests to the new instance then. Never rejects.
   */
  whenClosing(): Promise<void> {
    if (this.#closing) return Promise.resolve()
    if (!this.#closingBegun) {
      let resolve = () => {}
      const promise = new Promise<void>((settle) => {
        resolve = settle
      })
      this.#closingBegun = { promise, resolve }
    }
    return this.#closingBegun.promise
  }

  /**
   * @internal The instance's close has begun: the plugin calls it at the close's first moment,
   * before any preClose hook (see `atCloseStart`), one of the application's added ahead of
   * Parley's included. From then on every HELLO is refused as while closing (ERROR or 503
   * PARLEY_SERVER_SHUTTING_DOWN), on WebSocket as the answers at close refuse a handshake over
   * SSE or polling, and this node claims no session: a new session here would only end, or be
   * handed off, when the close reaches Parley, nor waits for the middleware of a handshake, a
   * resume or a takeover under way (see `HandshakeMiddleware.run`). A live session's requests are
   * still served.
   * `closing` and `whenClosing()` wait for that moment (`drain`): a successor must not take the
   * path's requests while the sessions here are still served.
   */
  closeBegins(): void {
    this.#closeBegun = true
    this.#middleware.closeBegins()
  }

  /** `closing` from now on, and the promises of `whenClosing` resolved. */
  #beginClosing(): void {
    this.#closing = true
    this.#middleware.closeBegins()
    this.#closingBegun?.resolve()
  }

  /** True once `close()` has run: every session has ended here. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Drains the node, when the adapter can store sessions and the `handoff` option allows: new
   * handshakes are refused (503, the client tries again elsewhere), then every live session is
   * handed off (see `Drain`), within the `handoff.timeout`. Resolves when that is done; the
   * plugin calls it when Fastify closes, before `close`. Calling it again returns the same
   * promise.
   */
  drain(): Promise<void> {
    this.#beginClosing()
    return this.#departures.drain()
  }

  /**
   * @internal A WebSocket resume of `sid`, under the route parameters `params`, came here while
   * `node` holds the session: asks that node to hand it off (`Adapter.requestHandOff`). True when
   * it did: the handshake then claims the session here. False when this node cannot claim, or
   * `node` would not (the session opened under other parameters, say) or did not answer.
   */
  requestHandOff(node: string, sid: string, params: Record<string, string>): Promise<boolean> {
    return this.#arrivals.requestHandOff(node, sid, params)
  }

  /**
   * @internal Before `close`, once the drain is over: every session still here ends at once with
   * CLOSE 'server shutdown', but those whose middleware holds events they acknowledged (see
   * `ServerSocket.finishEvents`): they end at `close`, once those events went through to their
   * handlers, or after `limitMs`. Meanwhile no session takes new events (their clients send them
   * again to the next server), and a GET of one of them waits for its last words (see
   * `finishing`). The handlers' own async work is not waited for. Events still in the middleware
   * after `limitMs` are lost with their session: one warning says how many.
   */
  finishEvents(limitMs: number): Promise<void> {
    return this.#shutdown.finishEvents(limitMs)
  }

  /**
   * @internal Resolves once `close` has ended `sid`'s session, when that session is finishing
   * the events in its middleware before it ends (see `finishEvents`); undefined otherwise. A GET
   * of its client that comes meanwhile waits for it, and gets the CLOSE.
   */
  finishing(sid: string): Promise<void> | undefined {
    return this.#shutdown.finishing(sid)
  }

  /**
   * Ends every session with CLOSE 'server shutdown' (and a `retryAfter` hint) and closes every
   * transport. The plugin calls this when Fastify closes (after `drain`). A CLOSE that finds no
   * GET waiting is kept for the client's next one until `forgetLastWords` (see
   * `lastWordsTaken`).
   */
  close(): void {
    this.#beginClosing()
    this.#closed = true
    for (const closer of this.#closers) closer()
    this.#handoffLogs.close()
    this.#adapterFailures.close()
    this.#eventFailures.close()
    this.#logs.close()
    this.#middleware.close()
    this.#unknown.close()
    this.#unreachable.close()
    this.#limit.close()
    this.#shutdown.endAll()
    this.#forwarded?.close()
    for (const end of this.#pending.values()) end()
    this.#pending.clear()
    this.#shutdown.ended()
  }

  /**
   * @internal Resolves once every client that was about to send a GET when its session ended at
   * close or in the drain (a polling client between two answers, a first GET on its way: see
   * `HttpSide.nextGetWithin`) has fetched its CLOSE, or once none of them can be expected any
   * more (each is given a few times its usual turnaround), and after `limitMs` at the most. A
   * client that dropped its GET is not waited for.
   */
  lastWordsTaken(limitMs: number): Promise<void> {
    return this.#lingering.taken(limitMs)
  }

  /** @internal Drops the last words still kept: the server no longer answers requests. */
  forgetLastWords(): void {
    this.#lingering.forgetAll()
  }

  /**
   * @internal The closed transport of kind `name` that still holds last words for `sid`, taken
   * out of the store. A client between two GETs learns this way that it was closed or moved.
   */
  takeLingering(sid: string, name: string): Transport | undefined {
    return this.#lingering.take(sid, name)
  }

  /** @internal Whether a closed transport of kind `name` still holds last words for `sid`. */
  hasLingering(sid: string, name: string): boolean {
    return this.#lingering.has(sid, name)
  }

  /**
   * @internal Whether session `sid` ended here (not handed off: its client goes on elsewhere)
   * and its last words still wait on a transport of kind `name`.
   */
  endedLingering(sid: string, name: string): boolean {
    return this.hasLingering(sid, name) && this.#ended.get(sid) !== undefined
  }

  /**
   * @internal The HTTP side of the transport of kind `name` that `sid`'s session (live, or frozen
   * for its handoff) is attached to, if it is.
   */
  attachedHttp(sid: string, name: string): HttpSide | undefined {
    const transport = this.#bySid.get(sid)?.session.transport
    return transport?.name === name ? transport.http : undefined
  }

  /**
   * @internal Whether `sid` names a session of this server's: live (or frozen) here, being taken
   * over here, handed off by its drain and claimed by no node yet, or ended here lately (its last
   * words perhaps still kept). Not one it handed off that another node took over since. While an
   * instance restarted at the same path serves the new clients (see `UpgradeClaim.succeeded`),
   * a closing one answers only the requests that name such a session.
   */
  holds(sid: string): boolean {
    return (
      this.#bySid.has(sid) ||
      this.#arrivals.arriving(sid) ||
      this.handedOff(sid) ||
      this.#ended.get(sid) !== undefined
    )
  }

  /** @internal The session that `sid` names, if it is alive. */
  sessionFor(sid: string): Session | undefined {
    return this.#bySid.get(sid)?.session
  }

  /**
   * @internal The route parameters of the session that `sid` names, if it is alive here or its
   * last words are kept here: a request under others is refused, and takes none of them.
   */
  paramsOf(sid: string): RouteParams | undefined {
    return this.#bySid.get(sid)?.params ?? this.#lingering.paramsOf(sid)
  }

  /**
   * @internal A WebSocket is open and its HELLO is awaited (or its handshake runs): `close()`
   * calls `end`, which closes it and stops what waits for it (its handshake timer). Null: no
   * longer pending.
   */
  trackPending(transport: Transport, end: (() => void) | null): void {
    if (end) this.#pending.set(transport, end)
    else this.#pending.delete(transport)
  }

  /**
   * @internal Handles a HELLO that arrived on `transport`: runs the middleware, then resumes the
   * session it names or opens a new one, and attaches the transport (which sends OPEN). A resume
   * of a session that ended lately is answered with its CLOSE instead. `left`: the node the
   * resume saw its session leave (its owner record said that node was handing it off, or named
   * another node once that one could not be reached, or that node stored it at this node's
   * request), so that a claim of it here that finds nothing lost to another node's claim, or
   * found the session kept there. Returns the refusal, or null when the transport got its
   * answer (or died meanwhile).
   */
  async handshake(
    transport: Transport,
    hello: HelloPacket,
    request: HandshakeRequest,
    left?: string,
  ): Promise<Refusal | null> {
    return this.#hellos.handshake(transport, hello, request, left)
  }

  /** A new socket registered but never attached: out of the adapter and the maps, quietly. */
  #unregisterNew(socket: ServerSocket<L, E, D>): void {
    // Out of its rooms first, and again after the joins still under way (see `turnedAway`);
    // ended meanwhile (while a takeover waited for its tail), its end did that already.
    if (socket.connected) socket.turnedAway()
    this.#forget(socket.session.sid, socket.id)
  }

  /** How `sid` ended, here or (as the adapter keeps it) on another node, if it did lately. */
  async #endOf(sid: string): Promise<Ending | undefined> {
    return this.#ended.get(sid) ?? (await this.#endedElsewhere.lookUp(sid))
  }

  /**
   * @internal A client's goodbye that another node sent on here (GOODBYE_ON, see routing.ts): it
   * reached the node its session left as the session moved here, crossing the move. When `packets`
   * hold a CLOSE, the session ends with 'client disconnect' as on its own transport, whatever
   * transport it is on or awaits (frozen to move on again, it ends as frozen ones do: see
   * `Session.goodbyeWhileFrozen`); one still being claimed or taken over here ends once its
   * takeover is done. False when this node neither holds, takes over, nor ended the session.
   */
  relayedGoodbye(sid: string, packets: readonly Packet[]): boolean {
    return this.#arrivals.relayedGoodbye(sid, packets)
  }

  /**
   * @internal A client's goodbye (`packets` hold its CLOSE) in an SSE or polling POST of `sid`
   * (`transport`: a transport of the POST's kind, closed: no client waits on it), whose node
   * handed the session off and is gone (its drain over, see routes.ts): no node holds the
   * session, which waits in the store to be claimed by a resume its client, gone, never sends.
   * The old node, frozen, would have ended it on that goodbye (see `Session.goodbyeWhileFrozen`);
   * here it is claimed and taken over as for a resume whose client left during the takeover
   * (`restored` fires; no middleware runs, see `Takeover.run`), then ends with 'client
   * disconnect', as one a relayed goodbye crossed (see `Arrivals`). One this node holds, takes
   * over or ended meanwhile hears it as a relayed goodbye. Resolves once done, true; false, with
   * nothing done, when this node is closing and would have to claim the session: it claims
   * nothing then, and the goodbye is for a live node (see `goodbyeOfHandedOff` in routes.ts). Never
   * rejects.
   */
  handedOffGoodbye(
    sid: string,
    packets: readonly Packet[],
    transport: Transport,
    request: HandshakeRequest,
  ): Promise<boolean> {
    return this.#arrivals.handedOffGoodbye(sid, packets, transport, request)
  }

  /**
   * See `LocalSockets.adopt`. Each adopted session is taken over on a transport closed at once:
   * no client waits on it, and the session waits detached for its client's resume.
   */
  async #adopt(sessions: readonly Adoption[], within?: number): Promise<number> {
    if (!this.#arrivals) return 0
    const adopted = await this.#arrivals.adopt(
      sessions,
      () => {
        const transport = httpTransports.polling(this.options)
        transport.close('normal')
        return transport
      },
      within,
    )
    if (adopted > 0)
      this.#log.debug(
        { adopted, asked: sessions.length },
        'parley: adopted sessions a draining node handed off and nobody claimed; each waits here for its client',
      )
    return adopted
  }

  /**
   * Runs `connection` or `restored` listeners; stops if the session ends inside one. An async
   * listener's rejection is logged as a throw is: left unhandled, it would end the process.
   */
  #fire(
    listeners: Set<(socket: ServerSocket<L, E, D>) => void>,
    socket: ServerSocket<L, E, D>,
    event: string,
  ) {
    for (const listener of [...listeners]) {
      if (!socket.connected) break
      try {
        // Typed as returning nothing, an `async` function is one all the same.
        const result: unknown = listener(socket)
        if (isThenable(result))
          result.then(undefined, (err: unknown) => this.#eventFailures.listener(event, err))
      } catch (err) {
        this.#eventFailures.listener(event, err)
      }
    }
  }

  /**
   * Tells the adapter this node owns `sid`, and waits (bounded) for its record, so that the
   * client's next request finds it on any node. A failure is the adapter's to report.
   */
  async #recordOwner(sid: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    try {
      const recorded = this.adapter.sessionOpened?.(sid, this.#bySid.get(sid)?.params ?? NO_PARAMS)
      if (!recorded) return
      await Promise.race([
        recorded,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, OWNER_RECORD_WAIT_MS)
        }),
      ])
    } catch (err) {
      this.#adapterFailures.ownerRecord.record({ err })
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Whether `adapter` says it forwards replies across a handoff; one whose answer throws does not. */
function forwardsReplies(adapter: Adapter): boolean {
  try {
    return adapter.forwardsReplies?.() === true
  } catch {
    return false
  }
}
