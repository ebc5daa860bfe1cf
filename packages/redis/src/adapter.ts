import { randomBytes } from 'node:crypto'
import {
  type Adapter,
  type Adoption,
  type AdoptionAsk,
  type BroadcastMessage,
  type BroadcastOptions,
  type BroadcastReply,
  type ClaimAnswer,
  type EndedSession,
  type LocalSockets,
  MemoryAdapter,
  type NodeAddress,
  type Room,
  type SessionOwnerAnswer,
  type SessionSnapshot,
  type SocketDescription,
} from '@parley/server'
import { type AckParts, broadcastAcross } from './ack-broadcast.js'
import { askAdoption } from './ask-adoption.js'
import { askHandOff } from './ask-handoff.js'
import { Broadcasts } from './broadcasts.js'
import { Claims } from './claim.js'
import { Claimers } from './claimers.js'
import { Commands } from './commands.js'
import { Cut } from './cut.js'
import { EndedRecords } from './ended.js'
import { HandingOff } from './handing-off.js'
import { HandOffStore } from './handoff.js'
import type { HandoffParts } from './handoff-parts.js'
import { type AskWithAck, askHolding } from './held-questions.js'
import { IncomingRequests } from './incoming-requests.js'
import { anotherNode, type LookupParts, sessionOwner } from './lookups.js'
import { ADOPTS, Nodes, SAYS_TAKING } from './nodes.js'
import { type NodesChangeListener, NodesListeners } from './nodes-change.js'
import type { RedisSubscriber, ResolvedRedisOptions } from './options.js'
import { OwnAcks } from './own-acks.js'
import { PendingRequests } from './pending.js'
import { ReadPlaces } from './places.js'
import { Publisher } from './publish.js'
import { type QueryParts, query } from './query.js'
import { ReadWindow } from './read-window.js'
import { Readiness } from './ready.js'
import type { DistributiveOmit } from './remote.js'
import { RedisErrorCode } from './send.js'
import { SessionOwners } from './sessions.js'
import { Losses, type RedisAdapterStats } from './stats.js'
import { askCountingTails } from './tail-questions.js'
import { WriteTakeBack } from './take-back.js'
import { deliverUncut, UncutSockets } from './uncut-sockets.js'
import { askCountingTakeovers, UnreadTakeovers } from './unread-takeovers.js'
import { Warnings } from './warnings.js'
import {
  type ClaimMarker,
  decodeForwardedReply,
  isClaimMarker,
  PROBE_ID,
  parseBroadcast,
  parseMembership,
  parseRequest,
  parseResponse,
  type QueryPacket,
  type ResponsePacket,
  toWireOptions,
  unpackSocket,
} from './wire.js'

/**
 * The longest `close()` waits for the steps that take back a handoff and could not reach Redis
 * yet (see `Undos.settle`): with the goodbye's `GOODBYE_MS`, a few seconds at most. Nothing else
 * bounds it: the server closes the adapter in an `onClose` hook, which Fastify does not time
 * (its `pluginTimeout` bounds each preClose hook, not those).
 */
export const UNDO_AT_CLOSE_MS = 3000

/**
 * Rooms, broadcasts and socket operations across several Parley nodes joined by Redis, and the
 * owner of each session (so that no sticky sessions are needed). Made by `redisAdapter()`; the
 * server holds it as `app.parley.adapter`.
 *
 * ```
 *  this node                          Redis                           another node
 *  broadcast ── local sockets first
 *            └─ PUBLISH <p>:broadcast ──────────────────────────────▶ its matching sockets
 *  query ────── PUBLISH <p>:request ────────────────────────────────▶ runs it locally
 *        ◀───────────────────────────────── PUBLISH <p>:response:<this node> ◀┘
 *  heartbeat ── <p>:node:<id> (TTL), <p>:nodes      sessionOpened ── <p>:session:<sha256(sid)>
 *  handOff / claimSession ── <p>:handoff:<sha256(sid)> (+ :tail), claim marker on <p>:broadcast
 * ```
 *
 * Drain with handoff is described in handoff.ts (the store), cut.ts (the cut point),
 * handing-off.ts (the old node's side), claim.ts and takeover.ts (the claimer's side). The
 * adapter wires the parts together and keeps the `Adapter` calls: each part is given what it
 * acts on, not the adapter (broadcasts.ts, ack-broadcast.ts, query.ts, incoming-requests.ts,
 * ask-handoff.ts, take-back.ts, ready.ts, ...).
 */
export class RedisAdapter implements Adapter {
  /** This node's id: random, new each time the adapter is made. */
  readonly node: string
  readonly #memory: MemoryAdapter
  readonly #options: ResolvedRedisOptions
  readonly #subscriber: RedisSubscriber
  readonly #warnings: Warnings
  readonly #nodes: Nodes
  /** The application's listeners of `onNodesChange`. */
  readonly #nodesListeners: NodesListeners
  readonly #sessions: SessionOwners
  readonly #handoffs: HandOffStore
  /** How sessions ended, for a resume on any node. */
  readonly #ended: EndedRecords
  readonly #cut = new Cut()
  /** This node's broadcasts with acks on their way back (see own-acks.ts). */
  readonly #ownAcks = new OwnAcks()
  /** Where this node is on the broadcast channel (see places.ts). */
  readonly #readPlaces = new ReadPlaces((node) => node === this.node || this.#nodes.has(node))
  /** The broadcasts this node read lately (see read-window.ts). */
  readonly #window = new ReadWindow()
  /** Sockets a takeover joined before its marker came back (see uncut-sockets.ts). */
  readonly #uncut = new UncutSockets((message, options, id) =>
    deliverUncut(this.#memory, this.#sockets, this.#warnings, message, options, id),
  )
  /** Sockets joined by a takeover here whose tail is not read yet (see unread-takeovers.ts). */
  readonly #unread = new UnreadTakeovers()
  /**
   * Asks this node's sockets, those past their claim marker too (see
   * `PastMarkerSockets.askWithAck`), the count of those a takeover joined waiting for its tail,
   * and that of those being handed off waiting for their tail to take the question (see
   * tail-questions.ts).
   */
  readonly #ask: AskWithAck = askCountingTakeovers(
    askCountingTails((...args) => this.#broadcasts.askWithAck(...args), {
      empty: () => this.#cut.empty,
      has: (id) => this.#cut.isHandingOff(id),
      watchAppends: (id, ask, then) => this.#handoffs.watchAppends(id, ask, then),
    }),
    this.#unread,
  )
  /** Takes back the handoff writes this node gave up on (see take-back.ts). */
  readonly #takeBack: WriteTakeBack
  /** This node's claims of handed-off sessions, and their takeovers (see claim.ts). */
  readonly #claims: Claims
  readonly #pending = new PendingRequests()
  /** What a broadcast with acks across nodes needs of this adapter (see ack-broadcast.ts). */
  readonly #ackParts: AckParts
  /** What a cluster query needs of this adapter (see query.ts). */
  readonly #queryParts: QueryParts
  /** Answers other nodes' requests (see incoming-requests.ts). */
  readonly #incoming: IncomingRequests
  readonly #channels: { broadcast: string; request: string; response: string; membership: string }
  /** What could not cross nodes: `stats`, and its warnings (see stats.ts). */
  readonly #losses: Losses
  /** Every command this adapter sends on the application's client, with one bound. */
  readonly #commands: Commands
  /** Every PUBLISH of this adapter (see publish.ts). */
  readonly #publisher: Publisher
  /** The broadcast channel, both ways (see broadcasts.ts). */
  readonly #broadcasts: Broadcasts
  /** What finding where a session lives needs of this adapter (see lookups.ts). */
  readonly #lookupParts: LookupParts
  /** This node's sessions being handed off (see handing-off.ts). */
  readonly #handingOff: HandingOff
  readonly #started: Promise<void>
  /**
   * When the subscriber connection first failed since it was last up (undefined while it is
   * up): the line that says it is back gives how long this node was deaf to the others.
   * `performance.now()`: a step of the wall clock meanwhile must not make that a wrong length.
   */
  #subscriberLostAt: number | undefined
  /** The first SUBSCRIBE was answered: a later `'ready'` of the subscriber is a resubscribe. */
  #subscribed = false
  /** How far the start went, and the `ready()` calls that wait for its end (see ready.ts). */
  readonly #readiness: Readiness
  #closed = false
  /** The close under way, or done: what every call of `close()` resolves with. */
  #closing: Promise<void> | undefined
  /**
   * Until when (`performance.now()`) a handoff this node wrote may still be claimed (its `ttl`,
   * and `CLAIM_KEEP_MS` for a claim taken back), or a claim this node won may still stand in
   * Redis (the life its handoff's keys had then). The mark of this node's goodbye lasts as long
   * (see `Nodes.stop`), so that a claimer that starts later does not wait for a seal, and a
   * resume that finds a claim of this node's left standing (it closed before its takeover read
   * the tail) is not told to try again for as long as the claim lasts.
   */
  #claimableUntil = 0
  /** This node's sockets: where a reply forwarded by a claimer goes (see `forwardsReplies`). */
  readonly #sockets: LocalSockets

  /** Use `redisAdapter(options)`: it checks the options. */
  constructor(sockets: LocalSockets, options: ResolvedRedisOptions) {
    this.node = randomBytes(9).toString('base64url')
    this.#options = options
    this.#memory = new MemoryAdapter(sockets)
    this.#sockets = sockets
    this.#warnings = new Warnings(options.log)
    const { client, prefix } = options
    this.#channels = {
      broadcast: `${prefix}:broadcast`,
      request: `${prefix}:request`,
      response: `${prefix}:response:${this.node}`,
      membership: `${prefix}:membership`,
    }
    this.#commands = new Commands(client, options.requestTimeout, (why, err) =>
      this.#warnings.warn(
        'undo',
        `gave up taking back a handoff step (a write that got no answer, a claim given up on, a withdraw of a session that ended, or the record of how it ended): ${why}; what it would take back stays until it expires`,
        { err },
      ),
    )
    this.#losses = new Losses(this.#warnings)
    this.#readiness = new Readiness(this.#commands.address, options.requestTimeout, () => this.#closed)
    this.#publisher = new Publisher(this.#commands, options.requestTimeout, this.#warnings)
    this.#queryParts = {
      node: this.node,
      pending: this.#pending,
      publisher: this.#publisher,
      channel: this.#channels.request,
      requestTimeout: options.requestTimeout,
      warnings: this.#warnings,
      incomplete: () => this.#losses.incomplete(),
    }
    // A broadcast with acks asks the other nodes on the request channel, as a query does.
    this.#ackParts = {
      ...this.#queryParts,
      memory: this.#memory,
      sockets,
      ask: this.#ask,
      losses: this.#losses,
      redisNow: () => this.#nodes.redisNow(),
      redisRun: () => this.#nodes.redisRun(),
      version: (node) => this.#nodes.note(node)?.v ?? 0,
      others: () => this.#nodes.others(),
      cut: this.#cut,
      uncut: this.#uncut,
      unread: this.#unread,
      readPlaces: this.#readPlaces,
      ownAcks: this.#ownAcks,
      probe: () => this.#probe(),
      awaitQuestion: (q, message, options, ask) => this.#broadcasts.awaitQuestion(q, message, options, ask),
      questionBehind: (q, message, options, ask) => this.#broadcasts.questionBehind(q, message, options, ask),
    }
    this.#incoming = new IncomingRequests({
      node: this.node,
      prefix,
      memory: this.#memory,
      ask: this.#ask,
      sockets,
      uncut: this.#uncut,
      unread: this.#unread,
      publisher: this.#publisher,
      warnings: this.#warnings,
      malformed: () => this.#malformed(this.#channels.request),
      roundTrip: () => this.#nodes.roundTrip,
      redisNow: () => this.#nodes.redisNow(),
      redisRun: () => this.#nodes.redisRun(),
      requestTimeout: options.requestTimeout,
    })
    this.#sessions = new SessionOwners(this.#commands, prefix, this.node, this.#warnings)
    this.#handoffs = new HandOffStore(this.#commands, prefix, this.node, (err) =>
      this.#warnings.warn('handoff-append', 'could not append to a handed-off session', { err }),
    )
    this.#ended = new EndedRecords(this.#commands, prefix, this.#warnings)
    this.#nodesListeners = new NodesListeners(this.#warnings)
    this.#nodes = new Nodes({
      commands: this.#commands,
      prefix,
      id: this.node,
      interval: options.heartbeatInterval,
      timeout: options.requestTimeout,
      path: sockets.path,
      route: sockets.route,
      routeAnyCase: sockets.routeAnyCase === true,
      address: () => options.address ?? sockets.url() ?? '',
      channel: this.#channels.membership,
      warnings: this.#warnings,
      gone: (nodes, lapsed) => {
        this.#pending.gone(nodes, lapsed)
      },
      saidGoodbye: (node) => {
        this.#pending.saidGoodbye(node)
      },
      beaten: (recordsGone) => {
        void this.#sessions.restore(recordsGone)
        void this.#sessions.renew()
      },
      changed: (change) => {
        this.#readPlaces.liveChanged()
        this.#nodesListeners.tell(change)
      },
    })
    this.#lookupParts = {
      node: this.node,
      sockets,
      sessions: this.#sessions,
      nodes: this.#nodes,
      requestTimeout: options.requestTimeout,
      handedOffParams: (sid) => this.#handoffs.params(sid),
    }
    this.#broadcasts = new Broadcasts({
      node: this.node,
      memory: this.#memory,
      sockets,
      cut: this.#cut,
      uncut: this.#uncut,
      readPlaces: this.#readPlaces,
      window: this.#window,
      publisher: this.#publisher,
      channel: this.#channels.broadcast,
      losses: this.#losses,
      warnings: this.#warnings,
      malformed: () => this.#malformed(this.#channels.broadcast),
      closed: () => this.#closed,
      probe: () => this.#probe(),
      requestTimeout: options.requestTimeout,
    })
    // One set of parts for both sides of a handoff (see handoff-parts.ts), the take-back of a
    // write given up on among them, made of the same parts.
    const parts: Omit<HandoffParts, 'takeBack'> = {
      node: this.node,
      claimers: new Claimers(),
      prefix,
      commands: this.#commands,
      handoffs: this.#handoffs,
      sessions: this.#sessions,
      sockets,
      memory: this.#memory,
      nodes: this.#nodes,
      cut: this.#cut,
      leavingCut: (id, until, after) => this.#broadcasts.leaving(id, until, after),
      awaitsAtMarker: (id, until) => this.#broadcasts.awaitsAtMarker(id, until),
      pastMarker: (id, until, limit, done) => this.#broadcasts.pastMarker(id, until, limit, done),
      awaitedSettled: (id, ms) => this.#broadcasts.settled(id, ms, Number.POSITIVE_INFINITY, this.#cut.count),
      uncut: this.#uncut,
      unread: this.#unread,
      readPlaces: this.#readPlaces,
      window: this.#window,
      pending: this.#pending,
      publisher: this.#publisher,
      channel: this.#channels.broadcast,
      warnings: this.#warnings,
      losses: this.#losses,
      requestTimeout: options.requestTimeout,
      closed: () => this.#closed,
      hears: () => this.#hears(),
      stands: (ms) => this.#stands(ms),
    }
    this.#takeBack = new WriteTakeBack(parts)
    const handoffParts: HandoffParts = { ...parts, takeBack: this.#takeBack }
    this.#handingOff = new HandingOff(handoffParts)
    this.#claims = new Claims(handoffParts)
    this.#subscriber = client.duplicate()
    // Without a listener, an 'error' event (Redis went away) would crash the process.
    this.#subscriber.on('error', (err) => {
      this.#readiness.subscriberError = err
      this.#subscriberLostAt ??= performance.now()
      this.#warnings.warn(
        'subscriber',
        `the subscriber connection to ${this.#commands.address} failed; it reconnects by itself`,
        { err },
      )
    })
    this.#subscriber.on('ready', () => {
      this.#subscriberBack()
      this.#resubscribed()
    })
    this.#started = this.#start()
    this.#started.then(
      () => this.#readiness.started({ ok: true }),
      (err: unknown) => this.#readiness.started({ ok: false, err }),
    )
    this.#started.catch((err: unknown) => {
      if (!this.#closed)
        this.#warnings.warn(
          'start',
          `could not subscribe at ${this.#commands.address}; other nodes are out of reach`,
          {
            err,
          },
        )
    })
  }

  /** Counters of what could not cross nodes (a copy, read-only). */
  get stats(): RedisAdapterStats {
    return this.#losses.stats()
  }

  /** The ids of the other live nodes, as of the last heartbeat or the last node that said it joined or left. */
  get liveNodes(): string[] {
    return this.#nodes.others()
  }

  /**
   * Calls `listener` each time the set of the other live nodes changes, once per change, with
   * that set and what changed (see `NodesChange`): a node joined, left with a goodbye, lapsed, or
   * came back after its record lapsed. Never for this node itself, nor before its first heartbeat
   * read the set (`ready()`; `liveNodes` has it then), nor once `close()` began. A listener that
   * throws or rejects is logged (`PARLEY_REDIS_LISTENER_FAILED`), and the others are called all
   * the same. Returns what removes the listener. Throws a TypeError (`PARLEY_INVALID_ARGUMENT`)
   * when `listener` is not a function.
   */
  onNodesChange(listener: NodesChangeListener): () => void {
    return this.#nodesListeners.add(listener)
  }

  /**
   * How many of this node's sockets take its own broadcasts when they come back over Redis
   * rather than when emitted: sessions being handed over (see cut.ts). 0 when no handover is
   * under way; each one ends when its session is claimed, sealed, taken back or ends here.
   */
  get handingOver(): number {
    return this.#cut.size
  }

  /** How many other nodes are live (see `Adapter.otherNodes`): a drain alone seals at once. */
  otherNodes(): number {
    return this.#nodes.others().length
  }

  /**
   * Resolves once this node is subscribed and its first heartbeat went through. Rejects with a
   * `RedisUnreachableError` (`PARLEY_REDIS_UNREACHABLE`) when that has not happened within
   * `requestTimeout` of the call (Redis is down, or the client's URL is wrong): its message
   * names the Redis address (never its credentials) and the step that waits, its `cause` the
   * last connection error. The adapter keeps trying meanwhile, as node-redis reconnects: once
   * Redis answers, it works, and a later call resolves. Also rejects once the adapter closed
   * before it was ready.
   */
  ready(): Promise<void> {
    return this.#readiness.wait()
  }

  async #start(): Promise<void> {
    await this.#subscriber.connect()
    // Closed while it connected: node-redis makes the socket only once connected, so the close's
    // destroy() had none to end and the connect went on. Nothing is subscribed on it; it ends now.
    if (this.#closed) {
      this.#destroySubscriber()
      return
    }
    this.#readiness.step = 'subscribe'
    const { broadcast, request, response, membership } = this.#channels
    await this.#subscriber.subscribe([broadcast, request, response, membership], (message, channel) => {
      try {
        if (channel === broadcast) this.#onBroadcast(message)
        else if (channel === request) this.#onRequest(message)
        else if (channel === response) this.#onResponse(message)
        else if (channel === membership) this.#onMembership(message)
      } catch (err) {
        // Coded as a malformed message is, for an operator to search for: this one was read.
        this.#warnings.warn('incoming', 'a message from another node could not be handled', {
          code: RedisErrorCode.HANDLING_FAILED,
          err,
        })
      }
    })
    this.#subscribed = true
    if (this.#closed) return
    this.#readiness.step = 'heartbeat'
    await this.#nodes.start()
    if (!this.#closed) this.#readiness.step = 'done'
  }

  addAll(id: string, rooms: Iterable<Room>): void {
    // A socket past its claim marker, its seal waiting, is out of its rooms until then (see
    // `Broadcasts.pastMarker`): its joins and leaves go to the rooms it is back in for the seal.
    const aside = this.#broadcasts.roomsAside(id)
    if (aside) for (const room of rooms) aside.add(room)
    else this.#memory.addAll(id, rooms)
  }

  del(id: string, room: Room): void {
    const aside = this.#broadcasts.roomsAside(id)
    if (!aside) this.#memory.del(id, room)
    else if (room !== id) aside.delete(room)
  }

  delAll(id: string): void {
    this.#uncut.forget(id)
    this.#broadcasts.roomsAside(id)?.clear()
    this.#memory.delAll(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    const aside = this.#broadcasts.roomsAside(id)
    return aside ? new Set(aside) : this.#memory.socketRooms(id)
  }

  /**
   * Delivers to this node's matching sockets now, then PUBLISHes once for the other nodes. A
   * socket being handed over (see cut.ts) takes this node's broadcasts when they come back over
   * the channel instead, at their place in the order every node sees; a `local` broadcast never
   * crosses nodes and reaches it now, like any other (it has no place in that order).
   */
  broadcast(message: BroadcastMessage, options: BroadcastOptions): void {
    this.#broadcasts.send(message, options)
  }

  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void {
    const onlyHere = options.local || this.#closed
    if (this.#closed && !options.local && !this.#uncut.empty) {
      // Nothing crosses Redis after the close: a socket joined without a cut, its tail still to
      // be read, is asked behind what it holds, in the order emitted here, and left out of the
      // count, given now (see `UncutSockets.holdQuestion`); the others are asked at once.
      askHolding(
        this.#ackParts,
        { node: this.node, q: undefined, ran: false },
        message,
        options,
        timeout,
        expect,
        reply,
      )
      return
    }
    const others = onlyHere ? [] : this.#nodes.others()
    // Alone, and no socket taking this node's own broadcasts by their place (being handed over,
    // or joined without a cut): asked here at once. Else it goes on the channel as with other
    // nodes live, so that such a socket is asked in order with the own broadcasts still on
    // their way back to it, not ahead of them.
    if (others.length === 0 && (onlyHere || (this.#cut.empty && this.#uncut.empty))) {
      // Not on the channel: a socket past its claim marker takes it where it ends (see askWithAck).
      this.#ask(message, options, timeout, expect, reply, undefined, false)
      return
    }
    broadcastAcross(this.#ackParts, others, message, options, timeout, expect, reply)
  }

  async fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]> {
    const local = await this.#memory.fetchSockets(options)
    if (options.local) return local
    const answers = await this.#query({ k: 'fetch', o: toWireOptions(options) })
    const remote: SocketDescription[] = []
    for (const answer of answers) {
      if (answer.k !== 'sockets') continue
      for (const text of answer.s) {
        const socket = unpackSocket(text)
        if (socket) remote.push(socket)
      }
    }
    return local.concat(remote)
  }

  async addSockets(options: BroadcastOptions, rooms: Room[]): Promise<void> {
    this.#memory.addSockets(options, rooms)
    if (!options.local) await this.#query({ k: 'join', o: toWireOptions(options), rooms })
  }

  async delSockets(options: BroadcastOptions, rooms: Room[]): Promise<void> {
    this.#memory.delSockets(options, rooms)
    if (!options.local) await this.#query({ k: 'leave', o: toWireOptions(options), rooms })
  }

  async disconnectSockets(options: BroadcastOptions): Promise<void> {
    this.#memory.disconnectSockets(options)
    if (!options.local) await this.#query({ k: 'disconnect', o: toWireOptions(options) })
  }

  /**
   * 'local' when this node holds the session (no round trip) or is recorded as its owner; the
   * owner and its address when another live node is, or a node whose record lapsed without a
   * goodbye (see `Nodes.lastAddress`); 'unknown' when there is no record or its node is gone.
   * With `params`, the route parameters the session opened under, when a node wrote them beside
   * the record. Two GETs sent together (the record and its parameters), and one more for a node
   * out of the live set whose address this node never saw (besides a heartbeat for a node it
   * knows nothing of, which may have joined since the last one); rejects with `RedisUnreachableError` while Redis is unreachable or does not answer
   * within `requestTimeout`, and with `RedisRefusedError` when it answers with an error (a key
   * of another type under the prefix: the message names it).
   */
  sessionOwner(sid: string): Promise<SessionOwnerAnswer> {
    return sessionOwner(this.#lookupParts, sid)
  }

  /**
   * Another live node with its address, among those that published one: picked by a hash of
   * `sid`, so that a draining node's resumes spread over the others and every resume of one
   * session goes to the same node while the live set stays; undefined when there is none. No
   * round trip: the live set of the last heartbeat. A node that drains too may be picked; it
   * turns the resume away, and the client tries again. None of `except`: closing nodes a goodbye
   * was sent on to already (see `Adapter.anotherNode`).
   */
  anotherNode(sid: string, except?: ReadonlySet<string>): NodeAddress | undefined {
    if (this.#closed) return undefined
    return anotherNode(this.#nodes, sid, except)
  }

  /**
   * Records this node as `sid`'s owner, with `params`, the route parameters it opened under,
   * beside the record (see `SessionOwners`): one SET, two for a session with parameters.
   */
  sessionOpened(sid: string, params?: Readonly<Record<string, string>>): Promise<void> {
    if (this.#closed) return Promise.resolve()
    // The first session comes once the server listens: publish its address without waiting
    // for the next heartbeat, so that others can forward to it at once.
    const published = this.#nodes.addressChanged() ? this.#nodes.beat() : undefined
    return Promise.all([this.#sessions.opened(sid, params), published]).then(() => undefined)
  }

  sessionClosed(sid: string): void {
    if (this.#closed) return
    this.#sessions.closed(sid)
  }

  /**
   * Keeps how `sid` ended for `ttl` ms, for every node (see `EndedRecords`): one SET, sent
   * before the removal of its owner record (`sessionClosed` comes after), on the same
   * connection, so that a node that finds no owner finds the record.
   */
  sessionEnded(sid: string, ending: EndedSession, ttl: number): void {
    if (this.#closed) return
    // One this node handed off: its record is kept until Redis takes it (see `EndedRecords`).
    this.#ended.write(sid, ending, ttl, this.#handoffs.bySid(sid) !== undefined)
  }

  /** How `sid` ended on any node, if one kept it within its TTL: one GET; never rejects. */
  endedSession(sid: string): Promise<EndedSession | undefined> {
    if (this.#closed) return Promise.resolve(undefined)
    return this.#ended.read(sid)
  }

  /**
   * Stores the snapshot of a session of this node for another node to claim, for `ttl` ms: one
   * script that writes it only while the owner record names this node, and marks the record as
   * handed off. From the call on, the socket takes this node's broadcasts at their place in the
   * channel's order (see cut.ts). Waits for a Redis that is away or does not answer at most
   * `requestTimeout` before it sends anything, and behind a burst on this node takes its turn
   * (see `Commands.whenInTurn`). Resolves false, the
   * session left as it was, when Redis is still away then, the write fails or takes longer than
   * `requestTimeout` (it is then undone once the server has said what became of the session,
   * see `WriteTakeBack.awaitWord`; a claim that won meanwhile is revoked), or the record names
   * another node or none; and false too, however the write went, once the server gave up on it
   * (`withdrawHandOff` meanwhile): it is taken back.
   */
  handOff(snapshot: SessionSnapshot, ttl: number): Promise<boolean> {
    return this.#handingOff.handOff(snapshot, ttl)
  }

  /**
   * Appends a packet to the tail of a session this node handed off, in call order; nothing once
   * its tail is sealed (by a claim or by `sealHandOff`), or for a session this node does not
   * hand off. Queued, and written with the node's other appends in one command (see
   * `TailWrites`); while Redis is away or has left a command unanswered for `requestTimeout`,
   * they wait, and go once it answers. Dropped only past `MAX_QUEUED_TAIL_APPENDS` or
   * `MAX_QUEUED_TAIL_BYTES` queued: the claimer then finds the tail incomplete. Never throws.
   */
  appendHandOff(sid: string, text: string): void {
    this.#handingOff.appendHandOff(sid, text)
  }

  /**
   * The drain (or move) is about to seal `sid` unclaimed: own broadcasts given up that its
   * socket still awaits (Redis may still run them, see awaited.ts) are settled first, the probe
   * sent at once, so that they go into the tail, in order, before the server takes its last
   * packets; those that never ran and still wait behind one whose fate is unknown after `ms`
   * reach it then, as at a claim's marker. Resolves once done, within `ms`; never rejects.
   */
  settleHandOff(sid: string, ms: number): Promise<void> {
    return this.#handingOff.settleHandOff(sid, ms)
  }

  /**
   * The drain ends with `sid` unclaimed: appends `last` and seals the tail (one script), so that
   * a claim that comes later finds it complete at once; `alone` (no other node live) is kept
   * with the seal, and that claim's `takeOver` resolves `alone: true`. Resolves once written, or
   * after `requestTimeout` (the seal stays queued behind the session's appends, and goes once
   * Redis answers, should the node still be open then); never rejects.
   */
  sealHandOff(sid: string, last: string[], alone = false): Promise<void> {
    return this.#handingOff.sealHandOff(sid, last, alone)
  }

  /**
   * A session this node handed off ended here: withdraws its snapshot, in one script (see
   * `HandOffStore.withdraw`), so that no claim finds it; one that won already finds it ended
   * when it reads the tail. The entry stays until then, when a claim won, so that its marker is
   * still answered with a seal. Redis away or slower than `requestTimeout`: logged, and the
   * withdraw is sent again, first, once Redis answers (until the snapshot's ttl); the entry
   * stays meanwhile, so that a claim that wins before that is answered with a seal that comes
   * behind the withdraw, and reads the session ended. Its write still unanswered (the server
   * stopped waiting for it: the session ended, or went on here): taken back at once instead (see
   * `WriteTakeBack.giveUp`). Its write not sent yet, waiting for Redis (see `handOff`): never
   * sent. Never rejects.
   */
  withdrawHandOff(sid: string): Promise<void> {
    return this.#handingOff.withdrawHandOff(sid)
  }

  /**
   * Claims a handed-off session for this node: one compare-and-set script (a stored, unclaimed
   * handoff: bump its epoch, mark it claimed by this node, make this node the owner). Exactly
   * one of several claimers wins. Null when there is nothing to claim; `{ missed: 'owned' }`
   * when the owner record names the session's node then. `{ missed: 'unreadable' }`
   * when the snapshot is not one this node can read (its keys removed: no node ever can), and
   * `{ missed: 'lost' }` when the claim that won is that of a node that said it left before it
   * took the session over: either way the client gets a new session at once. `'retry'` when Redis cannot be asked (away, or it has left a
   * command unanswered for `requestTimeout`): the session may live on another node, or be handed
   * off, and a client told it is gone would start over; told to try again, it keeps it, and its
   * next try (here or at another node) finds it once Redis answers; and so when there is nothing
   * to claim while Redis may still lack records it lost (see `restoring`). `'retry'` too when the claim
   * got no answer (none within `requestTimeout`, or the connection dropped first): it may have
   * run, and is taken back before this node sends anything else (see `HandOffStore.claim`), so
   * that the client's next try finds the session claimable. `'retry'` too when Redis answered the
   * claim with an error (logged): it could not say either. `'elsewhere'` when another node's
   * claim won and that node, live, is still taking the session over: Redis answered, and the
   * client is told so (taken over by another node) and tries again. `{ missed: 'params' }` for a
   * resume under other route parameters (`params`) than those the snapshot's session opened
   * under, compared by the claim's script before anything else it could tell: nothing claimed,
   * the handoff stays its own client's (a snapshot without them, from a node of an earlier
   * version, is claimed by a resume under any).
   */
  claimSession(sid: string, params?: Record<string, string>): Promise<ClaimAnswer> {
    return this.#claims.claim(sid, params)
  }

  /**
   * `claimSession` of each of `sessions`, in one script call for them all (see
   * `Adapter.claimSessions`): each answer, in order, as `claimSession` would give it alone.
   */
  claimSessions(
    sessions: readonly { sid: string; params: Record<string, string> }[],
  ): Promise<ClaimAnswer[]> {
    return this.#claims.claimMany(sessions)
  }

  /**
   * True: a node that takes over a session this node handed off sends the client's replies to
   * this node's questions back here, on this node's response channel, and this node does the
   * same for the sessions it takes over (see `Adapter.forwardsReplies`).
   */
  forwardsReplies(): boolean {
    return true
  }

  /**
   * Stops the heartbeat, removes this node from the live set (leaving a mark of its goodbye
   * for as long as a handoff of its may be claimed: see `#claimableUntil`), settles its pending queries (a
   * broadcast with acks fails the replies still owed by other nodes), closes the subscriber
   * connection it made (one still connecting as soon as it is up: see `#start`) and logs the
   * warnings it held back. Before that it seals every tail whose seal waits at a claim marker
   * (see `Broadcasts.endPastMarkers`) and ends every drain's settle still waiting (see
   * `settleHandOff`), what never ran given to its session first, then waits, at most
   * `UNDO_AT_CLOSE_MS` (or `requestTimeout` when shorter), for what takes back a handoff step and could not reach Redis yet (a
   * withdraw, the undo of a write given up on) to go through, and for the appends to handed-off
   * tails (twice as long when Redis answered some meanwhile). The client passed in `client`
   * stays open. A second call resolves with the first, once all that is done: a hook that closes
   * the client after it cuts no goodbye short.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    // A seal held at a claim marker goes now, as its time limit would send it: nothing of it
    // is left to run after the close. First, while appends still reach the tails.
    this.#broadcasts.endPastMarkers()
    // So does what never ran to the sessions whose drain's settle waits, ended below.
    this.#handingOff.beforeClose()
    this.#closed = true
    // A drain's settle before an unclaimed seal waits no longer: nothing it awaits can reach the
    // tail now.
    this.#broadcasts.endSettles()
    this.#broadcasts.stopProbing()
    this.#nodesListeners.close()
    this.#readiness.closed()
    // A count held for a takeover's read or confirm (see `UnreadTakeovers.unconfirmed`) is given
    // now, before the cancel below settles this node's questions: a question's count of the
    // sockets asked at emit waits for it, and settled first, it would count none of them, their
    // replies coming after the total.
    this.#unread.close()
    // So is one held for a socket joined without a cut whose tail is not read yet (see
    // held-questions.ts): the sockets asked beside it are counted, and its bound ends now.
    this.#uncut.close()
    this.#pending.cancel()
    this.#ownAcks.close()
    // And one a takeover that the cancel ended joins now.
    this.#unread.close()
    this.#destroySubscriber()
    // An UNDO that still waits for the server's word on its session (see
    // `WriteTakeBack.awaitWord`) goes now.
    for (const entry of this.#handoffs.undosWaiting()) void this.#takeBack.giveUp(entry)
    // What takes back a handoff step (a withdraw, a write given up on) and could not reach Redis
    // yet: a node that goes without it leaves a snapshot claimable until it expires.
    // So too the appends and seals of handed-off tails still queued for a slow Redis: a tail
    // left without them is read incomplete. That wait is given once more when Redis answered
    // meanwhile (see `TailWrites.settle`).
    const wait = Math.min(UNDO_AT_CLOSE_MS, this.#options.requestTimeout)
    const [undone] = await Promise.all([this.#commands.settleUndos(wait), this.#handoffs.settleAppends(wait)])
    // A batch of tail appends still waiting its turn is refused here, or sent at last: either
    // way the tails' queue knows at once (it counts a batch as sent only once it goes on the
    // connection), and the count below says which.
    this.#commands.stop()
    const tails = this.#handoffs.stop()
    if (undone > 0) {
      this.#warnings.warn(
        'close',
        `${undone} step(s) taking back a handoff could not reach Redis before the adapter closed; what they take back stays until it expires`,
      )
    }
    if (tails.unsent > 0) {
      this.#warnings.warn(
        'close-unsent',
        `${tails.unsent} append(s) or seal(s) to handed-off sessions' tails could not reach Redis before the adapter closed; the nodes that take those sessions over find their tails incomplete`,
      )
    }
    // Sent, not answered: neither lost nor known to be written.
    if (tails.sent > 0) {
      this.#warnings.warn(
        'close-unanswered',
        `${tails.sent} append(s) or seal(s) to handed-off sessions' tails were sent and not answered before the adapter closed; Redis may still write them: a node that reads such a tail before they land finds it incomplete`,
      )
    }
    // Each step of the goodbye that did not go through, said as what it is.
    const failed = await this.#nodes.stop(this.#claimableUntil - performance.now())
    for (const message of failed) this.#warnings.warn('goodbye', message)
    this.#warnings.close()
  }

  /** A handoff this node wrote, or a claim it won, may stand in Redis for `ms` from now. */
  #stands(ms: number): void {
    this.#claimableUntil = Math.max(this.#claimableUntil, performance.now() + ms)
  }

  /** Ends the subscriber connection at once, its pending commands rejected. */
  #destroySubscriber(): void {
    try {
      this.#subscriber.destroy()
    } catch {
      // Already closed.
    }
  }

  /**
   * Asks `node`, alive, to hand off `sid` (its client resumed here over WebSocket): see
   * `Adapter.requestHandOff`. False when `node` is not a live node, says no, does not say that
   * it got the request within `HANDOFF_ASKED_MS` (or `requestTimeout`, when shorter: a node of
   * an earlier version, which does not say so, is given twice `requestTimeout`), or does not
   * answer within twice `requestTimeout` (its own store of the snapshot may take one; at most
   * `MAX_TIMER_MS`). `params`, the resume's route parameters, go with the request: `node` says
   * no for a session opened under others (a node of an earlier version does not read them).
   */
  requestHandOff(node: string, sid: string, params?: Record<string, string>): Promise<boolean> {
    if (this.#closed || !this.#nodes.others().includes(node)) return Promise.resolve(false)
    // Deaf, this node would not hear `node` answer, and could not claim what it hands off (see
    // `Claims.claim`): the server relays the WebSocket to `node` instead, which keeps the session.
    if (!this.#hears()) return Promise.resolve(false)
    const says = (this.#nodes.note(node)?.v ?? 0) >= 1
    return askHandOff(this.#queryParts, node, sid, says, params)
  }

  /**
   * The other live nodes that adopt sessions (see `Adapter.adopters`): those whose note says
   * they read the request (`ADOPTS`), as of the last heartbeat; none once `close()` began.
   */
  adopters(): string[] {
    if (this.#closed) return []
    return this.#nodes.others().filter((node) => (this.#nodes.note(node)?.v ?? 0) >= ADOPTS)
  }

  /**
   * Asks `node` to adopt `sessions` (see `Adapter.askAdoption`): one request on the request
   * channel, which only `node` answers, with how many it took over. 0 when `node` is not a live
   * node, would not, or did not answer within twice `requestTimeout` (its claims and takeovers
   * each wait on Redis; at most `MAX_TIMER_MS`). A node whose note says it does (`SAYS_TAKING`)
   * is asked to say at once that it took the request: `ask.taking` is called then (at once for
   * one of an earlier version, which cannot), and a node that does not say it soon has its
   * sessions asked of another (see `AdoptionAsk.taking`).
   */
  askAdoption(node: string, sessions: readonly Adoption[], ask?: AdoptionAsk): Promise<number> {
    if (this.#closed || sessions.length === 0 || !this.#nodes.others().includes(node))
      return Promise.resolve(0)
    const says = (this.#nodes.note(node)?.v ?? 0) >= SAYS_TAKING
    return askAdoption(this.#queryParts, node, sessions, says, ask)
  }

  /** Runs a query on every other live node (see query.ts). */
  #query(request: DistributiveOmit<QueryPacket, 'n' | 'id' | 'to'>): Promise<ResponsePacket[]> {
    return query(this.#queryParts, this.#closed ? [] : this.#nodes.others(), request)
  }

  #onBroadcast(text: string): void {
    const packet = parseBroadcast(text)
    if (!packet) {
      this.#malformed(this.#channels.broadcast)
      return
    }
    if (this.#closed) return
    if (isClaimMarker(packet)) {
      this.#onClaimMarker(packet)
      return
    }
    this.#broadcasts.read(packet)
    // Own messages come back in order: a broadcast with acks sent before this one that has not
    // is lost.
    if (packet.n === this.node && packet.q !== undefined) this.#ownAcks.passed(packet.q)
  }

  /**
   * A claim marker, at its place among the broadcasts. On the claimer, it is the moment to join
   * the socket to its rooms; on the node that handed the session off, the moment to stop: the
   * server gives its last packets (`LocalSockets.claimed`), the tail is sealed after them and
   * the claimer told. Both happen before the next broadcast is read.
   */
  #onClaimMarker(marker: ClaimMarker): void {
    this.#handingOff.claimMarker(marker)
    if (marker.n === this.node) this.#claims.marked(marker.id)
  }

  #onRequest(text: string): void {
    const request = parseRequest(text)
    if (!request) {
      this.#malformed(this.#channels.request)
      return
    }
    if (this.#closed) return
    // Meant for another node alone: a query or a broadcast with acks asked again of it (see
    // query.ts, ack-broadcast.ts), which this node had the first time (or sent), a handoff or a
    // count of replies asked of it. Nothing of it is read here, its place neither: an old one,
    // read with the first ask.
    if (request.to !== undefined && request.to !== this.node) return
    // A broadcast with acks is kept in this node's places as a broadcast is (see places.ts): the
    // tails this node appends to say it asked their sessions what it reads from here on.
    const place = request.k === 'ack' ? request.q : undefined
    if (place !== undefined) this.#readPlaces.read(request.n, place)
    if (request.n === this.node) {
      // A broadcast with acks of this node's came back: the sockets being handed over take it
      // now, at its place among the broadcasts (see own-acks.ts); behind the own broadcasts
      // given up before it that they wait for, which it proves never ran (see awaited.ts).
      const q = request.k === 'ack' ? this.#ownAcks.placeOf(request.id) : undefined
      if (q !== undefined) {
        this.#broadcasts.ackBack(q)
        this.#ownAcks.read(request.id)
        this.#broadcasts.passed(q)
      }
    } else this.#incoming.answer(request)
    // Once it went by the places of the sockets joined without a cut: those it reaches filter
    // nothing more.
    if (place !== undefined && !this.#uncut.empty) this.#uncut.readFrom(request.n, place)
  }

  #onMembership(text: string): void {
    const packet = parseMembership(text)
    if (!packet) {
      this.#malformed(this.#channels.membership)
      return
    }
    if (packet.n === this.node || this.#closed) return
    // A node of this version says where it is: known at once, for a request forwarded to it
    // right away. The read of the live set that follows confirms it.
    if (packet.k === 'joined' && packet.a !== undefined && packet.v !== undefined) {
      this.#nodes.joined(packet.n, packet.a, {
        v: packet.v,
        ...(packet.p !== undefined && { p: packet.p }),
        ...(packet.r !== undefined && { r: packet.r }),
      })
    }
    // A node that left removed its record first: gone at once, as the read that follows says.
    if (packet.k === 'left') this.#nodes.left(packet.n)
    this.#nodes.refresh()
  }

  #onResponse(text: string): void {
    const packet = parseResponse(text)
    if (!packet) {
      this.#malformed(this.#channels.response)
      return
    }
    if (packet.k === 'answered') {
      const reply = decodeForwardedReply(packet.p, this.#sockets.maxPayload)
      if (!reply) this.#malformed(this.#channels.response)
      // Only from the node that took the session over: well formed, but nobody here awaits a
      // reply from another, dropped without a line as one for a question that ended.
      else if (this.#handingOff.claimedBy(packet.i, packet.n)) this.#sockets.forwardedReply?.(packet.i, reply)
      return
    }
    if (packet.k === 'resubscribed') {
      // Another node hears the request channel again: what it missed is asked again.
      if (packet.n !== this.node) {
        if (packet.id === '') this.#pending.heard(packet.n)
        return
      }
      // A probe's note (see `#probe`): this node's subscriber did not drop to send it.
      if (packet.id === PROBE_ID) {
        this.#broadcasts.probed(packet.q)
        this.#ownAcks.passed(packet.q)
      } else this.#settleGap(packet.q)
      return
    }
    this.#pending.answer(packet)
  }

  /**
   * The subscriber is subscribed again after its connection dropped: this node's own broadcasts
   * PUBLISHed meanwhile never come back. A note to itself, PUBLISHed after them on the same
   * connection, tells which: those up to the count it carries that are not back when it comes.
   */
  /**
   * The subscriber connection is up again after it failed: said once per outage, so that the
   * operator who read its failures reads their end too (what the failures held back comes first).
   */
  #subscriberBack(): void {
    const lostAt = this.#subscriberLostAt
    if (lostAt === undefined || this.#closed) return
    this.#subscriberLostAt = undefined
    // Whole ms, as the wall clock gave them.
    const downMs = Math.round(performance.now() - lostAt)
    this.#warnings.flush('subscriber')
    this.#warnings.warn(
      'subscriber-back',
      `the subscriber connection to ${this.#commands.address} is up again, ${downMs} ms after it failed: this node hears the other nodes again`,
      { downMs },
    )
  }

  /**
   * Whether the subscriber is subscribed and its connection up. After an outage node-redis
   * brings each connection back on a backoff of its own, so the subscriber may come back (and
   * subscribe again, before its `'ready'`) seconds after the application's client answers.
   */
  #hears(): boolean {
    return this.#subscribed && this.#subscriber.isReady !== false
  }

  #resubscribed(): void {
    if (!this.#subscribed || this.#closed) return
    // The subscriber may be back before the connection the note goes on (Redis restarted): it
    // waits for that one, at most requestTimeout, as other steps do. Behind a burst on this
    // node it takes its turn, as the steps of a handoff do: a wait for the queue to empty would
    // give up while a burst outlasts requestTimeout, and the sockets waiting for the own
    // broadcasts lost meanwhile would wait for good. In turn, it still goes after every own
    // broadcast it counts: those sent went on the connection before it, the others were refused.
    void this.#commands.whenInTurn().then((available) => {
      if (!available || this.#closed) return
      const note: ResponsePacket = { n: this.node, id: '', k: 'resubscribed', q: this.#cut.count }
      this.#publisher.publishInTurn(this.#channels.response, note)
      // The answers to this node's queries sent while it was deaf are lost: asked again. And the
      // queries the others sent it meanwhile: they ask again once told (see query.ts).
      this.#pending.heard(this.node)
      for (const other of this.#nodes.others())
        this.#publisher.publish(`${this.#options.prefix}:response:${other}`, note)
    })
  }

  /**
   * A note to itself, as `#resubscribed` sends, PUBLISHed behind a broadcast with acks given up
   * unanswered (see ack-broadcast.ts), or a broadcast the sockets being handed over wait for
   * (see awaited.ts): when it comes back, this node's own messages sent before it that did not
   * come back first never ran. Nothing is sent while Redis takes no PUBLISH: the next probe
   * tries again.
   */
  #probe(): void {
    if (this.#closed) return
    const note: ResponsePacket = { n: this.node, id: PROBE_ID, k: 'resubscribed', q: this.#cut.count }
    this.#publisher.publish(this.#channels.response, note)
  }

  /**
   * The note of `#resubscribed` came back: own broadcasts up to `q` not back by now were lost
   * to this node (the other nodes may well have had them). Positioned sockets waiting for them
   * are released; like the other nodes' broadcasts of that gap, they miss them.
   */
  #settleGap(q: number): void {
    this.#broadcasts.gap(q)
    this.#ownAcks.passed(q)
  }

  /**
   * A message on `channel` that no node of this version sends: dropped, nothing run or answered
   * for it, and logged with a code an operator can search for, and the channel it came on.
   */
  #malformed(channel: string): void {
    this.#warnings.warn('malformed', 'a message from another node was malformed and was dropped', {
      code: RedisErrorCode.MALFORMED,
      channel,
    })
  }
}
