import type {
  ClosePacket,
  ErrorPacket,
  JsonValue,
  ParleyError,
  PreparedEvent,
  ReplyPacket,
} from '@parley/protocol'
import type { Handshake } from '../types.js'
import type { Adoption, AdoptionAsk, ClaimAnswer, SessionSnapshot } from './handoff.js'

/** A room's name. Every socket is also in the room named by its own id. */
export type Room = string

/** Which sockets a broadcast or a socket operation reaches. */
export interface BroadcastOptions {
  /**
   * Sockets in any of these rooms; every socket when empty. (An operator whose `to` named no
   * room, `to([])`, reaches no one: it never calls the adapter.)
   */
  rooms: ReadonlySet<Room>
  /** Minus sockets in any of these rooms (a sender excludes itself by its own room). */
  except: ReadonlySet<Room>
  /** Dropped where a socket cannot take it now, never kept or replayed. */
  volatile: boolean
  /** This node only, even when the adapter spans several. */
  local: boolean
}

/**
 * One event for many sockets. A multi-node adapter ships `name` and `args` to the other nodes;
 * each node prepares the encoding once for all of its sockets.
 */
export interface BroadcastMessage {
  name: string
  args: JsonValue[] | unknown[]
  /** The shared encoding, made on first use on this node. */
  prepared(): PreparedEvent
}

/** A reply to a broadcast that asked for acknowledgements: the reply's first argument, or why not. */
export type BroadcastReply = { ok: true; value: unknown } | { ok: false; error: ParleyError<string> }

/** The adapter's view of a socket on this node. */
export interface LocalSocket {
  readonly id: string
  /**
   * Sends a prepared event to this socket (numbered unless volatile). This is the boundary
   * between nodes, and the event goes out as it is: the node that emitted it checked it once
   * (`BroadcastOperator`: name, size, depth, forbidden keys); nothing is checked per socket.
   */
  deliver(event: PreparedEvent, volatile: boolean): void
  /**
   * Same, asking for a reply within `timeout` ms. Numbered unless `volatile`; volatile, it is
   * dropped where the socket cannot take it now, and `settle` hears so at once
   * (PARLEY_ACK_TIMEOUT, `details.dropped`) instead of at the timeout.
   */
  deliverWithAck(
    event: PreparedEvent,
    timeout: number,
    settle: (reply: BroadcastReply) => void,
    volatile?: boolean,
  ): void
  /** A plain description, safe to hand to the application of any node. */
  describe(): SocketDescription
  /** Ends the socket's session ('server disconnect'). */
  disconnect(): void
}

/** What `fetchSockets()` gives for a socket, wherever it lives. */
export interface SocketDescription {
  id: string
  handshake: Handshake
  rooms: Set<Room>
  data: unknown
}

/**
 * An SSE or polling request that reached a node which does not hold its session, as that node
 * hands it to the node that does. Plain data: a multi-node adapter can ship it as it is.
 */
export interface RoutedRequest {
  method: 'GET' | 'POST'
  /** The path and query string, as the client sent them (`/parley/sse?v=1&sid=...`). */
  url: string
  /** The client's request headers, without hop-by-hop ones (`connection`, `content-length`, ...). */
  headers: Record<string, string>
  /**
   * The POST body, already read under `maxPayload` ('' for a GET, and with `tooLarge`; a client's
   * empty body goes as `'\n'`, which the owner reads as an empty one).
   */
  body: string
  /** The client's address. */
  address: string
  /**
   * A resume that a draining node sends on to a live node (see `anotherNode`). An adapter that
   * carries requests to another process carries this too: should the receiving node's claim
   * of the session fail, it tells the client to try again instead of starting a new session.
   * On a POST of a session: its goodbye, which a closing node sends on for the receiving node to
   * claim the session and end it (its node handed it off and is gone); `headers` then name the
   * nodes it was sent on to (`x-parley-sent-to`), for a receiving node that is closing too to
   * send it on to another.
   */
  sentOn?: true
  /**
   * A POST whose body passed `maxPayload` on the node that received it, sent on without it: the
   * receiving node answers as for such a POST of its own (413, and its session ends with
   * `payload too large` when the POST is of the transport it is attached to). An adapter that
   * carries requests to another process carries this too (one that does not still gets the
   * same answer: `serve` takes any POST without a body for such a POST).
   */
  tooLarge?: true
}

/**
 * The owning node's answer to a routed request. The body streams: an SSE stream lasts as long
 * as the transport, a poll is held until there is something to say.
 */
export interface RoutedResponse {
  status: number
  headers: Record<string, string>
  body: AsyncIterable<Uint8Array | string>
  /** The client went away: stop answering (the owner sees its request closed). */
  abort(): void
}

/** A node of the cluster: its id, and the base URL other nodes forward requests to, if known. */
export interface NodeAddress {
  node: string
  url?: string
}

/**
 * Where a session lives, as `Adapter.sessionOwner` tells it: on this node, nowhere known, or on
 * another node. With that node's `url` (its `LocalSockets.url()`, as its adapter published it)
 * this node forwards the request there itself, over the network; without one it hands the
 * request to `Adapter.routeRequest`.
 */
export type SessionOwnerAnswer =
  | 'local'
  | 'unknown'
  | {
      node: string
      url?: string
      /**
       * The node is draining and has handed the session off (`Adapter.handOff`): requests of
       * the old transport still go to it, but a resume (HELLO) is answered here, where
       * `claimSession` takes the session over.
       */
      handingOff?: boolean
      /**
       * The route parameters the session opened under (a Fastify prefix such as `/:tenant`), when
       * the store keeps them (`sessionOpened` gives them): a request or resume that names it
       * under others (another tenant) is answered as one that names no session, and never sent
       * on to the node, which may not be reachable. `@parley/redis` gives them.
       */
      params?: Readonly<Record<string, string>>
    }

/**
 * How a session ended, as a resume of it is answered on any node (see `Adapter.sessionEnded`):
 * its CLOSE, and the last `seq` of its client's it took (0 for none), the ACK a client that
 * reads one (HELLO `closeAck`) gets before that CLOSE, so that it does not send again, into its
 * next session, what the ended one handled.
 */
export interface EndedSession {
  close: ClosePacket
  ack: number
  /**
   * The route parameters the session opened under (a Fastify prefix such as `/:tenant`), `{}`
   * without: only a resume under the same is answered with this record; one under others gets a
   * new session. Absent from the records of nodes of an earlier version: then a resume under any.
   */
  params?: Record<string, string>
}

/** The server's side of the contract: how an adapter finds the sockets of this node. */
export interface LocalSockets {
  /** A socket of this node whose session is alive, by its public id. */
  get(id: string): LocalSocket | undefined
  /** True when the session `sid` is alive on this node. */
  hasSession(sid: string): boolean
  /**
   * This node's `maxPayload`. An event from another node is checked against it before it is
   * delivered here, as a local emit is (nodes with different limits would otherwise send their
   * clients packets those clients refuse).
   */
  readonly maxPayload?: number
  /**
   * The path the server is mounted at (`'/parley'`). A multi-node adapter may publish it, so
   * that two applications sharing one store by mistake (same prefix, other paths) are told so.
   */
  readonly path?: string
  /**
   * `path` under the Fastify prefix of the context the server is registered in, as the router
   * reads them but for the names of parameters, each parameter that fills a segment written `:`
   * (`'/api/parley'`, `'/:/parley'` under `/:tenant`): two applications under other prefixes
   * share a `path`, but not this.
   */
  readonly route?: string
  /**
   * True when the router matches `route` in any letter case (Fastify's `caseSensitive: false`):
   * `'/Acme/parley'` and `'/acme/parley'` are one route to it, and a multi-node adapter that
   * compares `route` with other nodes' compares them so.
   */
  readonly routeAnyCase?: boolean
  /**
   * Answers a request routed here from another node (see `Adapter.routeRequest`) through this
   * node's own endpoints, hooks included, as if the client had sent it here.
   */
  serve(request: RoutedRequest): Promise<RoutedResponse>
  /**
   * This node's base URL for the requests other nodes forward to it (`http://127.0.0.1:3001`):
   * the address the server listens on (a wildcard address reads as 127.0.0.1), known once it
   * listens; undefined before. A multi-node adapter may publish another (its own option).
   */
  url(): string | undefined
  /**
   * Another node claimed `sid`, a session this node handed off (`Adapter.handOff`), and passed
   * the cut point: this node adds nothing more to its tail and forgets the session. Returns the
   * last packets for it (ERROR PARLEY_SESSION_MOVED for each client request it will never
   * answer), and the socket's rooms when they changed since the snapshot (see
   * `HandOffTail.tail`), which the adapter appends before it seals the tail. Call it while
   * the socket is still in its rooms here. Empty for a session this node does not hand off.
   */
  claimed(sid: string): string[]
  /**
   * Another node asks for `sid`, a live session of this node, because its client resumed there
   * over WebSocket (`Adapter.requestHandOff`): hands it off now, as a drain does for each of
   * its sessions (freeze, store the snapshot, tell the old transport to go). Resolves true once
   * the snapshot is stored (that node then claims it); false when this node does not hold it,
   * is closing, has handoff off, or could not store it (the session then goes on here,
   * nothing lost, and the asking node relays the WebSocket here instead). `params`: the route
   * parameters of that resume, when the asking node said them: false too when the session
   * opened under others (another tenant of `/:tenant`), whose resume it is not.
   */
  handOff(sid: string, params?: Record<string, string>): Promise<boolean>
  /**
   * Another node took `sid` over from a snapshot that this node had given up storing (the
   * session went on here), and answered its client before the adapter could take that snapshot
   * back: the client is with that node now, and the copy here would only answer a resume that
   * reaches this node with older state. It ends as a session moved to another node does:
   * `disconnect` with `'server handoff'`, no CLOSE kept for the client (a resume that reaches
   * this node is sent on to the owner), and the owner record left to that node. Nothing for a
   * session this node does not hold, or has frozen to hand off again. The adapter calls it too
   * on a node that took `sid` over with its claim unconfirmed (its confirm could not reach the
   * store), once that confirm, sent again, says the node that handed it off kept the session (or
   * ended it) first: the copy here ends the same way.
   */
  takenOver?(sid: string): void
  /**
   * The client's reply (REPLY or ERROR) to a question this node asked socket `id` before its
   * session moved to another node, sent back here by that node (see `Adapter.forwardsReplies`):
   * settles the wait it answers, once. Dropped when this node awaits no such reply (its wait
   * timed out or ended, or it never asked).
   */
  forwardedReply?(id: string, reply: ReplyPacket | ErrorPacket): void
  /**
   * A draining node asks this node to adopt `sessions`, which it handed off and nobody claimed
   * (see `Adapter.askAdoption`): each is claimed here as a resume's claim would be
   * (`Adapter.claimSession`), taken over without a client (no middleware runs: there is no
   * client to admit) and kept, detached, for its client's resume until what was left of its
   * recovery window runs out (`Adoption.left`, counted from this call: the wait for its claim's
   * turn, the claim and the takeover count against it), the broadcasts to its rooms kept for it
   * meanwhile. The claims run in the order given, at most `ADOPT_CLAIMS_AT_ONCE` at a time, and
   * none starts past `within` ms from now (what the draining node still waits: see
   * `AdoptionAsk.within`; without it, no such bound). Resolves, once every claim and takeover
   * is over, with how many were taken over; 0 at once when this node is closing (it claims
   * nothing then) or has handoff off. Never rejects.
   */
  adopt?(sessions: readonly Adoption[], within?: number): Promise<number>
}

/**
 * Rooms and broadcast, and every way the server reaches sockets other than the one at hand.
 * The in-memory adapter serves one node; a multi-node adapter (Redis, ...) implements the same
 * calls across nodes: see "The adapter" in the package README. Methods that may cross the
 * network return promises.
 */
export interface Adapter {
  /**
   * Puts a socket of this node into rooms. A promise says when the join is done: should the
   * session end meanwhile, `delAll` comes again after it.
   *
   * `addAll` and `del` come for one socket one at a time, in the order the application (or the
   * server, for `socketsJoin` and `socketsLeave`: see `addSockets`) made them: while one returns
   * a promise, the next for that socket waits until it settles, fulfilled or rejected (a
   * rejection goes to that call's caller, and the next one goes ahead). So an adapter needs no ordering of its own for one socket; calls for different
   * sockets may overlap. A promise that never settles holds up that socket's later joins and
   * leaves for good: give up after a timeout of your own.
   */
  addAll(id: string, rooms: Iterable<Room>): void | Promise<void>
  /**
   * Takes a socket of this node out of a room. In turn with `addAll` (see there). Never out of
   * its own room (the one named by its id): `del(id, id)` does nothing, as `socket.leave(socket.id)`
   * does. A socket out of its own room would get its own `socket.to(...)` and `socket.broadcast`
   * (which leave it out by that room), and `to(socket.id)` would miss it; only `delAll`, at the
   * end of its session, takes it out.
   */
  del(id: string, room: Room): void | Promise<void>
  /**
   * Takes a socket of this node out of every room (its session ended, or it was turned away at
   * its handshake). Called at once, and once more when the `addAll`s and `del`s of that socket
   * still under way or waiting their turn then are done (never with the built-in adapters,
   * which answer at once).
   */
  delAll(id: string): void
  /** The rooms of a socket of this node. */
  socketRooms(id: string): ReadonlySet<Room> | undefined
  /** Delivers an event to every matching socket (on every node unless `local`). */
  broadcast(message: BroadcastMessage, options: BroadcastOptions): void
  /**
   * Delivers an event that asks for replies. `expect(total)` is called once, with how many
   * sockets were reached on every node together (a multi-node adapter sums what each node
   * reports; a node that does not report before the timeout counts as none); `reply` is called
   * once per socket reached, with its reply or why there is none, before or after `expect`.
   * The caller settles when it has `total` replies, or at `timeout`. `options.volatile` goes
   * to each socket's `deliverWithAck`, on every node. A count given at the adapter's own bound
   * of `timeout`, set before this returns, is waited for (as long as this call took, then two
   * turns of the event loop, as long as a bound that waits for input read after a stall, as the
   * server's own deadlines do, takes to give it); an adapter that has not called `expect` by then leaves the sender's count unknown:
   * it hears `PARLEY_ACK_TIMEOUT` saying so, with the replies that came (`details.counted`
   * false).
   */
  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void
  /** Describes every matching socket. */
  fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]>
  /**
   * Makes every matching socket join rooms. A socket of this node with an `addAll` or `del`
   * still under way or waiting its turn (see `addAll`) is left out of `options` here (`except`
   * holds its own room): the server joins it with an `addAll` in turn, after those, if it still
   * matches then. So an adapter needs no ordering of its own for the sockets of the node that
   * calls; it gets the rest of them at once, as always with the built-in adapters, which answer
   * at once. Sockets of other nodes get it as the adapter applies it there, not in turn.
   */
  addSockets(options: BroadcastOptions, rooms: Room[]): void | Promise<void>
  /**
   * Makes every matching socket leave rooms, never its own room (as `del`): a room of `rooms`
   * named by a matching socket's id stays that socket's, on every node
   * (`socketsLeave(socket.id)` leaves it where it was). In turn as `addSockets`: the server takes
   * a socket with a step under way out of those rooms with `del`, one room after another.
   */
  delSockets(options: BroadcastOptions, rooms: Room[]): void | Promise<void>
  /** Ends the session of every matching socket. */
  disconnectSockets(options: BroadcastOptions): void | Promise<void>
  /**
   * Where the session `sid` lives, asked for an SSE or polling request (or an HTTP resume) that
   * names a session this node does not hold: 'local', 'unknown', or the node that holds it,
   * which `routeRequest` then hands the request to (so that no sticky sessions are needed).
   * Without it (the in-memory adapter) a session this node does not hold is unknown.
   */
  sessionOwner?(sid: string): SessionOwnerAnswer | Promise<SessionOwnerAnswer>
  /**
   * Hands a request to the node that holds its session, where `LocalSockets.serve` answers it,
   * and streams that answer back. Rejects when the node cannot be reached (the client then gets
   * 400 PARLEY_UNKNOWN_SESSION and starts a new session).
   */
  routeRequest?(node: string, request: RoutedRequest): Promise<RoutedResponse>
  /**
   * A session began on this node, or was resumed here: a multi-node adapter records that this
   * node owns it (what `sessionOwner` answers on the other nodes). The server waits for the
   * returned promise (at most `OWNER_RECORD_WAIT_MS`) before it answers the HELLO, so that the
   * client's next request, wherever the balancer sends it, finds the record. Never called for a
   * session after its `sessionClosed` (one taken over that ended during its takeover).
   * `params`: the route parameters the session opened under (`{}` under a route without any),
   * for `sessionOwner` to give with its answer.
   */
  sessionOpened?(sid: string, params: Readonly<Record<string, string>>): void | Promise<void>
  /** A session of this node ended: no node owns it any more. */
  sessionClosed?(sid: string): void
  /**
   * A session of this node ended with `ending`: a multi-node adapter keeps it for `ttl` ms (as
   * long as this node keeps it itself) where every node finds it (`endedSession`), so that a
   * resume of it that reaches another node is answered as here, with its CLOSE (and its last
   * ACK), not with a new session. Called before `sessionClosed`, so that an adapter that writes
   * both on one ordered connection never shows the session neither owned nor ended. Not called
   * for a session that moved to another node. Typed `void`: a throw or a rejection is logged,
   * and the session ends all the same; never wait on the store here.
   */
  sessionEnded?(sid: string, ending: EndedSession, ttl: number): void
  /**
   * How session `sid` ended on a node (as `sessionEnded` told it there), if it did within that
   * call's `ttl`; undefined when nothing is known of it. Asked for a resume of a session this
   * node neither holds nor remembers ending, and that no node handed off (`claimSession`
   * found nothing to claim). Waited for at most the server's `handshakeTimeout`: a rejection,
   * or no answer by then, is logged, and the resume gets a new session, as without it.
   */
  endedSession?(sid: string): EndedSession | undefined | Promise<EndedSession | undefined>
  /**
   * Drain with handoff (a multi-node adapter with a shared store; see docs/scaling.md). Stores
   * the snapshot of a session of this node so that another node can claim it, for `ttl` ms: what
   * is left of its client's recovery window, each session its own (at least 1). The whole window
   * for a session whose client is connected, told to resume elsewhere once this resolves; less
   * for one whose client was away already (its transport gone before the drain), whose window
   * has been running since: past it, no resume of that client's may find the session. Counted
   * from this call: an adapter whose write waits (for its store, or its turn) stores it for what
   * is left of `ttl` when the write goes, and resolves false, writing nothing, once nothing is
   * (the server then ends the session as its client's window would). An adapter that tells a
   * claim what was left (`SessionClaim.recoveryLeft`) reads it from there.
   * Resolves true once it is stored (the server then tells the client to resume elsewhere);
   * false when it could not be (the session then ends as without handoff, and the snapshot must
   * never be claimable; one whose middleware held events first runs them, once `withdrawHandOff`
   * resolved: see there). From then on `sessionOwner` answers `handingOff` for it, and the
   * adapter calls `LocalSockets.claimed` when another node takes it over. The server waits at
   * most `handoff.timeout`; when this resolves true after that (the session went on or ended
   * here meanwhile), the server calls `withdrawHandOff` then, so a write that finishes late is
   * taken back even by an adapter that does not undo it itself. An adapter that does (it was
   * told by `withdrawHandOff` while the write was under way) resolves false: a move given up on
   * is then counted `failed` only, not `withdrawn` too. A rejection counts as not stored
   * (`failed`), but not as proof that nothing was written (a store whose reply was lost, after the
   * write reached it, may hold the snapshot): the server calls `withdrawHandOff` once it rejects,
   * too, whenever that is. Resolve false, rather than reject, when nothing was written. For a move
   * (`LocalSockets.handOff`) that late answer is awaited for at most `ttl`, and the session is not
   * moved again meanwhile; an answer later than that is ignored: settle well within it (a timeout
   * of the adapter's own).
   */
  handOff?(snapshot: SessionSnapshot, ttl: number): Promise<boolean>
  /**
   * How many nodes other than this one are alive, as far as the adapter knows (by their
   * heartbeats, say). A draining node told 0 after it stored its sessions does not wait for
   * claims: no node could make one (the only node of a deployment restarts after it exits), so
   * it seals their tails at once, and a node that starts later within their recovery window
   * claims them whole. Without it, or with a count above 0, the drain waits for claims for up
   * to `handoff.timeout`.
   */
  otherNodes?(): number
  /**
   * A packet this node numbered for a handed-off session after its snapshot (its wire text), in
   * order: appended to the session's tail until the tail is sealed. Never throws; a write that
   * fails leaves the tail incomplete, and the claiming node finds it so.
   */
  appendHandOff?(sid: string, text: string): void
  /**
   * The drain ends with `sid` unclaimed: appends `last` and seals its tail, so that a claim that
   * comes later needs not wait for this node. `alone` when the drain sealed it at once, no other
   * node being alive to claim it (`otherNodes` answered 0): the adapter keeps that with the seal,
   * and the claim made later resolves `alone: true` with `late` (see `HandOffTail.alone`), so that
   * the node that claims it tells a restart from a client that came back after `handoff.timeout`.
   * Resolves once written (or given up).
   */
  sealHandOff?(sid: string, last: string[], alone?: boolean): Promise<void>
  /**
   * The drain (or move) is about to seal `sid` unclaimed: what the adapter still owes the
   * session and can still give it here goes to its socket now (`LocalSocket.deliver`), into
   * its tail, before the server takes its last packets for `sealHandOff`. For broadcasts of
   * this node whose fate the adapter does not know yet (given up unanswered: the store may
   * still run them), so that they reach the session once, in order, on the node that takes it
   * over later, rather than nowhere. Resolves once they went, within `ms`: the server waits no
   * longer (`SETTLE_WAIT_MS`), then takes the last packets and seals. A claim that comes
   * meanwhile takes the session as any claim does, and nothing is sealed. Without it, the
   * server seals at once.
   */
  settleHandOff?(sid: string, ms: number): Promise<void>
  /**
   * A session this node froze to hand off (`handOff` called: its snapshot stored, or its write
   * still under way) ended here instead of moving: the application disconnected it, it passed
   * `maxBufferedBytes`, or its snapshot could not be stored in time. The application has seen
   * it end, so no node may bring it back: the stored snapshot is withdrawn, and a claim made
   * after this finds nothing (the client's resume is answered with the session's CLOSE, see
   * `endedSession`, or gets a new session). If a claim won first,
   * the handoff is marked ended instead, and that claim's `takeOver` resolves `ended: true`.
   * Resolves once written, or given up (the snapshot then lasts until its `ttl`); the server
   * logs a rejection. May come while `handOff` is still writing: it must then leave nothing
   * claimable once that write is done. The server also calls it again once such a `handOff`
   * resolves true or rejects. A move that went on here (its `handOff` not answered within
   * `handoff.timeout`: the session is live here, `LocalSockets.hasSession` says so) is withdrawn
   * the same way, at once and again once that `handOff` resolves true or rejects (the server
   * records its owner again after that, see `sessionOpened`). Until both have resolved (at most
   * `ttl`), the server holds what the client sends that session, unhandled: resolve once the
   * take-back has landed (or is given up), not before, and not much later. A drain's session
   * that could not be stored while its middleware held events (acknowledged, in the snapshot)
   * goes on here the same way until it ends, and runs them once both have resolved (or at the
   * end of the drain, whatever they say). A claim that won between the late
   * write and the withdraw took a snapshot older than that live session: an adapter that can
   * tell it so resolves its `takeOver` with `ended` and `kept` (its client tries again, and finds
   * the session here). A withdraw of a snapshot that is not stored, or not this node's, does
   * nothing.
   */
  withdrawHandOff?(sid: string): Promise<void>
  /**
   * A resume named `sid`, which no node holds but one handed off: claims it for this node,
   * atomically (a compare-and-set on the owner record's epoch: two nodes never both win, and a
   * node that lost a race learns it). Resolves null when there is nothing to claim (no handoff,
   * claimed already, expired): the resume then gets a new session. The winner then calls
   * `SessionClaim.takeOver`. A resume that saw the session leave its node (`sessionOwner`
   * answered `handingOff`; or the owner stored it at this node's request, `requestHandOff`; or
   * `sessionOwner` named another node once the owner it named first could not be reached) and
   * then finds nothing to claim, and no end of the session (`endedSession`), lost to another
   * node's claim, whose takeover is over: it is answered "try again" as for `'elsewhere'` below,
   * and its next try is sent to that node. Resolves `'retry'` when the store cannot be asked now
   * (unreachable: the session may live on another node, or be handed off), or could not say
   * whether the claim went through (its answer was lost with the connection, or did not come in
   * time: the adapter takes that claim back, should it have run, before its next claim of the
   * session). The server
   * then answers the resume "try again" (503, `PARLEY_SERVER_SHUTTING_DOWN`), so that the client
   * keeps its session and tries again rather than start a new one; for one sid, for at most the
   * recovery window (a session cannot outlive it without its client), after which it answers as
   * for an unknown session. Resolves `'elsewhere'` when another node's claim of it won and that
   * node is still taking it over (the client gave up on a first try, slow to answer, and tried
   * again here, or resumed on two nodes at once): answered "try again" too, saying so (the
   * session was taken over by another node), and bounded the same way; the client's next try
   * finds the session on that node. Resolves a `ClaimMissed` when it can say why it took
   * nothing: where the session lives now (`owned`: the words of the "try again" above say
   * whether the node it left kept it; with `live`, a resume that saw the session nowhere is told
   * to try again too, see `ClaimMissed`), or that no try can ever take it over (its snapshot
   * cannot be read, or the node whose claim won left before it took the session over): the
   * resume then gets a new session at once, whatever it saw. Null keeps meaning nothing stored,
   * as above: an adapter that cannot tell these apart resolves null for them, and the client
   * may be told to try again once more, or told the session was taken over where it stayed.
   *
   * `params`: the resume's route parameters (a Fastify prefix such as `/:tenant`), `{}` without.
   * An adapter that keeps the snapshot's `params` where its claim reads them compares the two
   * first, and claims nothing for a resume under others (another tenant): it resolves `{
   * missed: 'params' }`, and the session stays claimable by its own client. One that does not
   * compare claims it as before: the server then gives the claim back (`SessionClaim.giveBack`),
   * which ends the session, and the resume gets a new session all the same.
   */
  claimSession?(sid: string, params?: Record<string, string>): Promise<ClaimAnswer>
  /**
   * `claimSession` of each of `sessions` at once, for an adapter whose store takes several claims
   * in one call: resolves with one answer per session, in order, each what `claimSession(sid,
   * params)` would resolve with alone (the same guarantees: epoch, claim id, route parameters,
   * given back on close). Used, when there, for the sessions a drain asks this node to adopt
   * (`LocalSockets.adopt`), claimed in batches of `ADOPT_CLAIM_BATCH`; without it each is claimed
   * through `claimSession`. A rejection is the store failing, as for `claimSession`: every session
   * of the call is left unclaimed here.
   */
  claimSessions?(
    sessions: readonly { sid: string; params: Record<string, string> }[],
  ): Promise<readonly ClaimAnswer[]>
  /**
   * A WebSocket resume of `sid` reached this node while `node`, alive, holds the session: asks
   * that node to hand it off (`LocalSockets.handOff` there), so that this node claims it and
   * the session lives where its client's WebSocket ends, not behind a relay. Resolves true once
   * `node` stored it; false when it would not, or did not answer in time (a node alive but
   * unreachable is never claimed from: the owner record is only ever given up by its owner).
   * Without it, such a resume is relayed to `node`. `params`: the resume's route parameters
   * (`{}` without), for `node` to hand off no session of another tenant's (`LocalSockets.handOff`
   * there): pass them on.
   */
  requestHandOff?(node: string, sid: string, params?: Record<string, string>): Promise<boolean>
  /**
   * The other live nodes that can adopt sessions (see `askAdoption`): ids to give it. Asked at
   * the end of a drain's wait for claims; without it, or with none, the sessions nobody claimed
   * are sealed as they are.
   */
  adopters?(): readonly string[]
  /**
   * Asks `node`, alive, to adopt `sessions` (`LocalSockets.adopt` there): sessions this draining
   * node handed off and nobody claimed by the end of its wait, whose clients are away (asleep, in
   * a tunnel). Each is claimed there through `claimSession`, so this node hears it as any claim
   * (`LocalSockets.claimed`) and its tail is sealed with its last packets there; the node keeps
   * the session for its client, who resumes with nothing lost, rather than have it come back to
   * a sealed tail and miss what was sent between the seal and its return (`HandOffTail.late`).
   * One request per node, for all of its sessions. Resolves with how many `node` took over, 0
   * when it would not (it is closing) or did not answer in time; the server waits for it at most
   * `ADOPT_WAIT_MS` (longer for many sessions: see `adoptionWait`), then seals what is still
   * unclaimed. `ask` (absent from a server of an earlier version): pass `within` on, for `node`
   * to start no claim past it, and call `taking` once `node` says it took the request: a share
   * whose node has not within a third of the wait, of a second at most (`ADOPT_TAKING_SHARE`),
   * is asked of another node (see `AdoptionAsk.taking`).
   */
  askAdoption?(node: string, sessions: readonly Adoption[], ask?: AdoptionAsk): Promise<number>
  /**
   * A live node other than this one for session `sid` (with its URL, for an adapter whose nodes
   * publish one), or undefined when there is none. Asked while this node drains, for a resume
   * that reached it for a session it handed off and nobody has claimed yet (a balancer that
   * still sends it requests): the resume goes on to that node, which claims the session,
   * instead of being refused (503 PARLEY_SERVER_SHUTTING_DOWN) and tried again after a backoff,
   * perhaps after `handoff.timeout`. Any live node will do, but the same one for the same `sid`
   * while the live nodes stay the same: a client that tried again (its first answer was slow)
   * must reach the node that claimed the session, where its resume goes on; on another node the
   * claim would find the session taken, and the client would get a new one.
   *
   * Asked too by a closing node for the goodbye of a session handed off by a node that is gone
   * (it claims nothing itself, and sends the goodbye on for that node to end the session), with
   * `except`: the nodes that goodbye was sent on to already, closing too; never name one of
   * them (the goodbye would go no further).
   */
  anotherNode?(
    sid: string,
    except?: ReadonlySet<string>,
  ): NodeAddress | undefined | Promise<NodeAddress | undefined>
  /**
   * True when the adapter carries the client's replies across a handoff, both ways: a node
   * that took a session over sends each reply to a question the old node asked
   * (`SessionClaim.forwardReply`) to that node alone, which settles its wait with it
   * (`LocalSockets.forwardedReply`). The server then keeps the waits of a session it hands off
   * open after the cut (each until its reply, its own timeout, `handoff.timeout` after the cut,
   * or the server's close) and says so in the snapshot (`SessionSnapshot.repliesAwaited`),
   * rather than reject them with PARLEY_SESSION_MOVED at once. Without it, or false, they are
   * rejected as the session moves, and the node that takes a session over drops the replies.
   */
  forwardsReplies?(): boolean
  /** Releases what the adapter holds (connections, timers). */
  close?(): void | Promise<void>
}

/**
 * The longest a handshake waits for `Adapter.sessionOpened`: a store that is slower (or away)
 * must not hold clients; its record then comes later, and a request that reaches another node
 * first meets an unknown session (the client resumes, within its backoff).
 */
export const OWNER_RECORD_WAIT_MS = 1000

/** Makes the adapter for a server; the plugin option `adapter`. */
export type AdapterFactory = (sockets: LocalSockets) => Adapter
