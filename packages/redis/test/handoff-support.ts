// Redis adapters without servers, for the handoff tests: each node is a real RedisAdapter with
// its own node-redis client, over a LocalSockets of fake sockets that record what reaches them.
// A handed-off socket appends what it is given to its tail, as the server's drained session does.
import { ErrorCode, ParleyError, type PreparedEvent, prepareEvent, type WireValue } from '@parley/protocol'
import { type RedisAdapter, type RedisClient, redisAdapter } from '@parley/redis'
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  ClaimAnswer,
  LocalSocket,
  LocalSockets,
  RoutedResponse,
  SessionClaim,
  SessionSnapshot,
  SocketDescription,
} from '@parley/server'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, expect, vi } from 'vitest'
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { releaseAll } from '../../../test/support/release.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'

export const HEARTBEAT = 300

/** A socket of a fake node: records the first argument of every event it gets. */
export class FakeSocket implements LocalSocket {
  readonly got: unknown[] = []
  /** Set while its session is handed off: what it gets goes to the tail instead. */
  handedOff: ((text: string) => void) | undefined

  constructor(readonly id: string) {}

  deliver(event: PreparedEvent): void {
    if (this.handedOff) this.handedOff(event.text(0, 0))
    else this.got.push(event.args[0])
  }

  deliverWithAck(event: PreparedEvent, _timeout: number, settle: (reply: BroadcastReply) => void): void {
    this.deliver(event)
    settle({ ok: true, value: null })
  }

  describe(): SocketDescription {
    return {
      id: this.id,
      handshake: {
        headers: {},
        query: {},
        auth: undefined,
        address: '127.0.0.1',
        time: new Date(0).toISOString(),
        issued: 0,
        transport: 'websocket',
        url: '/parley/ws?v=1',
        params: {},
      },
      rooms: new Set([this.id]),
      data: null,
    }
  }

  disconnect(): void {}
}

/** `socket` replies to every question with `value`, the reply telling which socket made it. */
export function repliesAs(socket: FakeSocket, value: string): void {
  socket.deliverWithAck = (event, _timeout, settle) => {
    socket.deliver(event)
    settle({ ok: true, value })
  }
}

/**
 * A claimer's copy of socket s1 whose questions are registered, as the server's are: `drop`
 * then removes it from `node`, as the server does when the old node kept the session, and
 * fails them.
 */
export function registeredCopy() {
  const registered: ((reply: BroadcastReply) => void)[] = []
  return {
    register(claimed: FakeSocket) {
      claimed.deliverWithAck = (event, _timeout, settle) => {
        claimed.deliver(event)
        registered.push(settle)
      }
    },
    drop(node: FakeNode, sid: string) {
      node.sockets.sockets.delete('s1')
      node.sockets.sessions.delete(sid)
      node.adapter.delAll('s1')
      const dropped = new ParleyError(ErrorCode.DISCONNECTED, 'the socket has disconnected')
      for (const settle of registered.splice(0)) settle({ ok: false, error: dropped })
    },
  }
}

/** The server's side as the adapter sees it: sockets by id, sessions by sid. */
export class FakeSockets implements LocalSockets {
  readonly sockets = new Map<string, FakeSocket>()
  readonly sessions = new Map<string, FakeSocket>()
  /** The sids `claimed` was called with, in order. */
  readonly claims: string[] = []
  /** What `claimed` returns for a session (its last packets). */
  last: (sid: string) => string[] = () => []
  /** The sids another node asked this one to hand off, in order. */
  readonly asked: string[] = []
  /** What `takenOver` does, when set (a server without the hook leaves it out). */
  takenOver: ((sid: string) => void) | undefined
  /** What `handOff` answers (the server's move: store the snapshot, true once stored). */
  move: (sid: string) => Promise<boolean> = async () => false

  get(id: string): FakeSocket | undefined {
    return this.sockets.get(id)
  }

  hasSession(sid: string): boolean {
    return this.sessions.has(sid)
  }

  serve(): Promise<RoutedResponse> {
    return Promise.reject(new Error('no routing in these tests'))
  }

  /** What `url()` answers: undefined as for a server that does not listen (yet). */
  address: string | undefined = 'http://127.0.0.1:1'

  url(): string | undefined {
    return this.address
  }

  claimed(sid: string): string[] {
    this.claims.push(sid)
    const socket = this.sessions.get(sid)
    if (!socket) return []
    // The server forgets the session: nothing reaches it here any more.
    this.sessions.delete(sid)
    this.sockets.delete(socket.id)
    return this.last(sid)
  }

  handOff(sid: string): Promise<boolean> {
    this.asked.push(sid)
    return this.move(sid)
  }

  add(id: string, sid?: string): FakeSocket {
    const socket = new FakeSocket(id)
    this.sockets.set(id, socket)
    if (sid !== undefined) this.sessions.set(sid, socket)
    return socket
  }
}

const redisClient = (url: string) => createClient({ url })
export type Client = ReturnType<typeof redisClient>

export interface FakeNode {
  adapter: RedisAdapter
  sockets: FakeSockets
  redis: Client
  warnings: string[]
  /** The same warnings with the details logged beside each (its `err`, `code`, ...). */
  warned: { message: string; details: Record<string, unknown> }[]
  /** Every command the adapter sent on its client, in order. */
  commands: string[][]
  /**
   * Commands for which this is true are never sent: they resolve as a PUBLISH that no
   * subscriber heard (0), as when Redis loses a message.
   */
  lose: ((args: string[]) => boolean) | undefined
  /**
   * Commands for which this returns a promise are not sent: that promise is their answer, as
   * for a command that a dropped connection still holds, for Redis to run late or never.
   */
  hold: ((args: string[]) => Promise<unknown> | undefined) | undefined
  /**
   * True: the client says it is not ready, as while its connection is made again, though it is
   * connected (the adapter sends nothing then).
   */
  down: boolean
}

/** What the node's client does instead of sending some commands (see `FakeNode`). */
interface Interceptors {
  lose?: (args: string[]) => boolean
  hold?: (args: string[]) => Promise<unknown> | undefined
  down?: boolean
}

/** The node's client as the adapter gets it: the same connection, each command recorded. */
function recording(
  redis: Client,
  commands: string[][],
  node: Interceptors,
  subscriber?: string,
): RedisClient {
  return {
    get isOpen() {
      return redis.isOpen
    },
    get isReady() {
      return redis.isReady && node.down !== true
    },
    // Where it connects, for the adapter's messages to name, as a node-redis client gives it.
    options: redis.options,
    sendCommand: (args) => {
      commands.push(args)
      if (node.lose?.(args)) return Promise.resolve(0)
      return node.hold?.(args) ?? redis.sendCommand(args)
    },
    duplicate: () => (subscriber === undefined ? redis.duplicate() : redis.duplicate({ url: subscriber })),
    on: (event, listener) => redis.on(event, listener),
    off: (event, listener) => redis.off(event, listener),
  }
}

/**
 * A suite's Redis, started before its tests and stopped after them (`redis()`), and the
 * `FakeCluster`s each test starts on it (`cluster(options)`), closed after that test.
 */
export function fakeClusterSuite() {
  let redis: RedisServer | undefined
  /** Every cluster this test started: a second call does not drop the first. */
  const clusters: FakeCluster[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(() => releaseAll(clusters.splice(0).map((cluster) => () => cluster.close())))
  return {
    /** The suite's Redis (for a raw client or a proxy beside the nodes). */
    redis: (): RedisServer => redis!,
    cluster(options?: ConstructorParameters<typeof FakeCluster>[1]): FakeCluster {
      const cluster = new FakeCluster(redis!.url, options)
      clusters.push(cluster)
      return cluster
    },
  }
}

/**
 * For a file whose tests each want a Redis of their own (to freeze, say), a `FakeCluster` on it
 * and a proxy in front of it (for a subscriber that can be held): `scene()` starts them, and
 * after the test the cluster, the proxy and Redis are closed, in that order. Call it at the
 * file's top level; what a test holds back it lets go in its own `finally`, which runs first.
 */
export function handoffScenes(): () => Promise<{
  redis: RedisServer
  proxy: TcpProxy
  cluster: FakeCluster
}> {
  /** Every scene this test started: a second call does not drop the first. */
  const scenes: { redis: RedisServer; proxy: TcpProxy; cluster: FakeCluster }[] = []
  // Each part is let go even when one before it fails to close (then the first failure is thrown).
  afterEach(() =>
    releaseAll(
      scenes
        .splice(0)
        .flatMap((scene) => [
          () => scene.cluster.close(),
          () => scene.proxy.close(),
          () => scene.redis.stop(),
        ]),
    ),
  )
  return async () => {
    const redis = await startRedis()
    let proxy: TcpProxy
    try {
      proxy = await startTcpProxy(redis.port)
    } catch (err) {
      // Not a scene yet, so the teardown would not see it. The proxy's failure is the one told.
      await redis.stop().catch(() => {})
      throw err
    }
    const scene = { redis, proxy, cluster: new FakeCluster(redis.url) }
    scenes.push(scene)
    return scene
  }
}

/** Fake nodes on one Redis and one prefix (each test its own, so that tests never meet). */
export class FakeCluster {
  readonly nodes: FakeNode[] = []
  static #count = 0
  readonly prefix = `handoff${FakeCluster.#count++}`

  constructor(
    private readonly url: string,
    private readonly options: { requestTimeout?: number; heartbeatInterval?: number } = {},
  ) {}

  /**
   * A node whose client connects to `url` (another way to the same Redis: a proxy), with `own`
   * options over the cluster's; its subscriber connects to `subscriber` when given (a proxy of
   * its own, to slow that connection alone). Its client is connected within `connectWithin` ms
   * (5000 by default), or destroyed and the node refused.
   */
  async node(
    url = this.url,
    own: {
      requestTimeout?: number
      heartbeatInterval?: number
      subscriber?: string
      connectWithin?: number
    } = {},
  ): Promise<FakeNode> {
    const { subscriber, connectWithin = 5000, ...options } = own
    const redis = redisClient(url)
    redis.on('error', () => {})
    const sockets = new FakeSockets()
    const warnings: string[] = []
    const warned: FakeNode['warned'] = []
    const commands: string[][] = []
    const losing: Interceptors = {}
    let adapter: RedisAdapter
    try {
      // node-redis retries a connection that fails, for ever by default: bounded here, so that
      // a Redis out of reach fails the node, not the whole test by its timeout.
      await within(redis.connect(), connectWithin, `a node's connection to ${url}`)
      adapter = redisAdapter({
        client: recording(redis, commands, losing, subscriber),
        prefix: this.prefix,
        heartbeatInterval: HEARTBEAT,
        log: {
          warn: (details, message) => {
            warnings.push(message)
            warned.push({ message, details })
          },
        },
        ...this.options,
        ...options,
      })(sockets)
    } catch (err) {
      // Not a node yet, so close() would not see it: a client left trying would outlive the test.
      if (redis.isOpen) redis.destroy()
      throw err
    }
    const node: FakeNode = {
      adapter,
      sockets,
      redis,
      warnings,
      warned,
      commands,
      get lose() {
        return losing.lose
      },
      set lose(lose) {
        losing.lose = lose
      },
      get hold() {
        return losing.hold
      },
      set hold(hold) {
        losing.hold = hold
      },
      get down() {
        return losing.down === true
      },
      set down(down) {
        losing.down = down
      },
    }
    this.nodes.push(node)
    // A short requestTimeout can pass before a loaded machine answers the first heartbeat:
    // ready() then rejects, and the adapter goes on trying, as a later ready() waits for.
    const end = performance.now() + 5000
    for (;;) {
      try {
        await adapter.ready()
        return node
      } catch (err) {
        if (performance.now() > end) throw err
      }
    }
  }

  /** `count` nodes that all see each other live. */
  async start(count: number): Promise<FakeNode[]> {
    const nodes: FakeNode[] = []
    for (let i = 0; i < count; i++) nodes.push(await this.node())
    await until(() => nodes.every((n) => n.adapter.liveNodes.length >= count - 1), 5000, 'live nodes')
    return nodes
  }

  async stop(node: FakeNode): Promise<void> {
    const index = this.nodes.indexOf(node)
    if (index >= 0) this.nodes.splice(index, 1)
    try {
      await node.adapter.close()
    } finally {
      // An adapter that fails to close must not leave its connection open.
      if (node.redis.isOpen) node.redis.destroy()
    }
  }

  /** Stops every node, each one even when another fails to; then throws the first failure. */
  async close(): Promise<void> {
    const stopped = await Promise.allSettled([...this.nodes].map((node) => this.stop(node)))
    const failed = stopped.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
  }
}

/**
 * Holds back, from the first command of `node` that `first` matches, that one and every later
 * command of `node`, as the connection under them would once its link stalls: none runs, none
 * is answered. When that connection drops (node-redis' 'error', however it came: see
 * `dropConnection`), each is refused as node-redis refuses what a dropped connection left
 * unanswered, and later commands go on the next connection. `run()` then has Redis run them,
 * in order, as when the kernel delivers the dead connection's bytes at last, and returns the
 * first one's reply. On one connection nothing passes a command held: only a new one can.
 */
export class HeldOnDroppedLink {
  readonly #held: { args: string[]; answer: (reply: Promise<unknown>) => void }[] = []
  #holding = true

  constructor(
    private readonly node: FakeNode,
    first: (args: string[]) => boolean,
  ) {
    node.hold = (args) => {
      if (!this.#holding || (this.#held.length === 0 && !first(args))) return undefined
      return new Promise((answer) => this.#held.push({ args, answer }))
    }
    node.redis.once('error', (err: unknown) => {
      this.#holding = false
      node.hold = undefined
      // Refused while the client is not ready, as node-redis refuses them: lost with the link.
      for (const { answer } of this.#held) answer(Promise.reject(err))
    })
  }

  /** The commands held back so far, oldest first. */
  get held(): readonly string[][] {
    return this.#held.map(({ args }) => args)
  }

  async run(): Promise<unknown> {
    if (this.#holding) throw new Error('the connection holding them has not dropped')
    const [first, ...rest] = this.#held.map(({ args }) => this.node.redis.sendCommand(args))
    if (!first) throw new Error('no command was held back')
    // Sent at once, in order, as the dead connection's bytes: the first's reply, then the rest.
    await Promise.allSettled(rest)
    return first
  }
}

/**
 * Drops `node`'s connection to Redis from Redis' side (CLIENT KILL), as a link that goes down
 * would: node-redis refuses what it had unanswered, and connects again. Resolves once it did.
 */
export async function dropConnection(node: FakeNode): Promise<void> {
  const id = await node.redis.sendCommand(['CLIENT', 'ID'])
  const ready = new Promise((resolve) => node.redis.once('ready', resolve))
  const killer = node.redis.duplicate()
  killer.on('error', () => {})
  await killer.connect()
  try {
    await killer.sendCommand(['CLIENT', 'KILL', 'ID', String(id)])
  } finally {
    killer.destroy()
  }
  await within(ready, 5000, 'the connection made again')
}

/**
 * Holds every command of `node` (none is sent) until `release()`, which sends them in the order
 * they came on the node's connection: Redis runs them late, as after a pause, whatever the
 * machine's load (a CLIENT PAUSE of a fixed time could end before a loaded process even sent its
 * command). `answered` hears of each held command whose reply came.
 */
export function holdAll(node: FakeNode, answered?: (args: string[]) => void): { release(): void } {
  const held: (() => void)[] = []
  node.hold = (args) =>
    new Promise((answer) => {
      held.push(() =>
        answer(
          node.redis.sendCommand(args).finally(() => {
            answered?.(args)
          }),
        ),
      )
    })
  return {
    release() {
      node.hold = undefined
      for (const send of held.splice(0)) send()
    },
  }
}

/** A snapshot as a draining server would write it. */
export function snapshotOf(sid: string, id: string, rooms: string[] = []): SessionSnapshot {
  return {
    v: 1,
    sid,
    id,
    inSeq: 7,
    outSeq: 12,
    kept: ['[5,11,"news",["a"],0]', '[5,12,"news",["b"],0]'],
    rooms,
    data: { name: 'ada', tags: ['x'] },
    dataLost: false,
    waiting: [['chat', ['hi'], 3]],
    openRequests: [2],
    pendingAcks: [4],
    nextAckId: 5,
    created: 1_700_000_000_000,
  }
}

export function message(name: string, args: WireValue[]): BroadcastMessage {
  let prepared: PreparedEvent | undefined
  return { name, args, prepared: () => (prepared ??= prepareEvent(name, args)) }
}

export function to(rooms: string[] = [], local = false): BroadcastOptions {
  return { rooms: new Set(rooms), except: new Set(), volatile: false, local }
}

/** The first argument of an event's wire text, as the tail holds it. */
export function argOf(text: string): unknown {
  const packet: unknown = JSON.parse(text)
  return Array.isArray(packet) && Array.isArray(packet[3]) ? packet[3][0] : text
}

/**
 * Holds back, from the first command that `first` matches, that one and every later command
 * that `also` matches, in order, as a Redis slow to answer one connection would: none runs, none
 * is answered. `runFirst()` runs the first only (its answer still held), `sendAll()` all of
 * them and those still to come (their answers held); `runAll()` sends those not sent yet,
 * answers them all in order, and lets later commands through.
 */
export class HeldInOrder {
  readonly #held: {
    args: string[]
    answer: (reply: unknown) => void
    refuse: (err: unknown) => void
    reply?: Promise<unknown>
  }[] = []
  #holding = true
  /** True once `sendAll` ran: what is held is sent at once, its answer held. */
  #sending = false

  constructor(
    private readonly redis: { sendCommand(args: string[]): Promise<unknown> },
    private readonly first: (args: string[]) => boolean,
    private readonly also: (args: string[]) => boolean,
  ) {}

  /** The commands held back so far, oldest first. */
  get held(): readonly string[][] {
    return this.#held.map(({ args }) => args)
  }

  /** A command's answer when it is held back (see `FakeNode.hold`); undefined to let it through. */
  readonly hold = (args: string[]): Promise<unknown> | undefined => {
    if (!this.#holding || !(this.#held.length === 0 ? this.first(args) : this.also(args))) return undefined
    return new Promise((answer, refuse) => {
      this.#held.push({ args, answer, refuse, reply: this.#sending ? this.#send(args) : undefined })
    })
  }

  /**
   * Sends every command held so far, and from now on each one held as it comes: Redis runs
   * them, in order, and only their answers are held, in order, until `runAll()`, as on a
   * connection whose answers are slow to come back.
   */
  sendAll(): void {
    this.#sending = true
    for (const command of this.#held) command.reply ??= this.#send(command.args)
  }

  #send(args: string[]): Promise<unknown> {
    const reply = this.redis.sendCommand(args)
    // Awaited by runAll; a test that ends before it must not leave the refusal unhandled.
    reply.catch(() => {})
    return reply
  }

  async runFirst(): Promise<unknown> {
    const first = this.#held[0]
    if (!first) throw new Error('no command was held back')
    first.reply ??= this.#send(first.args)
    return first.reply
  }

  /** Answers every command held back with `reply` without sending it: Redis never runs them. */
  dropAll(reply: unknown): void {
    this.#holding = false
    for (const { answer } of this.#held.splice(0)) answer(reply)
  }

  async runAll(): Promise<void> {
    this.#holding = false
    // Sent at once, in order, on the one connection: a command sent once an answer came goes after.
    const held = this.#held.splice(0).map((command) => ({
      ...command,
      reply: command.reply ?? this.#send(command.args),
    }))
    // Each one answered as Redis answered it: one Redis refused rejects as it would on the
    // client, and those behind it are answered all the same.
    for (const { answer, refuse, reply } of held) await reply.then(answer, refuse)
  }
}

/** `redis` as an adapter gets it, with `hold` deciding which commands wait (see `HeldInOrder`). */
export function holding(redis: Client, hold: (args: string[]) => Promise<unknown> | undefined): RedisClient {
  return {
    get isOpen() {
      return redis.isOpen
    },
    get isReady() {
      return redis.isReady
    },
    options: redis.options,
    sendCommand: (args) => hold(args) ?? redis.sendCommand(args),
    duplicate: () => redis.duplicate(),
    on: (event, listener) => redis.on(event, listener),
    off: (event, listener) => redis.off(event, listener),
  }
}

/** One session's part of a batch of tail writes (see `APPEND` in src/handoff.ts). */
export interface TailPart {
  /** The handoff's hash key. */
  hash: string
  gap: boolean
  /** '0' an append, '1' a seal, '2' the seal of a drain alone. */
  seal: string
  /** How many of its node's texts the tail held before these, as the node knew; -1 unknown. */
  from: number
  /** Where its node was on the broadcast channel, as JSON (see src/places.ts); '' for none. */
  places: string
  texts: string[]
}

/** The parts of a batch of tail writes as a node sends it, or undefined for any other command. */
export function tailBatch(args: readonly string[]): TailPart[] | undefined {
  if (args[0] !== 'EVAL' || args[1]?.includes("redis.call('HSET', hash, 'sealed', seal)") !== true)
    return undefined
  const keys = Number(args[2])
  const argv = args.slice(3 + keys)
  const parts: TailPart[] = []
  let at = 0
  for (let k = 0; k < keys; k += 2) {
    const count = Number(argv[at + 5])
    parts.push({
      hash: args[3 + k]!,
      gap: argv[at] === '1',
      seal: argv[at + 1]!,
      from: Number(argv[at + 3]),
      places: argv[at + 4]!,
      texts: argv.slice(at + 6, at + 6 + count),
    })
    at += 6 + count
  }
  return parts
}

/** A batch of tail writes that seals a tail (with `flag`: '1' or '2'; any seal without). */
export function isSeal(args: readonly string[], flag?: string): boolean {
  return (
    tailBatch(args)?.some((part) => (flag === undefined ? part.seal !== '0' : part.seal === flag)) === true
  )
}

/** The claim a node won; anything else (nothing to claim, try again) fails the test. */
export function won(claim: ClaimAnswer | undefined): SessionClaim {
  if (typeof claim !== 'object' || claim === null || 'missed' in claim)
    throw new Error(`no claim won: ${JSON.stringify(claim)}`)
  return claim
}

/** Until `check` resolves true (a look into Redis): every 10 ms, at most `ms`. */
export async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Session `sid` (socket 's1', in room 'r') opened on `node` and handed off there: what its socket
 * gets from then on goes to the tail, and to the array returned, for a test that reads it whole.
 * With `sealed`, the drain ended with the session unclaimed instead: its tail sealed, empty, and
 * nothing more routed to it.
 */
export async function handedOffSession(
  node: FakeNode,
  sid: string,
  { sealed = false }: { sealed?: boolean } = {},
): Promise<string[]> {
  const tail: string[] = []
  const handed = node.sockets.add('s1', sid)
  node.adapter.addAll('s1', ['s1', 'r'])
  await node.adapter.sessionOpened(sid)
  if (!sealed)
    handed.handedOff = (text) => {
      tail.push(text)
      node.adapter.appendHandOff(sid, text)
    }
  expect(await node.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
  if (sealed) await node.adapter.sealHandOff(sid, [])
  return tail
}

/**
 * The claimed session's socket on `node`, as the server adds it to take the session over, and
 * the takeover itself, whose join puts it in its rooms (`join` instead, to watch the join).
 */
export function takeOverOn(
  node: FakeNode,
  claim: SessionClaim,
  sid: string,
  join: () => void = () => node.adapter.addAll('s1', ['s1', 'r']),
): { taken: FakeSocket; done: ReturnType<SessionClaim['takeOver']> } {
  const taken = node.sockets.add('s1', sid)
  return { taken, done: claim.takeOver(join) }
}

/** The keys of the handoffs stored under `cluster`'s prefix matching `pattern`, read on `node`. */
async function handoffKeys(cluster: FakeCluster, node: FakeNode, pattern: string): Promise<string[]> {
  return (await node.redis.sendCommand(['KEYS', `${cluster.prefix}:handoff:${pattern}`])) as string[]
}

/** Until the one tail stored (read on `node`'s client) holds `count` texts: at most 5 s. */
export function untilTailHolds(
  cluster: FakeCluster,
  node: FakeNode,
  count: number,
  what: string,
): Promise<void> {
  return eventually(
    async () => {
      const keys = await handoffKeys(cluster, node, '*:tail')
      return keys.length === 1 && Number(await node.redis.sendCommand(['LLEN', keys[0] ?? ''])) === count
    },
    5000,
    what,
  )
}

/** Until the one handoff stored (read on `node`'s client) has its tail sealed: at most 5 s. */
export function untilTailSealed(cluster: FakeCluster, node: FakeNode): Promise<void> {
  return eventually(
    async () => {
      const hash = (await handoffKeys(cluster, node, '*')).find((key) => !key.endsWith(':tail'))
      return hash !== undefined && String(await node.redis.sendCommand(['HGET', hash, 'sealed'])) === '1'
    },
    5000,
    'the tail sealed',
  )
}

/**
 * Three nodes that all see each other live: a, the one that hands off; b, the claimer, with its
 * own `requestTimeout`, and its subscriber through `subscriberVia` (a proxy in front of the
 * cluster's Redis, to hold what Redis sends it); c, a third.
 */
export async function handoffNodes(
  cluster: FakeCluster,
  claimer: { requestTimeout?: number; subscriberVia?: { url: string } } = {},
): Promise<[FakeNode, FakeNode, FakeNode]> {
  const { subscriberVia, ...options } = claimer
  const subscriber = subscriberVia && `redis://127.0.0.1:${new URL(subscriberVia.url).port}`
  const a = await cluster.node()
  const b = await cluster.node(undefined, subscriber === undefined ? options : { ...options, subscriber })
  const c = await cluster.node()
  await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')
  return [a, b, c]
}

/**
 * Session `sid` handed off on a and claimed by b (won), then b's subscriber held at its proxy:
 * c's x1 to the room goes to a's socket (into the tail), not to b yet. Gives b's claim, what a's
 * socket put into the tail (see `handedOffSession`), and the let-go of b's subscriber.
 */
export async function x1HeldFromClaimer(
  [a, b, c]: [FakeNode, FakeNode, FakeNode],
  proxy: Pick<TcpProxy, 'holdDownstream'>,
  sid: string,
): Promise<{ claim: SessionClaim; tail: string[]; release: () => void }> {
  const tail = await handedOffSession(a, sid)
  const claim = won(await b.adapter.claimSession(sid))
  const release = proxy.holdDownstream()
  c.adapter.broadcast(message('news', ['x1']), to(['r']))
  return { claim, tail, release }
}

/**
 * The claim of `sid` that `node` wins once the one given back is taken back: tried again while
 * the answer is 'retry', every 50 ms, 100 tries at most; any other answer fails the test.
 */
export async function claimAgain(node: FakeNode, sid: string): Promise<SessionClaim> {
  let answer: ClaimAnswer = 'retry'
  for (let tries = 0; answer === 'retry' && tries < 100; tries++) {
    answer = await within(node.adapter.claimSession(sid), 5000, 'a claim')
    if (answer === 'retry') await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return won(answer)
}

/** `from` broadcasts `arg` to room 'r' (as 'news'), and `socket` gets it live: at most 5 s. */
export async function reachesLive(from: FakeNode, arg: string, socket: FakeSocket): Promise<void> {
  from.adapter.broadcast(message('news', [arg]), to(['r']))
  await until(() => socket.got.includes(arg), 5000, `${arg} at the socket`)
}

/** The waits for a seal, run out by hand (`runOut`) rather than after `SEAL_WAIT_MS`. */
export function sealWaitsByHand() {
  const pending: (() => void)[] = []
  const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
    pending.push(wake)
    return () => {}
  })
  return {
    get began() {
      return pending.length
    },
    runOut: () => {
      for (const wake of pending.splice(0)) wake()
    },
    stop: () => spy.mockRestore(),
  }
}

/**
 * Three nodes of `cluster`, once each sees the other two live: a's and b's subscribers read Redis
 * through `aProxy` and `bProxy` (proxies that can hold what Redis sends them), c's directly.
 * `aOptions`: a's own, beside its subscriber (a `requestTimeout` for a PUBLISH it gives up);
 * `bOptions` b's.
 */
export async function proxiedTrio(
  cluster: FakeCluster,
  aProxy: TcpProxy,
  bProxy: TcpProxy,
  aOptions: { requestTimeout?: number } = {},
  bOptions: { requestTimeout?: number } = {},
): Promise<{ a: FakeNode; b: FakeNode; c: FakeNode }> {
  const at = (via: TcpProxy) => `redis://127.0.0.1:${new URL(via.url).port}`
  const a = await cluster.node(undefined, { ...aOptions, subscriber: at(aProxy) })
  const b = await cluster.node(undefined, { ...bOptions, subscriber: at(bProxy) })
  const c = await cluster.node()
  await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')
  return { a, b, c }
}
