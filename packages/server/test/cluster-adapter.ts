// A multi-node adapter for tests: several Parley servers in one process, joined by an in-memory
// "bus" that stands in for Redis pub/sub. What crosses from one node to another is copied
// (structuredClone) and delivered on a later turn, as it would be over a network, so that the
// tests see what a real multi-node adapter must cope with: plain data, and answers that come late.
import { type PreparedEvent, prepareEvent, type WireValue } from '@parley/protocol'
import {
  type Adapter,
  type AdapterFactory,
  type Adoption,
  type AdoptionAsk,
  type BroadcastMessage,
  type BroadcastOptions,
  type BroadcastReply,
  type ClaimStanding,
  type LocalSockets,
  MemoryAdapter,
  type NodeAddress,
  type Room,
  type RoutedRequest,
  type RoutedResponse,
  type SessionClaim,
  type SessionOwnerAnswer,
  type SessionSnapshot,
  type SocketDescription,
} from '@parley/server'
import type { Gate } from './gated-adapter.js'

/** A later turn of the event loop: what a message to another node costs at least. */
const hop = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A session a draining node handed off, as the shared store holds it. */
interface StoredHandOff {
  snapshot: SessionSnapshot
  owner: string
  tail: string[]
  sealed: boolean
  /** Sealed at once by a drain with no other node alive (see `Adapter.sealHandOff`). */
  alone?: boolean
  /** Until `handOff` resolves, nobody can claim it. */
  stored: boolean
  claimedBy?: string
  /** Withdrawn after a claim won: the session ended on its old node (see `withdrawHandOff`). */
  ended?: boolean
}

export class Cluster {
  readonly nodes = new Map<string, ClusterAdapter>()
  /** Broadcasts shipped to another node, for tests that count them. */
  shipped = 0
  /** The store of handed-off sessions (what Redis holds for `@parley/redis`), by sid. */
  readonly handoffs = new Map<string, StoredHandOff>()
  /** When false, `handOff` fails: the store is unreachable. */
  storeUp = true
  /** How long `handOff` takes to store a session (a slow store), in ms. */
  storeDelayMs = 0
  /**
   * When set, `handOff` finishes storing a session (`stored` true) only once it settles, after
   * `storeDelayMs`: a slow store that the test lets finish once it has seen what it waits for.
   */
  storeFinishesAfter: Promise<void> | undefined
  /**
   * When true, `handOff` puts the snapshot in the store only once its write is done (after
   * `storeDelayMs`), and does not undo a write the server stopped waiting for: a withdraw made
   * meanwhile finds nothing, as with a store that does not keep a node's writes in order.
   */
  storeWritesLast = false
  /** When true, `handOff` never answers: a store whose reply is lost, with no timeout of its own. */
  storeSilent = false
  /** When set, `handOff` answers only once it settles (after its write): a store slow to reply. */
  storeAnswersAfter: Promise<void> | undefined
  /**
   * When true, `handOff` rejects once its write is done: a store whose reply was lost after the
   * write reached it (a timeout, a dropped connection). The snapshot stays claimable.
   */
  storeRejects = false
  /** The sid of each `handOff` call, in order. */
  readonly handOffSids: string[] = []
  /** The `ttl` of the latest `handOff` call of each sid: how long it asked the store to keep it. */
  readonly handOffTtls = new Map<string, number>()
  /** `handOff` calls that answered (true or false), for tests that wait for a late answer. */
  handOffsAnswered = 0
  /** How long `claimSession` takes to claim one (a client that comes back late), in ms. */
  claimDelayMs = 0
  /**
   * What each claim says was left of its client's window (`SessionClaim.recoveryLeft`): any value,
   * as an adapter of the application's may give one. Undefined: the claim says nothing.
   */
  claimRecoveryLeft: unknown = undefined
  /**
   * When each claim says the store answered it (`SessionClaim.answeredAt`), asked as the claim
   * resolves: any value. Unset: the claim says nothing.
   */
  claimAnsweredAt: (() => unknown) | undefined
  /** The sids `claimSession` was called with, in order. */
  readonly claimed: string[] = []
  /** The most `claimSession` calls under way at once, and how many are now. */
  claimsAtOnce = { most: 0, now: 0 }
  /**
   * When set, `settleHandOff` runs it, and waits for it, before the server takes the last
   * packets of a session its node seals unclaimed: what an adapter still owes that session.
   */
  settling: ((sid: string, node: string) => unknown) | undefined
  /** How long `takeOver` takes before the old node seals the tail (a slow cut), in ms. */
  takeOverDelayMs = 0
  /**
   * When true, the old node's seal never reaches a claim: `takeOver` resolves `complete: false`,
   * as when the old node is gone or its store away at the cut.
   */
  sealLost = false
  /**
   * When true, `claimSession` hands out each snapshot with a kept packet no node can restore,
   * as a store that garbles what it keeps (or a node of another version) would; with
   * `'nextAckId'`, with a next ack id that is none (0).
   */
  unreadableSnapshots: boolean | 'nextAckId' = false
  /** When true, a takeover's tail ends with a packet that does not follow the snapshot's numbers. */
  unreadableTails = false
  /**
   * When true, each claim's `confirm` answers only when the test calls its entry in
   * `heldConfirms`: the claimer stays between the tail and its claim's standing.
   */
  holdConfirms = false
  /** Answers of the `confirm`s held (see `holdConfirms`), oldest first. */
  readonly heldConfirms: ((standing: ClaimStanding) => void)[] = []
  /**
   * When true, each claim's `takeOver` reaches its cut point only when the test calls its entry
   * in `heldTakeOvers`: the claimer has the session registered and waits for the old node's tail.
   */
  holdTakeOvers = false
  /** The cuts of the `takeOver`s held (see `holdTakeOvers`), oldest first. */
  readonly heldTakeOvers: (() => void)[] = []
  /** Nodes that are alive but that no other node reaches (their requests are lost). */
  readonly unreachable = new Set<string>()
  /**
   * Addresses published in place of a node's own (see `sessionOwner` with handoff): one that
   * leads nowhere makes a live node unreachable over the network, the adapter still reaching it.
   */
  readonly addresses = new Map<string, string>()
  /** `requestHandOff` calls, for tests that check a resume asked (or did not ask) for a move. */
  handOffRequests = 0
  /** `withdrawHandOff` calls: sessions that ended on the node handing them off. */
  withdrawals = 0
  /** `askAdoption` calls (with `adopts`): the node asked and the sids it was asked to adopt, in order. */
  readonly adoptionAsks: { node: string; sids: string[] }[] = []
  /** The `left` of each sid in the latest `askAdoption` that named it: what its asker said was left. */
  readonly adoptionLefts = new Map<string, number>()
  /**
   * Nodes alive in the adapter's eyes that never answer an ask to adopt, nor say they took it: a
   * process stuck, or killed before it could leave the live set.
   */
  readonly silent = new Set<string>()
  /**
   * Nodes alive in the adapter's eyes that say they took an ask to adopt, then adopt nothing: a
   * node whose close began after it was listed.
   */
  readonly refusing = new Set<string>()
  /** How long `addAll` takes to put a socket into its rooms (an adapter whose joins are slow), in ms. */
  joinDelayMs = 0
  /** Socket ids whose slow `addAll` (see `joinDelayMs`) is done, in order. */
  readonly slowJoins: string[] = []
  /**
   * When false, `routeRequest` leaves out `RoutedRequest.tooLarge`, as a custom adapter written
   * before that field (or careless with it) would: the rest of the request goes as it is.
   */
  carriesTooLarge = true

  /**
   * `handoff`: the adapter stores sessions for a drain with handoff (off by default, so that
   * tests of other things close their nodes at once, as without it). `anotherNode`: with
   * handoff, the adapter names a live node for resumes that reach a draining one (true by
   * default; false for an adapter without `Adapter.anotherNode`; 'routed' names it without a
   * URL, so that the resume goes through `routeRequest`). `adopts`: with handoff, a draining
   * node asks the live ones to adopt the sessions nobody claimed (`Adapter.askAdoption`).
   */
  constructor(
    readonly options: { handoff?: boolean; anotherNode?: boolean | 'routed'; adopts?: boolean } = {},
  ) {}

  /** What another node's claim of `sid` finds: `claimSession` of node `name` (with handoff). */
  claim(name: string, sid: string): Promise<SessionClaim | null> {
    const node = this.nodes.get(name)
    if (!(node instanceof HandOffClusterAdapter)) throw new Error(`no node ${name} with handoff`)
    return node.claimSession(sid)
  }

  /** The `adapter` option of the server that is node `name`. */
  adapter(name: string): AdapterFactory {
    return (sockets) => {
      const adapter = !this.options.handoff
        ? new ClusterAdapter(this, name, sockets)
        : this.options.adopts
          ? new AdoptingClusterAdapter(this, name, sockets)
          : new HandOffClusterAdapter(this, name, sockets)
      this.nodes.set(name, adapter)
      return adapter
    }
  }
}

export class ClusterAdapter implements Adapter {
  /** This node's own rooms: a multi-node adapter keeps local membership locally. */
  readonly memory: MemoryAdapter
  /** True once the server closed (its `close` released the adapter). */
  closed = false
  /** When set, this node's joins and leaves answer only when the test says so (gated-adapter.ts). */
  gate: Gate | undefined

  constructor(
    protected readonly cluster: Cluster,
    readonly node: string,
    readonly sockets: LocalSockets,
  ) {
    this.memory = new MemoryAdapter(sockets)
  }

  addAll(id: string, rooms: Iterable<Room>): void | Promise<void> {
    if (this.gate) return this.gate.join(id, rooms, (list) => this.memory.addAll(id, list))
    const delay = this.cluster.joinDelayMs
    if (delay === 0) return this.memory.addAll(id, rooms)
    const list = [...rooms]
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        this.memory.addAll(id, list)
        this.cluster.slowJoins.push(id)
        resolve()
      }, delay),
    )
  }

  del(id: string, room: Room): void | Promise<void> {
    if (this.gate) return this.gate.leave(room, () => this.memory.del(id, room))
    this.memory.del(id, room)
  }

  delAll(id: string): void {
    if (this.gate) this.gate.leaveAll(() => this.memory.delAll(id))
    else this.memory.delAll(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    return this.memory.socketRooms(id)
  }

  broadcast(message: BroadcastMessage, options: BroadcastOptions): void {
    if (this.cluster.options.handoff && !options.local) {
      // Every node, this one included, in one later turn: a handoff's cut point (a turn of its
      // own, see claimSession) then falls before all of them or after all of them. Delivered
      // here at once and elsewhere a hop later, a broadcast of the old or the new node could
      // reach the socket on both (twice) or on neither (lost).
      const shipped = [
        [this, { message, options }] as const,
        ...this.#others().map((node) => [node, this.#ship(message, options)] as const),
      ]
      void hop().then(() => {
        for (const [node, copy] of shipped) node.memory.broadcast(copy.message, copy.options)
      })
      return
    }
    this.memory.broadcast(message, options)
    if (options.local) return
    for (const other of this.#others()) {
      const shipped = this.#ship(message, options)
      void hop().then(() => other.memory.broadcast(shipped.message, shipped.options))
    }
  }

  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void {
    const others = options.local ? [] : this.#others()
    let waiting = others.length + 1
    let total = 0
    const counted = (count: number) => {
      total += count
      if (--waiting === 0) expect(total)
    }
    this.memory.broadcastWithAck(message, options, timeout, counted, reply)
    for (const other of others) {
      const shipped = this.#ship(message, options)
      void hop().then(() =>
        other.memory.broadcastWithAck(
          shipped.message,
          shipped.options,
          timeout,
          (count) => void hop().then(() => counted(count)),
          (answer) => void hop().then(() => reply(structuredClone(answer))),
        ),
      )
    }
  }

  async fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]> {
    const found = await this.#everywhere(options, (node, o) => node.memory.fetchSockets(o))
    return found.flat().map((socket) => structuredClone(socket))
  }

  async addSockets(options: BroadcastOptions, rooms: Room[]): Promise<void> {
    await this.#everywhere(options, (node, o) => node.memory.addSockets(o, rooms))
  }

  async delSockets(options: BroadcastOptions, rooms: Room[]): Promise<void> {
    await this.#everywhere(options, (node, o) => node.memory.delSockets(o, rooms))
  }

  async disconnectSockets(options: BroadcastOptions): Promise<void> {
    await this.#everywhere(options, (node, o) => node.memory.disconnectSockets(o))
  }

  close(): void {
    this.closed = true
  }

  async sessionOwner(sid: string): Promise<SessionOwnerAnswer> {
    const handoff = this.cluster.handoffs.get(sid)
    if (handoff?.stored && !handoff.claimedBy && handoff.owner !== this.node)
      return { node: handoff.owner, handingOff: true }
    if (this.sockets.hasSession(sid)) return 'local'
    await hop()
    for (const other of this.#others()) if (other.sockets.hasSession(sid)) return { node: other.node }
    return 'unknown'
  }

  async routeRequest(node: string, request: RoutedRequest): Promise<RoutedResponse> {
    const owner = this.cluster.nodes.get(node)
    if (!owner) throw new Error(`no node ${node}`)
    await hop()
    const { tooLarge, ...rest } = request
    return owner.sockets.serve(structuredClone(this.cluster.carriesTooLarge ? request : rest))
  }

  #others(): ClusterAdapter[] {
    return [...this.cluster.nodes.values()].filter((node) => node !== this)
  }

  /** Runs an operation on this node and, unless `local`, on every other one (after a hop). */
  #everywhere<T>(
    options: BroadcastOptions,
    run: (node: ClusterAdapter, options: BroadcastOptions) => T | Promise<T>,
  ): Promise<Awaited<T>[]> {
    const nodes = options.local ? [this] : [this, ...this.#others()]
    return Promise.all(
      nodes.map(async (node) => {
        if (node === this) return await run(node, options)
        await hop()
        return await run(node, structuredClone(options))
      }),
    )
  }

  /** What another node gets: copies of the name, arguments and options, encoded there once. */
  #ship(message: BroadcastMessage, options: BroadcastOptions) {
    this.cluster.shipped++
    const name = message.name
    const args = structuredClone(message.args) as WireValue[]
    let prepared: PreparedEvent | undefined
    return {
      message: {
        name,
        args,
        prepared: () => {
          prepared ??= prepareEvent(name, args)
          return prepared
        },
      } satisfies BroadcastMessage,
      options: structuredClone(options),
    }
  }
}

/** The same, with a shared store of handed-off sessions (what Redis holds for `@parley/redis`). */
class HandOffClusterAdapter extends ClusterAdapter {
  /**
   * With the owner's URL, as @parley/redis answers: a draining node's Fastify refuses
   * `inject` (FST_ERR_REOPENED_CLOSE_SERVER), so a request through `routeRequest` gets only its
   * coded 503 while its sessions' requests (the GET that carries CLOSE 'server handoff') must
   * still get there.
   */
  override async sessionOwner(sid: string): Promise<SessionOwnerAnswer> {
    const answer = await super.sessionOwner(sid)
    if (typeof answer !== 'object') return answer
    const url = this.cluster.addresses.get(answer.node) ?? this.cluster.nodes.get(answer.node)?.sockets.url()
    return url === undefined ? answer : { ...answer, url }
  }

  async handOff(snapshot: SessionSnapshot, ttl: number): Promise<boolean> {
    this.cluster.handOffSids.push(snapshot.sid)
    this.cluster.handOffTtls.set(snapshot.sid, ttl)
    if (this.cluster.storeSilent) return new Promise<boolean>(() => {})
    try {
      const stored = await this.#store(snapshot)
      await this.cluster.storeAnswersAfter
      if (this.cluster.storeRejects) throw new Error('the reply of the store was lost')
      return stored
    } finally {
      this.cluster.handOffsAnswered++
    }
  }

  async #store(snapshot: SessionSnapshot): Promise<boolean> {
    if (!this.cluster.storeUp) {
      await hop()
      return false
    }
    // Written at once, as a store that keeps one connection's writes in order: the packets the
    // server appends before this resolves (broadcasts to the frozen session) follow it.
    const stored: StoredHandOff = {
      snapshot: structuredClone(snapshot),
      owner: this.node,
      tail: [],
      sealed: false,
      stored: false,
    }
    const last = this.cluster.storeWritesLast
    if (!last) this.cluster.handoffs.set(snapshot.sid, stored)
    await hop()
    if (this.cluster.storeDelayMs > 0) await new Promise((r) => setTimeout(r, this.cluster.storeDelayMs))
    await this.cluster.storeFinishesAfter
    if (last) this.cluster.handoffs.set(snapshot.sid, stored)
    stored.stored = true
    return true
  }

  /**
   * The first other node that is open and listens, in the order the nodes started (whatever the
   * sid), but those of `except`.
   */
  anotherNode(_sid: string, except?: ReadonlySet<string>): NodeAddress | undefined {
    if (this.cluster.options.anotherNode === false) return undefined
    for (const other of this.cluster.nodes.values()) {
      const url = other.sockets.url()
      if (other === this || other.closed || url === undefined || except?.has(other.node)) continue
      return this.cluster.options.anotherNode === 'routed' ? { node: other.node } : { node: other.node, url }
    }
    return undefined
  }

  otherNodes(): number {
    let others = 0
    for (const other of this.cluster.nodes.values()) if (other !== this && !other.closed) others++
    return others
  }

  appendHandOff(sid: string, text: string): void {
    const handoff = this.cluster.handoffs.get(sid)
    if (handoff && !handoff.sealed && handoff.owner === this.node) handoff.tail.push(text)
  }

  async settleHandOff(sid: string): Promise<void> {
    await this.cluster.settling?.(sid, this.node)
  }

  async sealHandOff(sid: string, last: string[], alone = false): Promise<void> {
    const handoff = this.cluster.handoffs.get(sid)
    if (!handoff || handoff.sealed || handoff.owner !== this.node) return
    handoff.tail.push(...last)
    handoff.sealed = true
    handoff.alone = alone
  }

  async withdrawHandOff(sid: string): Promise<void> {
    this.cluster.withdrawals++
    const handoff = this.cluster.handoffs.get(sid)
    if (!handoff || handoff.owner !== this.node) return
    if (handoff.claimedBy) handoff.ended = true
    else this.cluster.handoffs.delete(sid)
  }

  async requestHandOff(node: string, sid: string): Promise<boolean> {
    this.cluster.handOffRequests++
    await hop()
    const owner = this.cluster.nodes.get(node)
    // Alive but cut off: the request goes unanswered, which the caller sees as a no.
    if (!owner || this.cluster.unreachable.has(node)) return false
    const stored = await owner.sockets.handOff(sid)
    await hop()
    return stored
  }

  async claimSession(sid: string): Promise<SessionClaim | null> {
    const { claimsAtOnce } = this.cluster
    this.cluster.claimed.push(sid)
    claimsAtOnce.most = Math.max(claimsAtOnce.most, ++claimsAtOnce.now)
    try {
      await hop()
      if (this.cluster.claimDelayMs > 0) await new Promise((r) => setTimeout(r, this.cluster.claimDelayMs))
    } finally {
      claimsAtOnce.now--
    }
    const handoff = this.cluster.handoffs.get(sid)
    if (!this.cluster.storeUp || !handoff?.stored || handoff.claimedBy) return null
    handoff.claimedBy = this.node
    // Sealed before its claim: the old node's drain ended without one (alone: at once).
    const late = handoff.sealed
    const alone = late && handoff.alone === true
    const snapshot = structuredClone(handoff.snapshot)
    if (this.cluster.unreadableSnapshots === 'nextAckId') snapshot.nextAckId = 0
    else if (this.cluster.unreadableSnapshots) {
      snapshot.kept.push('not a packet')
      snapshot.outSeq++
    }
    // An adapter of the application's may say anything: the server's guard reads what it gets.
    const says = {
      ...(this.cluster.claimRecoveryLeft !== undefined && { recoveryLeft: this.cluster.claimRecoveryLeft }),
      ...(this.cluster.claimAnsweredAt && { answeredAt: this.cluster.claimAnsweredAt() }),
    } as Pick<SessionClaim, 'recoveryLeft' | 'answeredAt'>
    return {
      snapshot,
      ...says,
      takeOver: async (join) => {
        await hop()
        if (this.cluster.takeOverDelayMs > 0)
          await new Promise((r) => setTimeout(r, this.cluster.takeOverDelayMs))
        if (this.cluster.holdTakeOvers)
          await new Promise<void>((resolve) => this.cluster.heldTakeOvers.push(resolve))
        // The cut point: the old node seals, this one joins, in the same turn; broadcasts in
        // flight reach every node's rooms on a later turn, so each lands once.
        const old = this.cluster.nodes.get(handoff.owner)
        if (old && !handoff.sealed && !this.cluster.sealLost) {
          handoff.tail.push(...old.sockets.claimed(sid))
          handoff.sealed = true
        }
        join()
        // Only this handoff: the node that claimed it may be draining and handing it on.
        if (this.cluster.handoffs.get(sid) === handoff) this.cluster.handoffs.delete(sid)
        const tail = this.cluster.unreadableTails ? [...handoff.tail, 'not a packet'] : [...handoff.tail]
        return { tail, complete: handoff.sealed, late, alone, ended: handoff.ended }
      },
      ...(this.cluster.holdConfirms && {
        confirm: () => new Promise<ClaimStanding>((resolve) => this.cluster.heldConfirms.push(resolve)),
      }),
    }
  }
}

/** The same, whose draining node asks the live ones to adopt what nobody claimed. */
class AdoptingClusterAdapter extends HandOffClusterAdapter {
  /** The other open nodes, in the order they started. */
  adopters(): string[] {
    return [...this.cluster.nodes.values()].filter((n) => n !== this && !n.closed).map((n) => n.node)
  }

  async askAdoption(node: string, sessions: readonly Adoption[], ask?: AdoptionAsk): Promise<number> {
    this.cluster.adoptionAsks.push({ node, sids: sessions.map((s) => s.sid) })
    for (const { sid, left } of sessions) this.cluster.adoptionLefts.set(sid, left)
    // Never answered: the drain gives up on it at its deadline.
    if (this.cluster.silent.has(node)) return new Promise<number>(() => {})
    await hop()
    const other = this.cluster.nodes.get(node)
    if (!other || this.cluster.unreachable.has(node)) return 0
    ask?.taking()
    if (this.cluster.refusing.has(node)) return 0
    return (await other.sockets.adopt?.(sessions, ask?.within)) ?? 0
  }
}
