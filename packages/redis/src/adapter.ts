import { randomBytes } from 'node:crypto'
import { ErrorCode, ParleyError, type PreparedEvent, prepareEvent, type WireValue } from '@parley/protocol'
import {
  type Adapter,
  type BroadcastMessage,
  type BroadcastOptions,
  type BroadcastReply,
  type LocalSockets,
  MemoryAdapter,
  type Room,
  type SessionOwnerAnswer,
  type SocketDescription,
} from '@parley/server'
import { Nodes } from './nodes.js'
import type { RedisSubscriber, ResolvedRedisOptions } from './options.js'
import { send } from './send.js'
import { SessionOwners } from './sessions.js'
import { Warnings } from './warnings.js'
import {
  type BroadcastPacket,
  decodeEvent,
  fromWireOptions,
  packSocket,
  packValue,
  parseBroadcast,
  parseRequest,
  parseResponse,
  type RequestPacket,
  type ResponsePacket,
  toWireOptions,
  unpackSocket,
  unpackValue,
} from './wire.js'

/** What went wrong across nodes since the adapter started. Read-only: `adapter.stats`. */
export interface RedisAdapterStats {
  /**
   * Broadcasts (with or without acks) that reached this node's sockets but could not be
   * published to the other nodes: Redis was unreachable.
   */
  readonly lostBroadcasts: number
  /**
   * Cluster queries (`fetchSockets`, `socketsJoin`, `socketsLeave`, `disconnectSockets`) that
   * could not be sent, or that a live node did not answer within `requestTimeout`: their result
   * holds only the nodes that answered.
   */
  readonly incompleteRequests: number
}

/** A request of this node that awaits the other nodes' answers. */
interface Pending {
  answer(node: string, packet: ResponsePacket): void
  /** `node` left the live set: it will not answer. */
  gone(node: string): void
  /** The adapter closes: settle with what came. */
  cancel(): void
}

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
 * ```
 */
export class RedisAdapter implements Adapter {
  /** This node's id: random, new each time the adapter is made. */
  readonly node: string
  readonly #memory: MemoryAdapter
  readonly #sockets: LocalSockets
  readonly #options: ResolvedRedisOptions
  readonly #subscriber: RedisSubscriber
  readonly #warnings: Warnings
  readonly #nodes: Nodes
  readonly #sessions: SessionOwners
  readonly #pending = new Map<string, Pending>()
  readonly #channels: { broadcast: string; request: string; response: string }
  readonly #stats = { lostBroadcasts: 0, incompleteRequests: 0 }
  readonly #started: Promise<void>
  #closed = false

  /** Use `redisAdapter(options)`: it checks the options. */
  constructor(sockets: LocalSockets, options: ResolvedRedisOptions) {
    this.node = randomBytes(9).toString('base64url')
    this.#sockets = sockets
    this.#options = options
    this.#memory = new MemoryAdapter(sockets)
    this.#warnings = new Warnings(options.log)
    const { client, prefix } = options
    this.#channels = {
      broadcast: `${prefix}:broadcast`,
      request: `${prefix}:request`,
      response: `${prefix}:response:${this.node}`,
    }
    this.#sessions = new SessionOwners(client, prefix, this.node, this.#warnings)
    this.#nodes = new Nodes({
      client,
      prefix,
      id: this.node,
      interval: options.heartbeatInterval,
      address: () => options.address ?? sockets.url() ?? '',
      warnings: this.#warnings,
      gone: (nodes) => {
        for (const pending of [...this.#pending.values()]) for (const node of nodes) pending.gone(node)
      },
      recordLost: () => void this.#sessions.restore(true),
    })
    this.#subscriber = client.duplicate()
    // Without a listener, an 'error' event (Redis went away) would crash the process.
    this.#subscriber.on('error', (err) => {
      this.#warnings.warn('subscriber', 'the subscriber connection failed; it reconnects by itself', { err })
    })
    this.#started = this.#start()
    this.#started.catch((err: unknown) => {
      this.#warnings.warn('start', 'could not subscribe; other nodes are out of reach', { err })
    })
  }

  /** Counters of what could not cross nodes (a copy, read-only). */
  get stats(): RedisAdapterStats {
    return { ...this.#stats }
  }

  /** The ids of the other live nodes, as of the last heartbeat. */
  get liveNodes(): string[] {
    return this.#nodes.others()
  }

  /** Resolves once this node is subscribed and has sent its first heartbeat. */
  ready(): Promise<void> {
    return this.#started
  }

  async #start(): Promise<void> {
    await this.#subscriber.connect()
    const { broadcast, request, response } = this.#channels
    await this.#subscriber.subscribe([broadcast, request, response], (message, channel) => {
      try {
        if (channel === broadcast) this.#onBroadcast(message)
        else if (channel === request) this.#onRequest(message)
        else if (channel === response) this.#onResponse(message)
      } catch (err) {
        this.#warnings.warn('incoming', 'a message from another node could not be handled', { err })
      }
    })
    if (this.#closed) return
    await this.#nodes.start()
  }

  addAll(id: string, rooms: Iterable<Room>): void {
    this.#memory.addAll(id, rooms)
  }

  del(id: string, room: Room): void {
    this.#memory.del(id, room)
  }

  delAll(id: string): void {
    this.#memory.delAll(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    return this.#memory.socketRooms(id)
  }

  broadcast(message: BroadcastMessage, options: BroadcastOptions): void {
    this.#memory.broadcast(message, options)
    if (options.local || this.#closed) return
    const packet: BroadcastPacket = {
      n: this.node,
      e: message.prepared().text(0, 0),
      o: toWireOptions(options),
    }
    this.#publish(this.#channels.broadcast, packet, () => this.#lostBroadcast())
  }

  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void {
    const others = options.local || this.#closed ? [] : this.#nodes.others()
    if (others.length === 0) {
      this.#memory.broadcastWithAck(message, options, timeout, expect, reply)
      return
    }
    const id = this.#requestId()
    // Nodes whose count is still awaited, and those counted (only their replies are relayed:
    // a node counted as none must not add replies to the total).
    const waiting = new Set(others)
    const counted = new Set<string>()
    let local: number | undefined
    let total = 0
    let relayed = 0
    let expected = false
    const end = () => {
      clearTimeout(timer)
      this.#pending.delete(id)
    }
    const settle = () => {
      if (expected || local === undefined || waiting.size > 0) return
      expected = true
      expect(total)
      if (relayed >= total - local) end()
    }
    const stopWaiting = () => {
      waiting.clear()
      settle()
    }
    const timer = setTimeout(() => {
      stopWaiting()
      end()
    }, timeout)
    this.#pending.set(id, {
      answer: (node, packet) => {
        if (packet.k === 'count') {
          if (!waiting.delete(node)) return
          counted.add(node)
          total += packet.c
          settle()
        } else if (packet.k === 'reply' && counted.has(node)) {
          relayed++
          reply(toReply(packet))
          if (expected && local !== undefined && relayed >= total - local) end()
        }
      },
      gone: (node) => {
        if (waiting.delete(node)) settle()
      },
      cancel: () => {
        stopWaiting()
        end()
      },
    })
    this.#memory.broadcastWithAck(
      message,
      options,
      timeout,
      (count) => {
        local = count
        total += count
        settle()
      },
      reply,
    )
    const request: RequestPacket = {
      n: this.node,
      id,
      k: 'ack',
      o: toWireOptions(options),
      e: message.prepared().text(0, 0),
      t: timeout,
    }
    this.#publish(this.#channels.request, request, () => {
      this.#lostBroadcast()
      stopWaiting()
    })
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
   * owner and its address when another live node is; 'unknown' when there is no record or its
   * node is gone. One GET at most; rejects while Redis is unreachable.
   */
  async sessionOwner(sid: string): Promise<SessionOwnerAnswer> {
    if (this.#sockets.hasSession(sid)) return 'local'
    const owner = await this.#sessions.owner(sid)
    if (owner === null) return 'unknown'
    if (owner === this.node) return 'local'
    if (!this.#nodes.has(owner)) return 'unknown'
    const url = this.#nodes.address(owner)
    return url === undefined ? { node: owner } : { node: owner, url }
  }

  sessionOpened(sid: string): void {
    if (this.#closed) return
    this.#sessions.opened(sid)
    // The first session comes once the server listens: publish its address without waiting
    // for the next heartbeat, so that others can forward to it at once.
    if (this.#nodes.addressChanged()) void this.#nodes.beat()
  }

  sessionClosed(sid: string): void {
    if (this.#closed) return
    this.#sessions.closed(sid)
  }

  /**
   * Stops the heartbeat, removes this node from the live set, settles its pending queries and
   * closes the subscriber connection it made. The client passed in `client` stays open.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const pending of [...this.#pending.values()]) pending.cancel()
    try {
      this.#subscriber.destroy()
    } catch {
      // Already closed.
    }
    try {
      await this.#nodes.stop()
    } catch (err) {
      this.#warnings.warn('close', 'could not remove this node from the live set; it expires by itself', {
        err,
      })
    }
  }

  /** Runs a query on every other live node; resolves with the answers that came in time. */
  #query(request: Omit<RequestPacket, 'n' | 'id'>): Promise<ResponsePacket[]> {
    const others = this.#closed ? [] : this.#nodes.others()
    if (others.length === 0) return Promise.resolve([])
    const id = this.#requestId()
    return new Promise((resolve) => {
      const answers: ResponsePacket[] = []
      const waiting = new Set(others)
      const finish = () => {
        clearTimeout(timer)
        this.#pending.delete(id)
        resolve(answers)
      }
      const incomplete = (why: string) => {
        this.#stats.incompleteRequests++
        this.#warnings.warn('request', `a cluster query went unanswered by some nodes: ${why}`, {
          query: request.k,
          incompleteRequests: this.#stats.incompleteRequests,
        })
        finish()
      }
      const timer = setTimeout(
        () => incomplete(`${waiting.size} did not answer within ${this.#options.requestTimeout} ms`),
        this.#options.requestTimeout,
      )
      this.#pending.set(id, {
        answer: (node, packet) => {
          if (!waiting.delete(node)) return
          answers.push(packet)
          if (waiting.size === 0) finish()
        },
        gone: (node) => {
          if (waiting.delete(node) && waiting.size === 0) finish()
        },
        cancel: finish,
      })
      this.#publish(this.#channels.request, { ...request, n: this.node, id }, () =>
        incomplete('Redis is unreachable'),
      )
    })
  }

  #onBroadcast(text: string): void {
    const packet = parseBroadcast(text)
    // This node's own broadcasts come back too: its sockets already have them.
    if (!packet || packet.n === this.node || this.#closed) return
    const event = decodeEvent(packet.e)
    if (!event) {
      this.#malformed()
      return
    }
    this.#memory.broadcast(remoteMessage(event.name, event.args), fromWireOptions(packet.o))
  }

  #onRequest(text: string): void {
    const request = parseRequest(text)
    if (!request || request.n === this.node || this.#closed) return
    const channel = `${this.#options.prefix}:response:${request.n}`
    const respond = (answer: DistributiveOmit<ResponsePacket, 'n' | 'id'>) =>
      this.#publish(channel, { ...answer, n: this.node, id: request.id } as ResponsePacket)
    const options = fromWireOptions(request.o)
    switch (request.k) {
      case 'fetch':
        this.#memory
          .fetchSockets(options)
          .then((sockets) => respond({ k: 'sockets', s: sockets.map(packSocket) }))
          .catch((err: unknown) => this.#warnings.warn('incoming', 'could not describe the sockets', { err }))
        return
      case 'join':
        this.#memory.addSockets(options, request.rooms ?? [])
        respond({ k: 'done' })
        return
      case 'leave':
        this.#memory.delSockets(options, request.rooms ?? [])
        respond({ k: 'done' })
        return
      case 'disconnect':
        this.#memory.disconnectSockets(options)
        respond({ k: 'done' })
        return
      case 'ack': {
        const event = decodeEvent(request.e ?? '')
        if (!event) {
          this.#malformed()
          return
        }
        this.#memory.broadcastWithAck(
          remoteMessage(event.name, event.args),
          options,
          request.t ?? 0,
          (count) => respond({ k: 'count', c: count }),
          (reply) => respond(fromReply(reply)),
        )
      }
    }
  }

  #onResponse(text: string): void {
    const packet = parseResponse(text)
    if (!packet) {
      this.#malformed()
      return
    }
    this.#pending.get(packet.id)?.answer(packet.n, packet)
  }

  /** PUBLISHes `packet`; `failed` runs when it cannot go (never for a slow but live Redis). */
  #publish(channel: string, packet: object, failed?: () => void): void {
    // While Redis is away, a PUBLISH would wait in the client's offline queue and arrive late
    // (and subscribers may have missed it anyway): it is lost, and counted as such, now.
    if (!this.#options.client.isReady) {
      failed?.()
      return
    }
    send(this.#options.client, ['PUBLISH', channel, JSON.stringify(packet)]).catch((err: unknown) => {
      this.#warnings.warn('publish', 'PUBLISH failed', { err, channel })
      failed?.()
    })
  }

  #lostBroadcast(): void {
    this.#stats.lostBroadcasts++
    this.#warnings.warn(
      'lost-broadcast',
      'a broadcast could not reach the other nodes (Redis is unreachable)',
      {
        lostBroadcasts: this.#stats.lostBroadcasts,
      },
    )
  }

  #malformed(): void {
    this.#warnings.warn('malformed', 'a message from another node was malformed and was dropped')
  }

  #requestId(): string {
    return randomBytes(12).toString('base64url')
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** A broadcast received from another node, encoded here once, on first use. */
function remoteMessage(name: string, args: WireValue[]): BroadcastMessage {
  let prepared: PreparedEvent | undefined
  return {
    name,
    args,
    prepared: () => {
      prepared ??= prepareEvent(name, args)
      return prepared
    },
  }
}

function fromReply(reply: BroadcastReply): DistributiveOmit<ResponsePacket, 'n' | 'id'> {
  if (!reply.ok) return { k: 'reply', ok: false, code: reply.error.code, message: reply.error.message }
  try {
    return { k: 'reply', ok: true, v: packValue(reply.value) }
  } catch {
    return { k: 'reply', ok: false, code: ErrorCode.UNSERIALIZABLE, message: 'the reply cannot cross nodes' }
  }
}

function toReply(packet: Extract<ResponsePacket, { k: 'reply' }>): BroadcastReply {
  if (!packet.ok) return { ok: false, error: new ParleyError<string>(packet.code, packet.message) }
  const value = unpackValue(packet.v)
  return value.ok
    ? { ok: true, value: value.value }
    : {
        ok: false,
        error: new ParleyError(ErrorCode.INVALID_PACKET, 'a reply from another node was malformed'),
      }
}
