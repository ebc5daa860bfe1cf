// Drain with handoff over a real Redis: a node stores a session's snapshot, another claims it
// (exactly one of several), takes it over at the cut point of the broadcast channel and reads
// the tail back. The nodes are real adapters over fake sockets (see handoff-support.ts).
import { createHash } from 'node:crypto'
import { prepareEvent } from '@parley/protocol'
import type { ClaimAnswer, HandOffTail, SessionClaim, SessionSnapshot } from '@parley/server'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { LOOK_AGAIN_MS, MAX_UNANSWERED_COMMANDS } from '../src/commands.js'
import { CLAIM_KEEP_MS, UNCLAIM_KEEP_MS } from '../src/handoff.js'
import { GOODBYE_MARK_MS } from '../src/nodes.js'
import { redisAddress } from '../src/options.js'
import { RedisUnreachableError } from '../src/send.js'
import { sealWaits } from '../src/takeover.js'
import { burstOnAdapter, queueFullOn } from './burst.js'
import {
  argOf,
  dropConnection,
  eventually,
  FakeCluster,
  type FakeNode,
  type FakeSocket,
  HEARTBEAT,
  HeldInOrder,
  HeldOnDroppedLink,
  holdAll,
  isSeal,
  message,
  snapshotOf,
  tailBatch,
  to,
  won,
} from './handoff-support.js'
import { rawRedis } from './raw-redis.js'

const TTL = 60_000

/** The longest Redis holds a burst's writes, should a test fail before it lets them go. */
const PAUSE_MS = 5000

/** A session `sid` with socket `id` on `node`, in `rooms`, its owner record written. */
async function open(node: FakeNode, sid: string, id: string, rooms: string[] = []): Promise<FakeSocket> {
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, ...rooms])
  await node.adapter.sessionOpened(sid)
  return socket
}

/** Hands `sid` off as the server does: from the snapshot on, what the socket gets goes to the tail. */
async function handOff(
  node: FakeNode,
  socket: FakeSocket,
  sid: string,
  rooms: string[] = [],
  ttl = TTL,
  snapshot = snapshotOf(sid, socket.id, rooms),
) {
  socket.handedOff = (text) => node.adapter.appendHandOff(sid, text)
  return node.adapter.handOff(snapshot, ttl)
}

/**
 * `sid`'s snapshot is stored from `node`, whose way to Redis is `proxy`; then `node` is cut off
 * from Redis and the session ends there: its withdraw waits for Redis.
 */
async function endWhileCutOff(node: FakeNode, proxy: TcpProxy, sid: string, id: string): Promise<void> {
  const socket = await open(node, sid, id)
  expect(await handOff(node, socket, sid)).toBe(true)
  proxy.offline = true
  await until(() => !node.redis.isReady, 3000, 'cut off from Redis')
  node.sockets.sessions.delete(sid)
  await node.adapter.withdrawHandOff(sid)
}

/**
 * A new node of `cluster`, live for `b`, that reaches Redis through `proxy`: a link the test takes
 * down (see `cutOff`). Its requestTimeout (5 s) outlasts the cut.
 */
async function behind(proxy: TcpProxy, cluster: FakeCluster, b: FakeNode): Promise<FakeNode> {
  const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`, { requestTimeout: 5000 })
  await until(() => b.adapter.liveNodes.includes(a.adapter.node), 3000, 'a live')
  return a
}

/** Takes `node`'s link to Redis (`proxy`) down, and waits until its client sees it gone. */
async function cutOff(node: FakeNode, proxy: TcpProxy): Promise<void> {
  proxy.offline = true
  await until(() => !node.redis.isReady, 3000, 'a cut off from Redis')
}

/** The UNDO of a handoff's write given up on (see `UNDO` in src/handoff.ts), as a node sends it. */
const isUndo = (args: string[]) => args[1]?.includes("'HMGET', KEYS[2], 'write', 'claimed', 'taken'") === true

/** The heartbeat script (see `HEARTBEAT` in src/nodes.ts), as a node sends it. */
const isHeartbeat = (args: string[]) => args[1]?.includes("'ZREMRANGEBYSCORE'") === true

/**
 * Holds back `node`'s heartbeats, unanswered, until `release`: its record lapses while it goes
 * on (a stalled process, a Redis slow to answer its connection), the rest of its commands
 * answered as ever.
 */
function lapse(node: FakeNode): { release(): void } {
  const held = new HeldInOrder(node.redis, isHeartbeat, isHeartbeat)
  node.hold = held.hold
  return {
    release: () => {
      node.hold = undefined
      void held.runAll()
    },
  }
}

/**
 * `promise`'s value when it settles on microtasks alone, before the next turn of the event loop
 * (no timer, no answer from Redis); 'waited' when it did not.
 */
function beforeAnyIo<T>(promise: Promise<T>): Promise<T | 'waited'> {
  return Promise.race([promise, new Promise<'waited'>((resolve) => setImmediate(() => resolve('waited')))])
}

/**
 * Watches the claimers' waits for a seal (`sealWaits`) until `stop`: how many began, and how many
 * ran out. With 'never', none runs out: a takeover that ends at all was ended by what it waited
 * for (a seal, the old node leaving). What ended a wait is then known without reading the clock,
 * which on a loaded machine measures the load. With 'at once', each wait runs out on the next
 * turn of the event loop rather than after SEAL_WAIT_MS (3 s): for a test whose seal cannot
 * come, and which asserts what follows the bound, not its length. With 'by hand', each runs out
 * when the test calls `runOut`: once what the claimer is to read after its bound is in Redis.
 */
function watchSealWaits(mode: 'real' | 'never' | 'at once' | 'by hand' = 'real') {
  const pending: (() => void)[] = []
  const waits = {
    began: 0,
    ranOut: 0,
    stop: () => spy.mockRestore(),
    /** With 'by hand': the waits begun so far run out now. */
    runOut: () => {
      for (const ranOut of pending.splice(0)) ranOut()
    },
  }
  const start = sealWaits.start
  const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
    waits.began++
    if (mode === 'never') return () => {}
    let over = false
    const ranOut = () => {
      if (over) return
      over = true
      waits.ranOut++
      wake()
    }
    if (mode === 'real') return start(ranOut)
    if (mode === 'by hand') {
      pending.push(ranOut)
      return () => {
        over = true
      }
    }
    const timer = setTimeout(ranOut, 0)
    return () => clearTimeout(timer)
  })
  return waits
}

/**
 * A claim's answer when nothing is stored and `node`, another live node, owns the session
 * (`ClaimMissed`).
 */
const owned = (node: FakeNode) => ({ missed: 'owned', node: node.adapter.node, live: true })

/** Takes `result` over on `node` as the server does: the socket exists, `join` puts it in its rooms. */
function takeOver(node: FakeNode, result: ClaimAnswer | undefined) {
  const claim = won(result)
  const { sid, id, rooms } = claim.snapshot
  const socket = node.sockets.add(id, sid)
  let joins = 0
  const done = claim.takeOver(() => {
    joins++
    node.adapter.addAll(id, [id, ...rooms])
  })
  return { socket, done, joins: () => joins }
}

/**
 * Heartbeats for the tests that cut a node's connection to Redis, so that its record outlives the
 * cut by far. With the tests' 300 ms heartbeats it lasts 900 ms, which the reconnection took on a
 * loaded machine: the node's next beat found its record gone, took Redis for restarted empty, and
 * its claims answered 'retry' (Redis being refilled) where the test waits for the session's own
 * answer (seen: 'expected "retry" to be null', 4 runs in 5 at a load average of 20).
 */
const OUTLIVE_CUTS = { heartbeatInterval: 2000 }

describe.skipIf(skipRedisSuites())('drain with handoff', () => {
  let redis: RedisServer
  let cluster: FakeCluster
  /** Raw clients that hold a burst's writes (see `burstOnAdapter`), closed after each test. */
  const raws: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const close of raws.splice(0)) await close()
  })
  const pauser = () => rawRedis(redis.url, raws)

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    // A test that failed while it watched the waits for a seal (see `watchSealWaits`).
    vi.restoreAllMocks()
    await cluster?.close()
  })

  it('stores a snapshot that another node claims as it was written, and answers handingOff meanwhile', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const socket = await open(a!, 'sid-1', 's1', ['r'])
    expect(await c!.adapter.sessionOwner('sid-1')).toMatchObject({ node: a!.adapter.node })

    expect(await handOff(a!, socket, 'sid-1', ['r'])).toBe(true)
    expect(await c!.adapter.sessionOwner('sid-1')).toEqual({
      node: a!.adapter.node,
      url: 'http://127.0.0.1:1',
      handingOff: true,
    })
    // The old node still holds the session: requests of its transport are served there.
    expect(await a!.adapter.sessionOwner('sid-1')).toBe('local')
    // No key names the sid.
    const keys = await a!.redis.keys(`${cluster.prefix}:*`)
    expect(keys.some((key) => key.includes('sid-1'))).toBe(false)

    const claim = await b!.adapter.claimSession('sid-1')
    expect(won(claim).snapshot).toEqual(snapshotOf('sid-1', 's1', ['r']))
    expect(await c!.adapter.sessionOwner('sid-1')).toEqual({
      node: b!.adapter.node,
      url: 'http://127.0.0.1:1',
    })
    const taken = takeOver(b!, claim!)
    expect(await taken.done).toEqual({ tail: [], complete: true, late: false })
    expect(taken.joins()).toBe(1)
    expect(a!.sockets.claims).toEqual(['sid-1'])
    // The handoff's keys are gone; the owner record stays, naming the claimer.
    expect(await a!.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
    // The old node's session ends later: the record of the new owner stays.
    a!.adapter.sessionClosed('sid-1')
    await sleep(50)
    expect(await c!.adapter.sessionOwner('sid-1')).toMatchObject({ node: b!.adapter.node })
  })

  it('asks the owner, and only it, to hand a session off; false when it says no, is not live, or does not answer', async () => {
    // The owner's `asked` must come within requestTimeout (and its answer within twice that):
    // a second leaves a loaded machine time for a round trip; 300 ms did not always.
    cluster = new FakeCluster(redis.url, { requestTimeout: 1000 })
    const [a, b, c] = await cluster.start(3)
    const socket = await open(a!, 'sid-m', 'sm', ['r'])
    // The server's move: store the snapshot (the session then reads as handing off).
    a!.sockets.move = (sid) => handOff(a!, socket, sid, ['r'])
    expect(await b!.adapter.requestHandOff(a!.adapter.node, 'sid-m')).toBe(true)
    expect(a!.sockets.asked).toEqual(['sid-m'])
    expect(c!.sockets.asked).toEqual([])
    expect(await b!.adapter.sessionOwner('sid-m')).toMatchObject({ node: a!.adapter.node, handingOff: true })
    expect(await b!.adapter.claimSession('sid-m')).not.toBeNull()

    a!.sockets.move = async () => false
    expect(await b!.adapter.requestHandOff(a!.adapter.node, 'sid-other')).toBe(false)
    // A node that is not live is not asked.
    expect(await b!.adapter.requestHandOff('no-such-node', 'sid-m')).toBe(false)
    expect(a!.sockets.asked).toEqual(['sid-m', 'sid-other'])
    // Alive but silent: no answer within twice requestTimeout reads as a no.
    a!.sockets.move = () => new Promise(() => {})
    const started = Date.now()
    expect(await b!.adapter.requestHandOff(a!.adapter.node, 'sid-late')).toBe(false)
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 1000 - 50)
  })

  it('waits for the answer of a node asked to hand off under the largest requestTimeout', async () => {
    // Twice 2^31-1 ms is past what a timer can hold: such a timer fires at once.
    cluster = new FakeCluster(redis.url, { requestTimeout: 2 ** 31 - 1 })
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-big', 'sb')
    a!.sockets.move = async (sid) => {
      await sleep(200)
      return handOff(a!, socket, sid)
    }
    expect(await b!.adapter.requestHandOff(a!.adapter.node, 'sid-big')).toBe(true)
  })

  it('gives up at once on a node that does not say it got the request (killed, still in the live set)', async () => {
    // Twice requestTimeout (a minute) were the wait without HANDOFF_ASKED_MS: 'late' below is far
    // from both, for a machine many times slower than this one.
    cluster = new FakeCluster(redis.url, { requestTimeout: 30_000 })
    const [a, b] = await cluster.start(2)
    // A node of this version that was killed right after its heartbeat: its record and its
    // note are there for three more heartbeats, and nothing reads its requests.
    const dead = 'killed-node'
    const record = `${cluster.prefix}:node:${dead}`
    await a!.redis.sendCommand(['SET', record, 'http://127.0.0.1:9', 'PX', '60000'])
    await a!.redis.sendCommand(['SET', `${record}:note`, JSON.stringify({ v: 1 }), 'PX', '60000'])
    await a!.redis.sendCommand(['ZADD', `${cluster.prefix}:nodes`, String(Date.now()), dead])
    await until(() => b!.adapter.liveNodes.includes(dead), 3000, 'the dead node read as live')
    const asked = b!.adapter.requestHandOff(dead, 'sid-dead')
    const outcome = await Promise.race([asked, sleep(10_000).then(() => 'late')])
    expect(outcome).toBe(false)
    await a!.redis.sendCommand(['DEL', record, `${record}:note`])
    await a!.redis.sendCommand(['ZREM', `${cluster.prefix}:nodes`, dead])
  })

  it('starts the wait for the answer once, however often a node says it got the request', async () => {
    // Its first `asked` must come within requestTimeout: a second leaves a loaded machine time.
    cluster = new FakeCluster(redis.url, { requestTimeout: 1000 })
    const [a, b] = await cluster.start(2)
    // A node that says `asked` again and again and never answers (a real node says it once):
    // each saying must not start the 2 s wait for its answer anew (it would never end).
    const chatty = 'chatty-node'
    const record = `${cluster.prefix}:node:${chatty}`
    await a!.redis.sendCommand(['SET', record, 'http://127.0.0.1:9', 'PX', '60000'])
    await a!.redis.sendCommand(['SET', `${record}:note`, JSON.stringify({ v: 1 }), 'PX', '60000'])
    await a!.redis.sendCommand(['ZADD', `${cluster.prefix}:nodes`, String(Date.now()), chatty])
    await until(() => b!.adapter.liveNodes.includes(chatty), 3000, 'the chatty node read as live')
    const listener = a!.redis.duplicate()
    await listener.connect()
    let repeating: NodeJS.Timeout | undefined
    try {
      await listener.subscribe(`${cluster.prefix}:request`, (text) => {
        const request = JSON.parse(text) as { n: string; id: string; to?: string }
        if (request.to !== chatty) return
        const say = () =>
          void a!.redis.publish(
            `${cluster.prefix}:response:${request.n}`,
            JSON.stringify({ n: chatty, id: request.id, k: 'asked' }),
          )
        say()
        repeating = setInterval(say, 100)
      })
      const started = Date.now()
      const asked = b!.adapter.requestHandOff(chatty, 'sid-chatty')
      expect(await Promise.race([asked, sleep(10_000).then(() => 'late')])).toBe(false)
      expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 1000 - 50)
    } finally {
      clearInterval(repeating)
      await listener.quit()
      await a!.redis.sendCommand(['DEL', record, `${record}:note`])
      await a!.redis.sendCommand(['ZREM', `${cluster.prefix}:nodes`, chatty])
    }
  })

  it('names another live node with its address for a draining node’s resumes, the same for a sid, none once alone', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    // How many others a drain could wait for (Adapter.otherNodes): none once alone, below.
    await until(() => a!.adapter.otherNodes() === 2, 3000, 'two others')
    const named = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const sid = `sid-${i}`
      const other = a!.adapter.anotherNode(sid)
      expect(other?.url).toBe(a!.sockets.url())
      // A client that tries again reaches the node that claimed its session.
      expect(a!.adapter.anotherNode(sid)).toEqual(other)
      named.add(other!.node)
    }
    // Spread by the sid: both others, over forty sessions.
    expect(named).toEqual(new Set([b!.adapter.node, c!.adapter.node]))
    await cluster.stop(b!)
    await cluster.stop(c!)
    await until(() => a!.adapter.liveNodes.length === 0, 3000, 'a alone')
    expect(a!.adapter.anotherNode('sid-0')).toBeUndefined()
    expect(a!.adapter.otherNodes()).toBe(0)
  })

  it('counts a node that closed as gone as soon as it says it left, and a read older than that does not bring it back', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    // a's next heartbeat is held on its way, and what a sends after it, as on one connection:
    // what it knows of b's leaving comes from b alone (on a's subscriber).
    const isBeat = (args: string[]) => args[0] === 'EVAL' && args[3] === `${cluster.prefix}:nodes`
    const held = new HeldInOrder(a!.redis, isBeat, () => true)
    a!.hold = held.hold
    await until(() => held.held.length > 0, 3000, 'a beat held')
    // It reads the live set now, b still in it; its answer comes only after b left.
    await held.runFirst()
    expect(a!.adapter.otherNodes()).toBe(1)
    await cluster.stop(b!)
    // A drain that counts the others now seals alone (a restart), not after waiting for claims.
    await until(() => a!.adapter.otherNodes() === 0, 3000, 'b gone at once')
    expect(a!.adapter.liveNodes).toEqual([])
    // Only that old read is taken in: the next beat is held, with what follows it, until a
    // sent it, the old answer handled by then.
    const next = new HeldInOrder(a!.redis, isBeat, () => true)
    a!.hold = (args) => held.hold(args) ?? next.hold(args)
    await held.runAll()
    await until(() => next.held.length > 0, 3000, 'the next beat held')
    expect(a!.adapter.otherNodes()).toBe(0)
    // The beats that follow read the live set as it is now: none brings b back either. Two
    // answered: a took in the first whole.
    let beats = 0
    await next.runAll()
    a!.hold = (args) =>
      isBeat(args)
        ? a!.redis.sendCommand(args).then((reply) => {
            beats++
            return reply
          })
        : undefined
    await until(() => beats >= 2, HEARTBEAT * 10, 'two beats after the old read')
    expect(a!.adapter.otherNodes()).toBe(0)
  })

  it('claims a snapshot only for a resume under its route parameters, and an earlier version’s for any', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-p', 'sp')
    const snapshot = { ...snapshotOf('sid-p', 'sp'), params: { tenant: 'acme', region: 'eu' } }
    expect(await handOff(a!, socket, 'sid-p', [], TTL, snapshot)).toBe(true)
    // Another tenant's resume takes nothing, and leaves the handoff as it was.
    const others: Record<string, string>[] = [{ tenant: 'globex', region: 'eu' }, { tenant: 'acme' }, {}]
    for (const params of others)
      expect(await b!.adapter.claimSession('sid-p', params)).toEqual({ missed: 'params' })
    expect(await b!.adapter.sessionOwner('sid-p')).toMatchObject({ node: a!.adapter.node, handingOff: true })
    // Its own client's, whatever the order of the names.
    const claim = await b!.adapter.claimSession('sid-p', { region: 'eu', tenant: 'acme' })
    expect(won(claim).snapshot).toEqual(snapshot)
    await takeOver(b!, claim!).done
    // A snapshot without them, as a node of an earlier version writes it: claimed for any resume.
    const older = await open(a!, 'sid-q', 'sq')
    expect(await handOff(a!, older, 'sid-q')).toBe(true)
    const any = await b!.adapter.claimSession('sid-q', { tenant: 'globex' })
    expect(won(any).snapshot).toEqual(snapshotOf('sid-q', 'sq'))
    await takeOver(b!, any!).done
  })

  it('tells a resume under other route parameters nothing of a handoff its old node kept', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-k', 'sk')
    const snapshot = { ...snapshotOf('sid-k', 'sk'), params: { tenant: 'acme' } }
    expect(await handOff(a!, socket, 'sid-k', [], TTL, snapshot)).toBe(true)
    // As UNDO leaves it when the old node kept the session after another node claimed it: the
    // handoff marked ended and kept, the owner record the old node's again.
    const hash = createHash('sha256').update('sid-k').digest('base64url')
    await a!.redis.sendCommand([
      'HSET',
      `${cluster.prefix}:handoff:${hash}`,
      ...['claimed', b!.adapter.node, 'ended', '1', 'kept', '1'],
    ])
    await a!.redis.sendCommand(['SET', `${cluster.prefix}:session:${hash}`, a!.adapter.node])
    // Another tenant's resume is not told where the session lives.
    expect(await b!.adapter.claimSession('sid-k', { tenant: 'globex' })).toEqual({ missed: 'params' })
    // Its own client's is, and tries again there.
    expect(await b!.adapter.claimSession('sid-k', { tenant: 'acme' })).toMatchObject({
      missed: 'owned',
      node: a!.adapter.node,
    })
  })

  it('lets exactly one of two racing claims win', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    for (let round = 0; round < 10; round++) {
      const sid = `race-${round}`
      const socket = await open(a!, sid, `s${round}`)
      expect(await handOff(a!, socket, sid)).toBe(true)
      const claims = await Promise.all([b!.adapter.claimSession(sid), c!.adapter.claimSession(sid)])
      const winners = claims.filter((claim) => typeof claim === 'object' && claim !== null)
      expect(winners).toHaveLength(1)
      // The other learns that another node won, while the winner takes the session over: its
      // client is told so and to try again, and finds the session there next (see
      // second-resume.test.ts).
      expect(claims.filter((claim) => claim === 'elsewhere')).toHaveLength(1)
      const winner = claims[0] !== 'elsewhere' ? b! : c!
      await takeOver(winner, winners[0]).done
      expect(await a!.adapter.sessionOwner(sid)).toMatchObject({ node: winner.adapter.node })
      // And a claim after the takeover finds nothing.
      expect(await a!.adapter.claimSession(sid)).toEqual(owned(winner!))
    }
  })

  it('finds nothing to claim for an unknown session, nor once the handoff expired', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    expect(await b!.adapter.claimSession('never-seen')).toBeNull()
    const socket = await open(a!, 'sid-short', 's1')
    expect(await handOff(a!, socket, 'sid-short', [], 200)).toBe(true)
    await sleep(400)
    expect(await b!.adapter.claimSession('sid-short')).toBeNull()
    // The owner record went with it: the session is gone.
    expect(await b!.adapter.sessionOwner('sid-short')).toBe('unknown')
  })

  it('leaves no key without an expiry when the handoff expires between the claim and the read-back', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-lapsed', 's1')
    expect(await handOff(a!, socket, 'sid-lapsed')).toBe(true)
    const claim = await b!.adapter.claimSession('sid-lapsed')
    // The keys run out before the claimer reads the tail back (an application's middleware
    // slower than CLAIM_KEEP_MS, a Redis stalled that long).
    const hash = `${cluster.prefix}:handoff:${createHash('sha256').update('sid-lapsed').digest('base64url')}`
    await b!.redis.del(hash)
    const taken = takeOver(b!, claim)
    expect(await within(taken.done, 5000, 'the takeover')).toMatchObject({ tail: [], complete: false })
    expect(await (claim as SessionClaim).confirm!()).toBe('taken')
    expect(await b!.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
  })

  it('refuses a snapshot of another version or shape (unreadable, with a coded error), and leaves nothing behind', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const cases: [string, unknown][] = [
      ['sid-v2', { ...snapshotOf('sid-v2', 's1'), v: 2 }],
      ['sid-shape', { ...snapshotOf('sid-shape', 's2'), kept: 'not a list' }],
      // The next ack id must be one: 1 to 2^31 - 1.
      ['sid-ack-0', { ...snapshotOf('sid-ack-0', 's3'), nextAckId: 0 }],
      ['sid-ack-big', { ...snapshotOf('sid-ack-big', 's4'), nextAckId: 2 ** 31 }],
      ['sid-ack-half', { ...snapshotOf('sid-ack-half', 's5'), nextAckId: 1.5 }],
      ['sid-ack-text', { ...snapshotOf('sid-ack-text', 's6'), nextAckId: '7' }],
      ['sid-ack-null', { ...snapshotOf('sid-ack-null', 's7'), nextAckId: null }],
    ]
    for (const [sid, snapshot] of cases) {
      a!.sockets.add(`socket-${sid}`, sid)
      await a!.adapter.sessionOpened(sid)
      expect(await a!.adapter.handOff(snapshot as SessionSnapshot, TTL)).toBe(true)
      expect(await b!.adapter.claimSession(sid)).toMatchObject({
        missed: 'unreadable',
        error: { code: 'PARLEY_INVALID_PACKET', message: expect.stringContaining('snapshot was refused') },
      })
      await sleep(50)
      a!.sockets.sessions.delete(sid)
      expect(await a!.adapter.sessionOwner(sid)).toBe('unknown')
    }
    expect(await a!.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
  })

  it('hands the next ack id over as it is, up to 2^31 - 1, and a snapshot without one (a node of an earlier version)', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const { nextAckId: _, ...earlier } = snapshotOf('sid-earlier', 's2')
    const cases: [string, SessionSnapshot][] = [
      ['sid-last-id', { ...snapshotOf('sid-last-id', 's1'), nextAckId: 2 ** 31 - 1 }],
      ['sid-earlier', earlier],
    ]
    for (const [sid, snapshot] of cases) {
      const socket = await open(a!, sid, snapshot.id)
      expect(await handOff(a!, socket, sid, [], TTL, snapshot)).toBe(true)
      const claim = await b!.adapter.claimSession(sid)
      expect(won(claim).snapshot.nextAckId).toBe(snapshot.nextAckId)
      await takeOver(b!, claim).done
    }
    expect(b!.warnings).toEqual([])
  })

  it('refuses to hand off a session whose owner record names another node, or none', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const socket = await open(a!, 'sid-moved', 's1')
    await b!.adapter.sessionOpened('sid-moved')
    expect(await handOff(a!, socket, 'sid-moved')).toBe(false)
    expect(await c!.adapter.claimSession('sid-moved')).toEqual(owned(b!))
    expect(await c!.adapter.sessionOwner('sid-moved')).toEqual({
      node: b!.adapter.node,
      url: 'http://127.0.0.1:1',
    })

    // The socket stays a's, and gets each of a's broadcasts once, those emitted while the
    // refused handoff was in flight included.
    socket.handedOff = undefined
    a!.adapter.addAll('s1', ['r'])
    const emit = (n: number) => a!.adapter.broadcast(message('news', [n]), to(['r']))
    emit(0)
    const refused = a!.adapter.handOff(snapshotOf('sid-moved', 's1'), TTL)
    emit(1)
    emit(2)
    expect(await refused).toBe(false)
    emit(3)
    await until(() => socket.got.length >= 4, 3000, 'deliveries')
    emit(4)
    await until(() => socket.got.length >= 5, 3000, 'deliveries')
    await sleep(100)
    expect(socket.got).toEqual([0, 1, 2, 3, 4])

    const orphan = a!.sockets.add('s2', 'sid-orphan')
    expect(await handOff(a!, orphan, 'sid-orphan')).toBe(false)
    expect(await c!.adapter.claimSession('sid-orphan')).toBeNull()
  })

  it('keeps a late append of a handoff out of the next handoff of the session', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const socket = await open(a!, 'sid-again', 's1')
    expect(await handOff(a!, socket, 'sid-again')).toBe(true)
    // a's append is held on its way to Redis by a connection that dropped before its answer: a
    // sends it again on the next one, then b claims the session, takes it over (a seals behind
    // the append) and hands it off in turn.
    let late: string[] | undefined
    a!.hold = (args) => {
      if (late || tailBatch(args) === undefined) return undefined
      late = args
      return Promise.reject(
        new RedisUnreachableError('the connection dropped before the answer', { at: redisAddress(a!.redis) }),
      )
    }
    a!.adapter.appendHandOff('sid-again', '[5,13,"news",["late"],0]')
    await until(() => late !== undefined, 3000, 'the append on its way')
    const first = takeOver(b!, await b!.adapter.claimSession('sid-again'))
    expect(await first.done).toEqual({ tail: ['[5,13,"news",["late"],0]'], complete: true, late: false })
    expect(await handOff(b!, first.socket, 'sid-again')).toBe(true)
    // Run now, it belongs to a's handoff, which is over: b's tail must not take it.
    expect(await a!.redis.sendCommand(late!)).toEqual([0])
    const second = takeOver(c!, await c!.adapter.claimSession('sid-again'))
    expect((await second.done).tail).toEqual([])
  })

  it('appends in order, seals with the last packets, and refuses what comes after', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-tail', 's1')
    expect(await handOff(a!, socket, 'sid-tail')).toBe(true)
    const texts = Array.from({ length: 50 }, (_, i) => `[5,${13 + i},"news",[${i}],0]`)
    for (const text of texts) a!.adapter.appendHandOff('sid-tail', text)
    await a!.adapter.sealHandOff('sid-tail', ['[6,63,"PARLEY_SESSION_MOVED",2]'])
    a!.adapter.appendHandOff('sid-tail', 'late')
    // Another session's appends never land in this tail.
    a!.adapter.appendHandOff('sid-other', 'stray')

    const claim = won(await b!.adapter.claimSession('sid-tail'))
    let joins = 0
    const waits = watchSealWaits()
    const taking = claim.takeOver(() => {
      joins++
      throw new Error('a join that fails')
    })
    // A second call is the same takeover: join is called once.
    expect(claim.takeOver(() => joins++)).toBe(taking)
    // The failing join is logged; the takeover still resolves.
    // Sealed before the claim (the drain ended without one): late, what came after is lost.
    expect(await taking).toEqual({
      tail: [...texts, '[6,63,"PARLEY_SESSION_MOVED",2]'],
      complete: true,
      late: true,
    })
    expect(joins).toBe(1)
    expect(b!.warnings.some((w) => w.includes('taking over a claimed session failed'))).toBe(true)
    // Sealed already: no seal to wait for, only the claimer's own marker (the cut), which ends it.
    waits.stop()
    expect(waits).toMatchObject({ began: 1, ranOut: 0 })
    // The old node sealed at the end of its drain: claimed() is not asked again.
    await sleep(50)
    expect(a!.sockets.claims).toEqual([])
  })

  it('tells a claim whether the tail was sealed by a drain alone, or after waiting for a claim', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const alone = await open(a!, 'sid-alone', 's1')
    const waited = await open(a!, 'sid-waited', 's2')
    expect(await handOff(a!, alone, 'sid-alone')).toBe(true)
    expect(await handOff(a!, waited, 'sid-waited')).toBe(true)
    // The first as a drain with no other node live seals, the second as one whose timeout passed.
    await a!.adapter.sealHandOff('sid-alone', ['[6,13,"PARLEY_SESSION_MOVED",2]'], true)
    await a!.adapter.sealHandOff('sid-waited', [])

    const restart = await b!.adapter.claimSession('sid-alone')
    expect(await takeOver(b!, restart!).done).toEqual({
      tail: ['[6,13,"PARLEY_SESSION_MOVED",2]'],
      complete: true,
      late: true,
      alone: true,
    })
    const late = await b!.adapter.claimSession('sid-waited')
    const result = await takeOver(b!, late!).done
    expect(result).toMatchObject({ tail: [], complete: true, late: true })
    expect(result).not.toHaveProperty('alone')
  })

  it('costs 7 commands for a session whose k packets went to its tail in one batch, one more per losing claim', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const socket = await open(a!, 'sid-count', 's1')
    a!.sockets.last = () => ['last']
    const hash = createHash('sha256').update('sid-count').digest('base64url')
    const handoffCommands = () =>
      [a!, b!, c!].flatMap((node) =>
        node.commands.filter((args) =>
          args.some((arg) => arg.includes(hash) || arg.includes(`"k":"sealed"`)),
        ),
      )
    const before = handoffCommands().length
    expect(await handOff(a!, socket, 'sid-count')).toBe(true)
    for (let i = 0; i < 5; i++) a!.adapter.appendHandOff('sid-count', `[5,${13 + i},"news",[${i}],0]`)
    const claims = await Promise.all([
      b!.adapter.claimSession('sid-count'),
      c!.adapter.claimSession('sid-count'),
    ])
    // Either may win (the two claims reach Redis on two connections); the other gets 'elsewhere'.
    const winner = claims.findIndex((answer) => typeof answer === 'object' && answer !== null)
    const claim = claims[winner]
    const claimer = winner === 0 ? b! : c!
    const result = await takeOver(claimer, claim!).done
    expect(result.tail).toHaveLength(6)
    expect(result.complete).toBe(true)
    // Sealed: the old node's steps went before its seal, and the claim stands without asking.
    expect(await (claim as SessionClaim).confirm!()).toBe('taken')
    const sent = handoffCommands().slice(before)
    // write, the 5 appends in one batch, 2 claims, the marker, the seal, 'sealed', the read-back.
    expect(sent).toHaveLength(1 + 6 + 1)
    expect(sent.map(tailBatch).find((parts) => parts !== undefined)?.[0]?.texts).toHaveLength(5)
    const publishes = sent.filter((args) => args[0] === 'PUBLISH')
    expect(publishes.map((args) => JSON.parse(args[2]!).k).sort()).toEqual(['claim', 'sealed'])
    // The sid itself never crosses: neither in a key nor on a channel.
    const keys = sent.flatMap((args) => (args[0] === 'EVAL' ? args.slice(3, 3 + Number(args[2])) : []))
    expect(keys.length).toBeGreaterThan(sent.length)
    expect(keys.some((key) => key.includes('sid-count'))).toBe(false)
    expect(publishes.some((args) => args[2]!.includes('sid-count'))).toBe(false)
  })

  it('takes over from a live old node: its last packets close the tail, complete', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-live', 's1', ['r'])
    a!.sockets.last = () => ['[6,20,"PARLEY_SESSION_MOVED",5]']
    expect(await handOff(a!, socket, 'sid-live', ['r'])).toBe(true)
    const append = socket.handedOff!
    let appended = 0
    socket.handedOff = (text) => {
      appended++
      append(text)
    }
    a!.adapter.broadcast(message('news', ['before']), to(['r']))
    b!.adapter.broadcast(message('news', ['from b, before']), to(['r']))
    // Both reached the old node (its own one when it came back over the channel) before the claim.
    await until(() => appended === 2, 3000, 'appends')
    expect(socket.got).toEqual([])

    const claim = await b!.adapter.claimSession('sid-live')
    const taken = takeOver(b!, claim!)
    const result = await taken.done
    expect(result.complete).toBe(true)
    expect(result.tail.map(argOf)).toEqual(
      expect.arrayContaining(['before', 'from b, before', '[6,20,"PARLEY_SESSION_MOVED",5]']),
    )
    expect(result.tail.at(-1)).toBe('[6,20,"PARLEY_SESSION_MOVED",5]')
    expect(a!.sockets.claims).toEqual(['sid-live'])
    // From now on the claimer delivers, once.
    a!.adapter.broadcast(message('news', ['after']), to(['r']))
    await until(() => taken.socket.got.includes('after'), 3000, 'after the takeover')
    await sleep(100)
    expect(taken.socket.got).toEqual(['after'])
  })

  it('gives up on an old node that closed, or never seals, within the bound (complete: false)', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const s1 = await open(a!, 'sid-gone', 's1')
    expect(await handOff(a!, s1, 'sid-gone')).toBe(true)
    a!.adapter.appendHandOff('sid-gone', 'kept')
    await sleep(50)
    await cluster.stop(a!)
    await until(() => !b!.adapter.liveNodes.includes(a!.adapter.node), 3000, 'a leaves the live set')

    // Closed (it removed its record and said so): taken over once b's own marker is back (no wait
    // for a seal), with what the tail holds.
    const goneWaits = watchSealWaits()
    const gone = takeOver(b!, (await b!.adapter.claimSession('sid-gone'))!)
    expect(await gone.done).toEqual({ tail: ['kept'], complete: false, late: false })
    goneWaits.stop()
    expect(gone.joins()).toBe(1)
    // Only the claimer's own marker is waited for (the cut), and it ends the wait.
    expect(goneWaits).toMatchObject({ began: 1, ranOut: 0 })

    // Live, but its seal never comes (held on its way): the bounded wait.
    const s2 = await open(c!, 'sid-silent', 's2')
    expect(await handOff(c!, s2, 'sid-silent')).toBe(true)
    c!.hold = new HeldInOrder(c!.redis, isSeal, () => false).hold
    // Ended by its bound: the wait for a seal ran out (at once here).
    const silentWaits = watchSealWaits('at once')
    const silent = takeOver(b!, (await b!.adapter.claimSession('sid-silent'))!)
    const result: HandOffTail = await silent.done
    silentWaits.stop()
    expect(result).toEqual({ tail: [], complete: false, late: false })
    expect(silent.joins()).toBe(1)
    expect(silentWaits).toMatchObject({ began: 1, ranOut: 1 })
    c!.hold = undefined
  })

  it('takes over at once on a node started after the old node closed: the goodbye is marked in Redis', async () => {
    cluster = new FakeCluster(redis.url)
    const [a] = await cluster.start(1)
    const socket = await open(a!, 'sid-before', 's1')
    expect(await handOff(a!, socket, 'sid-before')).toBe(true)
    a!.adapter.appendHandOff('sid-before', 'kept')
    await cluster.stop(a!)

    // b never heard a say that it left; it reads a's mark, and asks for no seal.
    const b = await cluster.node()
    const waits = watchSealWaits()
    const taken = takeOver(b, await b.adapter.claimSession('sid-before'))
    expect(await within(taken.done, 5000, 'the takeover')).toEqual({
      tail: ['kept'],
      complete: false,
      late: false,
    })
    waits.stop()
    expect(taken.joins()).toBe(1)
    // Only b's own marker is waited for (the cut), and it ends the wait.
    expect(waits).toMatchObject({ began: 1, ranOut: 0 })
    // The mark lasts a day (longer than a's handoffs may be claimed here), not for ever.
    const left = await b.redis.pTTL(`${cluster.prefix}:node:${a!.adapter.node}:left`)
    expect(left).toBeGreaterThan(TTL + CLAIM_KEEP_MS)
    expect(left).toBeLessThanOrEqual(GOODBYE_MARK_MS)
  })

  it('marks the goodbye of a node that claimed a session and handed none off: a claim it left standing is not waited for', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-claimer-left', 's1')
    expect(await handOff(a!, socket, 'sid-claimer-left')).toBe(true)
    // b wins the claim, then closes before its takeover read the tail: the claim stands in Redis.
    won(await b!.adapter.claimSession('sid-claimer-left'))
    await cluster.stop(b!)
    // c never heard b say it left; it reads b's mark, and does not tell the client to try again
    // (for as long as the claim stands) for a session that went with b: it is lost.
    const c = await cluster.node()
    expect(await c.adapter.claimSession('sid-claimer-left')).toEqual({ missed: 'lost' })
    const left = await c.redis.pTTL(`${cluster.prefix}:node:${b!.adapter.node}:left`)
    expect(left).toBeGreaterThan(TTL)
    expect(left).toBeLessThanOrEqual(GOODBYE_MARK_MS)
  })

  it('reads the mark of a claimer that left in turn behind a burst on the node a resume reaches: a new session at once, not a try again', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const sid = 'sid-claimer-left-burst'
    const socket = await open(a!, sid, 's1')
    expect(await handOff(a!, socket, sid)).toBe(true)
    won(await b!.adapter.claimSession(sid))
    await cluster.stop(b!)
    // c never heard b say it left, and a burst fills its connection as the resume reaches it:
    // the claim waits its turn, and twice as many owner records as its connection holds wait
    // behind it, so that the burst is still on when the claim's answer names b.
    const c = await cluster.node()
    const raw = await pauser()
    try {
      await burstOnAdapter(raw, c.adapter, PAUSE_MS)
      const answer = c.adapter.claimSession(sid)
      const opened = Array.from({ length: 2 * MAX_UNANSWERED_COMMANDS }, (_, i) =>
        c.adapter.sessionOpened(`sid-opening-${i}`),
      )
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      // Refused, b's mark went unread, and b was taken for one that may be alive: the client
      // told to try again ('elsewhere') for a session that went with b.
      expect(await within(answer, 5000, 'the claim')).toEqual({ missed: 'lost' })
      await within(Promise.all(opened), 5000, 'the records of the sessions opening')
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it('says which step of its goodbye failed: a refused mark leaves the record removed and the others told', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-unmarked', 's1')
    expect(await handOff(a!, socket, 'sid-unmarked')).toBe(true)
    const node = a!.adapter.node
    const leftKey = `${cluster.prefix}:node:${node}:left`
    // Redis refuses the mark alone (a replica turned read-only for that key's slot, an ACL).
    a!.hold = (args) =>
      args[0] === 'SET' && args[1] === leftKey
        ? Promise.reject(new Error('NOPERM test refuses the mark'))
        : undefined
    const heard: string[] = []
    const listener = b!.redis.duplicate()
    await listener.connect()
    try {
      await listener.subscribe(`${cluster.prefix}:membership`, (text) => heard.push(text))
      await cluster.stop(a!)
      await until(() => heard.some((text) => text.includes('"left"')), 3000, 'a saying it left')
    } finally {
      listener.destroy()
    }
    expect(await b!.redis.exists([`${cluster.prefix}:node:${node}`, leftKey])).toBe(0)
    expect(a!.warnings.filter((w) => w.includes('live set'))).toEqual([])
    expect(
      a!.warnings.filter((w) =>
        w.includes(
          `could not leave the mark of this node's goodbye (SET ${leftKey}: refused: NOPERM test refuses the mark)`,
        ),
      ),
    ).toHaveLength(1)
  })

  it('resolves a second close() only once the first is over: the client can be closed right after it', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const node = a!.adapter.node
    // The application's own hook, while Parley's close of the adapter is under way.
    const first = a!.adapter.close()
    await a!.adapter.close()
    a!.redis.destroy()
    await first
    expect(await b!.redis.exists(`${cluster.prefix}:node:${node}`)).toBe(0)
    expect(a!.warnings.filter((w) => w.includes('goodbye') || w.includes('live set'))).toEqual([])
  })

  it('says that its goodbye could not go when it closes cut off from Redis', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await behind(proxy, cluster, b!)
      const socket = await open(a, 'sid-cut-goodbye', 's1')
      expect(await handOff(a, socket, 'sid-cut-goodbye')).toBe(true)
      await cutOff(a, proxy)
      await cluster.stop(a)
      const said = a.warnings.filter((w) => w.includes('is not connected'))
      expect(said).toHaveLength(1)
      expect(said[0]).toContain("this node's record was not removed")
      expect(said[0]).toContain('no mark of its goodbye is left')
    } finally {
      await proxy.close()
    }
  })

  it('remembers for a record lifetime that a node out of the live set left no address record', async () => {
    cluster = new FakeCluster(redis.url)
    const [a] = await cluster.start(1)
    // An owner record that outlived its node (it closed while Redis could not take the removal).
    const hash = createHash('sha256').update('sid-ghost').digest('base64url')
    await a!.redis.set(`${cluster.prefix}:session:${hash}`, 'ghost-node')
    const addressKey = `${cluster.prefix}:node:ghost-node:address`
    const asked = () => a!.commands.filter((args) => args[0] === 'GET' && args[1] === addressKey).length
    expect(await a!.adapter.sessionOwner('sid-ghost')).toBe('unknown')
    expect(await a!.adapter.sessionOwner('sid-ghost')).toBe('unknown')
    expect(asked()).toBe(1)
    // Past a record lifetime (three heartbeats) it asks again, and finds a record written since.
    await a!.redis.set(addressKey, 'http://127.0.0.1:1')
    let answer = await a!.adapter.sessionOwner('sid-ghost')
    const deadline = Date.now() + 5000
    while (answer === 'unknown' && Date.now() < deadline) {
      await sleep(50)
      answer = await a!.adapter.sessionOwner('sid-ghost')
    }
    expect(answer).toEqual({ node: 'ghost-node', url: 'http://127.0.0.1:1' })
    expect(asked()).toBe(2)
  })

  it('looks up the sessions of a node that left with one round trip each, as before: no heartbeat for each', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = (await cluster.start(3)) as [FakeNode, FakeNode, FakeNode]
    const record = (sid: string) =>
      `${cluster.prefix}:session:${createHash('sha256').update(sid).digest('base64url')}`
    await a.redis.set(record('sid-of-lapsed'), b.adapter.node)
    await a.redis.set(record('sid-of-left'), c.adapter.node)
    // A node that closed long ago (no address record left), its owner record outliving it.
    await a.redis.set(record('sid-of-ghost'), 'ghost-node')
    const live = await a.adapter.sessionOwner('sid-of-lapsed')
    expect(live).toMatchObject({ node: b.adapter.node })
    // b writes no heartbeat any more (it may be alive: its sessions are still sent there); c closes.
    const beats = lapse(b)
    await a.redis.del(`${cluster.prefix}:node:${b.adapter.node}`)
    await cluster.stop(c)
    await until(() => a.adapter.liveNodes.length === 0, 3000, 'b and c out of a’s live set')
    // The ghost's missing address record is looked up once, and remembered (see the test above).
    expect(await a.adapter.sessionOwner('sid-of-ghost')).toBe('unknown')
    const from = a.commands.length
    for (let i = 0; i < 10; i++) {
      expect(await a.adapter.sessionOwner('sid-of-lapsed')).toEqual(live)
      expect(await a.adapter.sessionOwner('sid-of-left')).toBe('unknown')
      expect(await a.adapter.sessionOwner('sid-of-ghost')).toBe('unknown')
    }
    const sent = a.commands.slice(from)
    // Two GETs each, sent together: the record and the route parameters beside it.
    expect(sent.filter((args) => !isHeartbeat(args)).map(([command]) => command)).toEqual(
      Array(60).fill('GET'),
    )
    // a's own heartbeat may fall within the lookups (one every 300 ms), not one for each.
    expect(sent.filter(isHeartbeat).length).toBeLessThan(3)
    beats.release()
  })

  it('asks an old node whose heartbeat lapsed for its seal: it may be alive, and what it sent after the snapshot is not lost', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-lapsed-old', 's1')
    expect(await handOff(a!, socket, 'sid-lapsed-old')).toBe(true)
    a!.adapter.appendHandOff('sid-lapsed-old', 'sent after the snapshot')
    a!.sockets.last = () => ['its last packet']
    // a is alive and draining, but writes no heartbeat (a stalled process, a Redis slow to answer
    // its connection): its record lapses, and b drops it from the live set.
    const beats = lapse(a!)
    await b!.redis.del(`${cluster.prefix}:node:${a!.adapter.node}`)
    await until(() => !b!.adapter.liveNodes.includes(a!.adapter.node), 3000, 'a out of b’s live set')

    const waits = watchSealWaits('never')
    const taken = takeOver(b!, await b!.adapter.claimSession('sid-lapsed-old'))
    // a hears the claim, ends the session there, and seals the tail after its last packets: the
    // wait for the seal ends with it (never by its bound here).
    const result = await within(taken.done, 5000, 'the takeover')
    waits.stop()
    expect(result).toEqual({
      tail: ['sent after the snapshot', 'its last packet'],
      complete: true,
      late: false,
    })
    expect(a!.sockets.claims).toEqual(['sid-lapsed-old'])
    expect(waits).toMatchObject({ began: 1, ranOut: 0 })
    beats.release()
  })

  it('waits for the seal of an old node whose heartbeat lapses meanwhile, and ends the wait when it says it left', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-slow-seal', 's1')
    expect(await handOff(a!, socket, 'sid-slow-seal')).toBe(true)
    // a's seal is held on its way (as by a Redis slow to answer a's connection), and so is its
    // heartbeat behind it: its record lapses while b waits.
    const held = new HeldInOrder(a!.redis, isSeal, () => true)
    a!.hold = held.hold
    const waits = watchSealWaits('never')
    const taken = takeOver(b!, await b!.adapter.claimSession('sid-slow-seal'))
    await until(() => held.held.length > 0, 3000, 'a’s seal on its way')
    await b!.redis.del(`${cluster.prefix}:node:${a!.adapter.node}`)
    await until(() => !b!.adapter.liveNodes.includes(a!.adapter.node), 3000, 'a out of b’s live set')
    // A lapsed record does not end the wait: a is alive, and its seal comes.
    expect(await beforeAnyIo(taken.done)).toBe('waited')
    await sleep(2 * HEARTBEAT)
    expect(await beforeAnyIo(taken.done)).toBe('waited')
    await held.runAll()
    expect(await within(taken.done, 5000, 'the takeover')).toEqual({ tail: [], complete: true, late: false })
    expect(waits).toMatchObject({ began: 1, ranOut: 0 })

    // A node that says it left (it removed its record, after everything it sent): nothing more
    // comes from it, and the wait ends at once.
    const second = await open(a!, 'sid-says-left', 's2')
    expect(await handOff(a!, second, 'sid-says-left')).toBe(true)
    const sealHeld = new HeldInOrder(a!.redis, isSeal, () => true)
    a!.hold = sealHeld.hold
    const leaves = takeOver(b!, await b!.adapter.claimSession('sid-says-left'))
    await until(() => sealHeld.held.length > 0, 3000, 'a’s seal on its way')
    expect(await beforeAnyIo(leaves.done)).toBe('waited')
    await b!.redis.publish(`${cluster.prefix}:membership`, JSON.stringify({ n: a!.adapter.node, k: 'left' }))
    expect(await within(leaves.done, 5000, 'the takeover to end with a saying it left')).toEqual({
      tail: [],
      complete: false,
      late: false,
    })
    waits.stop()
    expect(waits).toMatchObject({ began: 2, ranOut: 0 })
    await sealHeld.runAll()
  })

  it('gives the claim back within its bounds when Redis stops answering after the claim, the old node gone from the live set', async () => {
    const own = await startRedis()
    const frozen = new FakeCluster(own.url, { requestTimeout: 200 })
    try {
      const [a, b] = await frozen.start(2)
      const socket = await open(a!, 'sid-frozen', 's1')
      expect(await handOff(a!, socket, 'sid-frozen')).toBe(true)
      await frozen.stop(a!)
      await until(() => b!.adapter.liveNodes.length === 0, 3000, 'a leaves the live set')
      const claim = await b!.adapter.claimSession('sid-frozen')
      // Connected, answering nothing: whether a is live cannot be read back from Redis now.
      own.freeze()
      const taken = takeOver(b!, claim!)
      const outcome = await Promise.race([taken.done, sleep(2000).then(() => 'late' as const)])
      // No marker ran in time, so there is no cut to join at: the claim is given back, and the
      // client tries again.
      expect(outcome).toEqual({ tail: [], complete: false, late: false, retry: true })
      expect(taken.joins()).toBe(0)
    } finally {
      own.thaw()
      await frozen.close()
      await own.stop()
    }
  })

  it('withdraws nothing of a snapshot it never wrote: the owner records stay as they were', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    // A live session of a's, never handed off (the server withdraws after a handOff that
    // rejected, which may or may not have written).
    await open(a!, 'sid-live', 's1')
    await a!.adapter.withdrawHandOff('sid-live')
    expect(await b!.adapter.sessionOwner('sid-live')).toEqual({
      node: a!.adapter.node,
      url: 'http://127.0.0.1:1',
    })
    // A handoff refused (the record names b): nothing written, nothing taken from b.
    const socket = await open(a!, 'sid-b', 's2')
    await b!.adapter.sessionOpened('sid-b')
    expect(await handOff(a!, socket, 'sid-b')).toBe(false)
    await a!.adapter.withdrawHandOff('sid-b')
    expect(await c!.adapter.sessionOwner('sid-b')).toEqual({
      node: b!.adapter.node,
      url: 'http://127.0.0.1:1',
    })
    expect(await b!.adapter.claimSession('sid-live')).toEqual(owned(a!))
    // Named by its own record, the claiming node is no other live node: a record left behind.
    expect(await b!.adapter.claimSession('sid-b')).toEqual({ ...owned(b!), live: false })
  })

  it('returns false within requestTimeout, sending nothing, while Redis stays unreachable, and false within requestTimeout when it is slow (nothing claimable after)', async () => {
    const own = await startRedis()
    // Node records that outlive the pause below by far. With the tests' 300 ms heartbeats they
    // last 900 ms, which the pause and a heartbeat late on a loaded machine use up: a's record
    // would lapse, and b read a out of the live set.
    const slow = new FakeCluster(own.url, { heartbeatInterval: 2000 })
    try {
      // The bound under test is a's; b's lookups must get Redis' answer.
      const a = await slow.node(undefined, { requestTimeout: 200 })
      const b = await slow.node()
      await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
      const socket = await open(a, 'sid-slow', 's1')
      // When Redis answered the write: 'false within requestTimeout' means before that, by a's
      // own bound, whatever a loaded machine's clock says (a wall-clock bound failed under load).
      let writeAnswered = false
      // Redis runs a's commands late: held until a gave up (a CLIENT PAUSE of 600 ms could end
      // before a loaded process sent the write, which Redis then answered in time).
      const late = holdAll(a, (args) => {
        if (args[1]?.includes("'snapshot', ARGV[2]") === true) writeAnswered = true
      })
      expect(await handOff(a, socket, 'sid-slow')).toBe(false)
      expect(writeAnswered, 'handOff waited for Redis').toBe(false)
      // a sends the write's UNDO once the server's word on the session did not come within
      // requestTimeout either; a PING behind the write and its UNDO on the same connection is
      // answered once both ran.
      await until(() => a.commands.some(isUndo), 3000, 'the UNDO of the write given up on')
      late.release()
      await a.redis.sendCommand(['PING'])
      // The write went through once Redis woke up, and was taken back.
      expect(await b.adapter.claimSession('sid-slow')).toEqual(owned(a))
      expect(await b.adapter.sessionOwner('sid-slow')).toMatchObject({ node: a.adapter.node })
      expect((await b.adapter.sessionOwner('sid-slow')) as object).not.toHaveProperty('handingOff')

      await own.stop()
      await until(() => !a.redis.isReady && !b.redis.isReady, 5000, 'a and b see Redis gone')
      const other = await open(a, 'sid-away', 's2')
      // Waited for Redis at most requestTimeout (see the next test), without a command to it.
      const sent = a.commands.length + b.commands.length
      expect(await within(handOff(a, other, 'sid-away'), 3000, 'the handoff given up')).toBe(false)
      // b cannot ask Redis either: its client is told to try again (at once), not that the
      // session is gone.
      expect(await beforeAnyIo(b.adapter.claimSession('sid-away'))).toBe('retry')
      expect(a.commands.length + b.commands.length).toBe(sent)
      // Appends to nothing never throw.
      a.adapter.appendHandOff('sid-away', 'text')
      await a.adapter.sealHandOff('sid-away', [])
    } finally {
      await slow.close()
      await own.stop()
    }
  })

  it('waits for a Redis that is away a moment, at most requestTimeout, and hands the session off once it is back', async () => {
    cluster = new FakeCluster(redis.url)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      // a reaches Redis through a link that goes down a moment (a failover, a reconnect).
      const a = await behind(proxy, cluster, b!)
      const socket = await open(a, 'sid-blip', 's1')
      await cutOff(a, proxy)
      const stored = handOff(a, socket, 'sid-blip')
      proxy.offline = false
      expect(await within(stored, 8000, 'the handoff')).toBe(true)
      won(await b!.adapter.claimSession('sid-blip'))
    } finally {
      await proxy.close()
    }
  })

  it('writes nothing once the server gave up on a handoff that waited for Redis: the session went on there', async () => {
    cluster = new FakeCluster(redis.url)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await behind(proxy, cluster, b!)
      const socket = await open(a, 'sid-given-up', 's1')
      await cutOff(a, proxy)
      const stored = handOff(a, socket, 'sid-given-up')
      // The server's handoff.timeout ran out first: a move thaws the session, which goes on here.
      await a.adapter.withdrawHandOff('sid-given-up')
      proxy.offline = false
      expect(await within(stored, 8000, 'the handoff')).toBe(false)
      expect(await b!.adapter.claimSession('sid-given-up')).toEqual(owned(a))
    } finally {
      await proxy.close()
    }
  })

  it('waits for Redis with one timer however many handoffs wait at once, and hands them all off once it is back', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await behind(proxy, cluster, b!)
      // A close's batch (handoff.batchSize, 500 by default) of sessions, stored while Redis is away.
      const sids = Array.from({ length: 500 }, (_, i) => `sid-batch-${i}`)
      const sockets = await Promise.all(sids.map((sid, i) => open(a, sid, `s${i}`)))
      await cutOff(a, proxy)
      // The timers started to look for Redis again: each handOff waits from its call on, before
      // any I/O, so the waits of all 500 have begun once the loop below has run.
      const looks = (spy: { mock: { calls: unknown[][] } }) =>
        spy.mock.calls.filter(([, ms]) => ms === LOOK_AGAIN_MS).length
      const timeouts = vi.spyOn(globalThis, 'setTimeout')
      const intervals = vi.spyOn(globalThis, 'setInterval')
      const stored = sids.map((sid, i) => handOff(a, sockets[i]!, sid))
      expect(looks(timeouts) + looks(intervals)).toBe(1)
      timeouts.mockRestore()
      intervals.mockRestore()
      proxy.offline = false
      const answers = await within(Promise.all(stored), 8000, 'the handoffs')
      expect(answers.filter((answer) => answer !== true)).toEqual([])
      won(await b!.adapter.claimSession(sids[0]!))
      won(await b!.adapter.claimSession(sids[499]!))
    } finally {
      await proxy.close()
    }
  })

  it('stops waiting for Redis when it closes: a handoff still waiting for it resolves false then, not after requestTimeout', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`, { requestTimeout: 60_000 })
      await until(() => b!.adapter.liveNodes.includes(a.adapter.node), 3000, 'a live')
      const socket = await open(a, 'sid-closing', 's-closing')
      await cutOff(a, proxy)
      const stored = handOff(a, socket, 'sid-closing')
      await within(a.adapter.close(), 8000, 'the close')
      // The wait, and its look for Redis every LOOK_AGAIN_MS, went on after the close, up to
      // requestTimeout: a minute here.
      expect(await within(stored, 5000, 'the handoff that waited for Redis, once the adapter closed')).toBe(
        false,
      )
    } finally {
      await proxy.close()
    }
  })

  it('tells a resume to try again while Redis is refilled after it restarted empty, and not after', async () => {
    const own = await startRedis()
    const restarted = new FakeCluster(own.url)
    try {
      const [a, b] = await restarted.start(2)
      await open(a!, 'sid-lost', 's1')
      // Nothing is refilled in a cluster that starts: a session never seen is gone at once.
      expect(await b!.adapter.claimSession('sid-never'), 'at the start').toBeNull()

      await own.stop()
      // a writes its records again only at its next beat, held back until the test lets it; and
      // the records that beat writes again are held until b's claim is answered, which would
      // otherwise race them (and find the session a's again, under load). Each with what a sends
      // after it, as on one connection.
      const beat = new HeldInOrder(
        a!.redis,
        (args) => args[0] === 'EVAL' && args[3] === `${restarted.prefix}:nodes`,
        () => true,
      )
      const rewrites = new HeldInOrder(
        a!.redis,
        (args) => args[0] === 'SET' && args[1]?.startsWith(`${restarted.prefix}:session:`) === true,
        () => true,
      )
      a!.hold = (args) => beat.hold(args) ?? rewrites.hold(args)
      await own.restart()
      await until(() => b!.redis.isReady, 5000, 'b reconnects')
      // Before any beat, or once b's beat found its own record gone: the owner record of
      // sid-lost may come back, so its client tries again rather than start over.
      expect(await b!.adapter.sessionOwner('sid-lost')).toBe('unknown')
      expect(await b!.adapter.claimSession('sid-lost')).toBe('retry')
      await until(() => beat.held.length > 0, 5000, 'a beats again')
      await within(beat.runAll(), 5000, "a's beat answered")
      // a found its record gone too, and writes those of its sessions again.
      expect(await b!.adapter.claimSession('sid-lost')).toBe('retry')
      await within(rewrites.runAll(), 5000, "a's records written again")
      a!.hold = undefined
      for (let tries = 0; (await b!.adapter.sessionOwner('sid-lost')) === 'unknown'; tries++) {
        if (tries > 100) throw new Error('a did not write its owner record again')
        await sleep(20)
      }
      expect(await b!.adapter.sessionOwner('sid-lost')).toMatchObject({ node: a!.adapter.node })
      // One record lifetime after the last node found its record gone: gone means gone.
      await sleep(HEARTBEAT * 4)
      expect(await b!.adapter.claimSession('sid-never')).toBeNull()
    } finally {
      await restarted.close()
      await own.stop()
    }
  })

  it('takes back a claim given up on that Redis runs late: another node claims the session and takes it over whole', async () => {
    const own = await startRedis()
    const slow = new FakeCluster(own.url, { requestTimeout: 200 })
    try {
      const [a, b, c] = await slow.start(3)
      const socket = await open(a!, 'sid-late-claim', 's1')
      expect(await handOff(a!, socket, 'sid-late-claim')).toBe(true)
      // When Redis answered b's claim: 'given up after requestTimeout' means before that, by b's
      // own bound, whatever a loaded machine's clock says (a wall-clock bound measured the load).
      let claimAnswered = false
      // Redis runs b's commands late: held until b gave up (a CLIENT PAUSE of 600 ms could end
      // before a loaded process sent the claim, which Redis then answered in time).
      const late = holdAll(b!, (args) => {
        if (args[1]?.includes("'HINCRBY', KEYS[1], 'epoch'") === true) claimAnswered = true
      })
      // Given up after requestTimeout: b's client is told to try again.
      expect(await b!.adapter.claimSession('sid-late-claim')).toBe('retry')
      expect(claimAnswered, 'claimSession waited for Redis').toBe(false)
      // Its UNCLAIM went as b gave up, right behind the claim on the same connection: a PING
      // behind both is answered once both ran.
      late.release()
      await b!.redis.sendCommand(['PING'])
      // The claim ran once Redis woke up, and was taken back right behind it: the session is a's
      // handoff still, not b's, and c's claim wins it, with the epoch a seals for.
      expect(await c!.adapter.sessionOwner('sid-late-claim')).toMatchObject({
        node: a!.adapter.node,
        handingOff: true,
      })
      const claim = await c!.adapter.claimSession('sid-late-claim')
      expect(claim).not.toBeNull()
      a!.adapter.appendHandOff('sid-late-claim', '[5,13,"news",[1],0]')
      // a seals for c's epoch: c's wait for the seal (made endless here) ends with it.
      const waits = watchSealWaits('never')
      const sealed = within(takeOver(c!, claim!).done, 5000, "the takeover to end with a's seal")
      expect(await sealed).toMatchObject({ complete: true, late: false })
      waits.stop()
      expect(waits).toMatchObject({ began: 1, ranOut: 0 })
    } finally {
      await slow.close()
      await own.stop()
    }
  })

  it('takes back a claim whose connection dropped after Redis ran it: the next try wins the session, whole', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [a, c] = await cluster.start(2)
    const proxy = await startTcpProxy(redis.port)
    try {
      // b reaches Redis through the proxy, which can cut its connection at a given answer.
      const b = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
      const socket = await open(a!, 'sid-dropped', 's1')
      expect(await handOff(a!, socket, 'sid-dropped')).toBe(true)
      // The claim runs in Redis; its answer, the snapshot, is lost with b's connection.
      const cut = proxy.cutAt('"sid":"sid-dropped"')
      expect(await b.adapter.claimSession('sid-dropped')).toBe('retry')
      await cut
      // Not connected yet (node-redis reconnects on its own): the claim cannot be taken back
      // now, and a try meanwhile is told to come again, not that the session is gone; so is a
      // try of any session, which Redis cannot be asked about either.
      expect(b.redis.isReady).toBe(false)
      expect(await b.adapter.claimSession('sid-dropped')).toBe('retry')
      expect(await b.adapter.claimSession('sid-never-claimed')).toBe('retry')

      await until(() => b.redis.isReady, 5000, 'b reconnects')
      expect(await b.adapter.claimSession('sid-never-claimed')).toBeNull()
      // The next try: the claim is taken back first, on the same connection, and won again,
      // at the epoch the old node seals for.
      const claim = await b.adapter.claimSession('sid-dropped')
      expect(claim).not.toBeNull()
      expect(claim).not.toBe('retry')
      a!.adapter.appendHandOff('sid-dropped', '[5,13,"news",[1],0]')
      const taken = takeOver(b, claim)
      expect(await taken.done).toEqual({ tail: ['[5,13,"news",[1],0]'], complete: true, late: false })
      expect(a!.sockets.claims).toEqual(['sid-dropped'])
      expect(await c!.adapter.sessionOwner('sid-dropped')).toMatchObject({ node: b.adapter.node })
      // Claimed once: nobody else can.
      expect(await c!.adapter.claimSession('sid-dropped')).toEqual(owned(b))
    } finally {
      await proxy.close()
    }
  })

  it('refuses a claim given up on that Redis runs only after its UNCLAIM: the session stays claimable, whole', async () => {
    cluster = new FakeCluster(redis.url, { requestTimeout: 200 })
    const [a, b, c] = await cluster.start(3)
    const socket = await open(a!, 'sid-overtaken', 's1')
    expect(await handOff(a!, socket, 'sid-overtaken')).toBe(true)
    // b's link stalls from its claim (the script that bumps the epoch) on: given up, then its
    // UNCLAIM goes behind it, on the same connection, and waits with it.
    const claim = new HeldOnDroppedLink(
      b!,
      (args) => args[1]?.includes("HINCRBY', KEYS[1], 'epoch', 1)") === true,
    )
    expect(await b!.adapter.claimSession('sid-overtaken')).toBe('retry')
    await until(() => claim.held.length > 1, 3000, 'the UNCLAIM behind the claim')
    // The connection drops: the UNCLAIM goes again, first on the next one, and runs.
    await dropConnection(b!)
    await eventually(
      async () => (await c!.redis.keys(`${cluster.prefix}:handoff:*:given-up:*`)).length === 1,
      3000,
      'the UNCLAIM run',
    )
    // The dead connection's bytes reach Redis only now: the claim runs after its UNCLAIM.
    expect(await claim.run()).toBeNull()
    expect(await c!.adapter.sessionOwner('sid-overtaken')).toMatchObject({
      node: a!.adapter.node,
      handingOff: true,
    })
    // The marker that refused it expires, no sooner than UNCLAIM_KEEP_MS.
    const [marker, ...more] = await c!.redis.keys(`${cluster.prefix}:handoff:*:given-up:*`)
    expect(more).toEqual([])
    const life = await c!.redis.pTTL(marker!)
    expect(life).toBeGreaterThan(UNCLAIM_KEEP_MS - 10_000)
    expect(life).toBeLessThanOrEqual(UNCLAIM_KEEP_MS)
    // Another node claims the session at the epoch the old node seals for.
    const taken = takeOver(c!, await c!.adapter.claimSession('sid-overtaken'))
    expect(await taken.done).toEqual({ tail: [], complete: true, late: false })
    expect(a!.sockets.claims).toEqual(['sid-overtaken'])
    expect(await b!.adapter.sessionOwner('sid-overtaken')).toMatchObject({ node: c!.adapter.node })
  })

  it('leaves a claim to its claimer when that node’s heartbeat lapses, and tells the client to try again until it says it left', async () => {
    cluster = new FakeCluster(redis.url, { requestTimeout: 200 })
    const [a, c] = await cluster.start(2)
    const proxy = await startTcpProxy(redis.port)
    try {
      // b reaches Redis through a link that can go half-open.
      const b = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
      await until(() => c!.adapter.liveNodes.includes(b.adapter.node), 3000, 'b live')
      const socket = await open(a!, 'sid-lapsed', 's1')
      expect(await handOff(a!, socket, 'sid-lapsed')).toBe(true)
      const claim = await b.adapter.claimSession('sid-lapsed')
      proxy.freeze()
      // Its record expires as a crashed node's would (three heartbeats).
      await until(() => !c!.adapter.liveNodes.includes(b.adapter.node), 5000, 'b leaves the live set')
      // Another node neither takes the claim over nor gives the client a new session: told to
      // try again, the client keeps its session, which b takes over.
      expect(await c!.adapter.claimSession('sid-lapsed')).toBe('elsewhere')
      // b is alive: its takeover, within its bounds, sends no marker without Redis, so it has no
      // cut: it gives the claim back (the client tries again) and joins nothing.
      const taken = takeOver(b, claim)
      expect(await taken.done).toEqual({ tail: [], complete: false, late: false, retry: true })
      expect(taken.joins()).toBe(0)
      // Its take-back never reached Redis: the claim stands there, and still tells a try to come
      // again, as long as b may be alive...
      expect(await c!.adapter.claimSession('sid-lapsed')).toBe('elsewhere')
      // ...and no longer once b said that it left (as its close says it): the session went with it.
      await a!.redis.publish(`${cluster.prefix}:membership`, JSON.stringify({ n: b.adapter.node, k: 'left' }))
      let answer: ClaimAnswer = 'elsewhere'
      const deadline = Date.now() + 3000
      while (answer === 'elsewhere' && Date.now() < deadline) {
        answer = await c!.adapter.claimSession('sid-lapsed')
        if (answer === 'elsewhere') await sleep(20)
      }
      expect(answer).toEqual({ missed: 'lost' })
    } finally {
      await proxy.close()
    }
  })

  it('takes back a claim whose connection dropped for a claim of another node: that one wins once it went through', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [a, c] = await cluster.start(2)
    const proxy = await startTcpProxy(redis.port)
    try {
      const b = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
      const socket = await open(a!, 'sid-elsewhere', 's1')
      expect(await handOff(a!, socket, 'sid-elsewhere')).toBe(true)
      const cut = proxy.cutAt('"sid":"sid-elsewhere"')
      expect(await b.adapter.claimSession('sid-elsewhere')).toBe('retry')
      await cut
      // The client tries another node: it wins once b, connected again, took its claim back
      // (at its next command, a heartbeat at the latest), never while b's claim stands (b is
      // live: the client is told to try again meanwhile).
      let claim: ClaimAnswer = null
      const deadline = Date.now() + 5000
      while ((claim === null || claim === 'retry' || claim === 'elsewhere') && Date.now() < deadline) {
        claim = await c!.adapter.claimSession('sid-elsewhere')
        if (claim === null || claim === 'retry' || claim === 'elsewhere') await sleep(20)
      }
      expect(typeof claim === 'object' && claim !== null).toBe(true)
      expect(b.warnings).toContain(
        '@parley/redis: a claim got no answer from Redis; it is taken back once Redis answers, and the client tries again',
      )
      const taken = takeOver(c!, claim)
      expect(await taken.done).toEqual({ tail: [], complete: true, late: false })
      expect(await b.adapter.claimSession('sid-elsewhere')).toEqual(owned(c!))
    } finally {
      await proxy.close()
    }
  })

  it('takes back a handoff write whose connection dropped once it was sent: the session stays its node’s, nothing to claim', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      // a reaches Redis through the proxy, which cuts a's side once the write is on its way;
      // Redis runs it, and its answer is lost.
      const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
      const socket = await open(a, 'sid-write-cut', 's1')
      const cut = proxy.cutAfter('"sid":"sid-write-cut"')
      expect(await handOff(a, socket, 'sid-write-cut')).toBe(false)
      // Its server keeps the session (a move thaws it) and says so, as the real one does at
      // once: without that word the take-back waits requestTimeout (5 s) for it.
      await a.adapter.withdrawHandOff('sid-write-cut')
      await cut
      // Taken back once a's connection is back, before its next command goes.
      let owner = await b!.adapter.sessionOwner('sid-write-cut')
      const deadline = Date.now() + 5000
      while ((typeof owner !== 'object' || owner.handingOff) && Date.now() < deadline) {
        await sleep(20)
        owner = await b!.adapter.sessionOwner('sid-write-cut')
      }
      expect(owner).toEqual({ node: a.adapter.node, url: 'http://127.0.0.1:1' })
      expect(await b!.adapter.claimSession('sid-write-cut')).toEqual(owned(a))
      expect(await b!.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
    } finally {
      await proxy.close()
    }
  })

  /**
   * Node b, and node a, live, reaching Redis through a proxy; `sid`'s snapshot is stored from a,
   * then its session ends there while a is cut off from Redis (see `endWhileCutOff`), and b
   * claims it. The proxy is closed after `run`.
   */
  async function endedWhileCutOffThenClaimed(
    sid: string,
    run: (nodes: { a: FakeNode; b: FakeNode; proxy: TcpProxy; claim: SessionClaim }) => Promise<void>,
  ) {
    cluster = new FakeCluster(redis.url)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
      await until(() => b!.adapter.liveNodes.includes(a.adapter.node), 3000, 'a live')
      await endWhileCutOff(a, proxy, sid, 's1')
      await run({ a, b: b!, proxy, claim: won(await b!.adapter.claimSession(sid)) })
      expect(await b!.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
    } finally {
      await proxy.close()
    }
  }

  it('withdraws a stored snapshot once Redis is back when its session ended meanwhile: a claim that won reads it ended', async () => {
    // b's claim finds the snapshot still there.
    await endedWhileCutOffThenClaimed('sid-withdraw-away', async ({ a, b, proxy, claim }) => {
      // a's seal cannot come (its subscriber missed b's marker): b's wait runs out once a's
      // withdraw is in Redis, rather than after SEAL_WAIT_MS.
      const waits = watchSealWaits('by hand')
      const { done } = takeOver(b, claim)
      proxy.offline = false
      // a's withdraw goes first once a is back, and marks the claimed handoff ended.
      const hash = `${cluster.prefix}:handoff:${createHash('sha256').update('sid-withdraw-away').digest('base64url')}`
      await expect.poll(() => b.redis.hGet(hash, 'ended'), { timeout: 5000 }).toBe('1')
      waits.runOut()
      expect(await done).toMatchObject({ ended: true })
      waits.stop()
      expect(a.warnings).toContain(
        '@parley/redis: could not withdraw the snapshot of a session that ended yet; it is withdrawn once Redis answers, another node may resume it until then',
      )
    })
  })

  it('forgets the place of handed-off sockets whose sessions end after a claim whose marker never comes', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const sids = Array.from({ length: 20 }, (_, i) => `sid-claimer-died-${i}`)
    for (const [i, sid] of sids.entries()) {
      expect(await handOff(a!, await open(a!, sid, `s${i}`), sid)).toBe(true)
      // b wins the claim and dies before it publishes its marker: a never hears of it.
      won(await b!.adapter.claimSession(sid))
    }
    expect(a!.adapter.handingOver).toBe(sids.length)
    for (const sid of sids) {
      a!.sockets.sessions.delete(sid)
      await a!.adapter.withdrawHandOff(sid)
    }
    // Each withdraw marked its claimed handoff ended; none of the sockets is positioned any more.
    expect(a!.adapter.handingOver).toBe(0)
  })

  it('forgets the place of a handed-off socket whose session ends while its withdraw waits for Redis', async () => {
    await endedWhileCutOff({}, 'sid-withdraw-later', async ({ a, proxy }) => {
      expect(a.warnings).toContain(
        '@parley/redis: could not withdraw the snapshot of a session that ended yet; it is withdrawn once Redis answers, another node may resume it until then',
      )
      expect(a.adapter.handingOver).toBe(0)
      proxy.offline = false
    })
  })

  /**
   * Node b, and node a reaching Redis through a proxy, on a cluster with `options`; `sid`'s
   * session ends at a while a is cut off (see `endWhileCutOff`). The proxy is closed after `run`.
   */
  async function endedWhileCutOff(
    options: { requestTimeout?: number; heartbeatInterval?: number },
    sid: string,
    run: (nodes: { a: FakeNode; b: FakeNode; proxy: TcpProxy }) => Promise<void>,
  ) {
    cluster = new FakeCluster(redis.url, options)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
      await endWhileCutOff(a, proxy, sid, 's1')
      await run({ a, b: b!, proxy })
    } finally {
      await proxy.close()
    }
  }

  it('sends a withdraw kept for Redis as soon as the connection is back, with no other command to go before', async () => {
    // Beats a minute apart: nothing else of a's would carry the withdraw to Redis meanwhile.
    await endedWhileCutOff({ heartbeatInterval: 60_000 }, 'sid-withdraw-ready', async ({ a, b, proxy }) => {
      const sent = a.commands.length
      proxy.offline = false
      await until(() => a.redis.isReady, 5000, 'a reaches Redis again')
      await expect.poll(() => b.redis.keys(`${cluster.prefix}:handoff:*`), { timeout: 2000 }).toEqual([])
      expect(await b.adapter.claimSession('sid-withdraw-ready')).toBeNull()
      // The withdraw went by itself, first.
      expect(a.commands[sent]?.[1]).toContain("HSET', KEYS[1], 'ended'")
      // The client is the application's: the adapter stops listening to it when it closes.
      const listening = a.redis.listenerCount('ready')
      await a.adapter.close()
      expect(a.redis.listenerCount('ready')).toBe(listening - 1)
    })
  })

  it('counts a write as stored when a claim of it comes before its answer: the old node does not keep the session', async () => {
    cluster = new FakeCluster(redis.url, { requestTimeout: 1000 })
    const [a, b] = await cluster.start(2)
    const sid = 'sid-claimed-early'
    const socket = await open(a!, sid, 's1')
    // Redis runs a's write at once, and what a sends after it; their answers are held, in
    // order, as on one connection, past a's requestTimeout.
    const held = new HeldInOrder(
      a!.redis,
      (args) => args[1]?.includes("'snapshot', ARGV[2]") === true,
      () => true,
    )
    held.sendAll()
    a!.hold = held.hold
    const storing = handOff(a!, socket, sid)
    // The client resumed at b meanwhile: b claims the snapshot, and its marker reaches a first.
    let claim: ClaimAnswer = null
    while (claim === null) claim = await b!.adapter.claimSession(sid)
    const { done } = takeOver(b!, claim)
    await until(() => a!.sockets.claims.includes(sid), 3000, 'the marker at a')
    const stored = await storing
    await within(held.runAll(), 5000, "the answers to a's write and what followed it")
    // b took the session over; a, told its write landed, ends its copy instead of keeping it.
    expect(await done).toMatchObject({ complete: true })
    expect((await done).ended).toBeFalsy()
    expect(stored).toBe(true)
  })

  it('waits at close, a bounded time, for a withdraw that could not reach Redis yet', async () => {
    await endedWhileCutOff({ requestTimeout: 2000 }, 'sid-withdraw-close', async ({ a, b, proxy }) => {
      // The session ended at a while it could not reach Redis, and a closes (its drain is over).
      const closing = cluster.stop(a)
      await sleep(200)
      proxy.offline = false
      await closing
      // The withdraw went before a closed: nothing of the session is left to claim.
      expect(await b.adapter.claimSession('sid-withdraw-close')).toBeNull()

      // Redis never back: the close still ends, within requestTimeout, and says what it left
      // (c's own, shorter: the close waits it out whole).
      const c = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`, { requestTimeout: 1000 })
      await endWhileCutOff(c, proxy, 'sid-withdraw-never', 's2')
      await cluster.stop(c)
      expect(
        c.warnings.some((w) => w.includes('1 step(s) taking back a handoff could not reach Redis')),
      ).toBe(true)
    })
  })

  it('leaves a later handoff of the session alone when a withdraw runs late', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const sid = 'sid-withdraw-late'
    const first = await open(a!, sid, 's1')
    expect(await handOff(a!, first, sid)).toBe(true)
    a!.sockets.sessions.delete(sid)
    await a!.adapter.withdrawHandOff(sid)
    const withdraw = a!.commands.find((args) => args[1]?.includes("HSET', KEYS[1], 'ended'") === true)
    // The session is back at a (claimed back, say) and handed off again.
    const again = await open(a!, sid, 's1')
    expect(await handOff(a!, again, sid)).toBe(true)
    // A copy of the first withdraw that a dropped connection still held runs only now.
    expect(await a!.redis.sendCommand(withdraw!)).toBe(0)
    expect(won(await b!.adapter.claimSession(sid)).snapshot.sid).toBe(sid)
  })

  it('refuses a handoff write given up on that Redis runs only after its undo: the session stays its node’s', async () => {
    cluster = new FakeCluster(redis.url, { requestTimeout: 200 })
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-write-late', 's1')
    // a's link stalls from its write (the script that stores the snapshot) on: given up.
    const write = new HeldOnDroppedLink(a!, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true)
    expect(await handOff(a!, socket, 'sid-write-late')).toBe(false)
    // Its server keeps the session (a move thaws it), and says so: the undo goes behind the write.
    const withdrawn = a!.adapter.withdrawHandOff('sid-write-late')
    await until(() => write.held.some(isUndo), 3000, 'the undo behind the write')
    // The connection drops: the undo goes again, first on the next one, and is answered.
    await dropConnection(a!)
    await within(withdrawn, 5000, 'the undo answered')
    // The dead connection's bytes reach Redis only now: the write runs after its undo.
    expect(await write.run()).toBe(0)
    // The session goes on at a: nothing to claim, and its record names a as before.
    expect(await b!.adapter.claimSession('sid-write-late')).toEqual(owned(a!))
    expect(await b!.adapter.sessionOwner('sid-write-late')).toEqual({
      node: a!.adapter.node,
      url: 'http://127.0.0.1:1',
    })
  })

  it('keeps the take-back of a write given up on past the snapshot’s ttl while Redis is away: run later still, the write refuses itself', async () => {
    cluster = new FakeCluster(redis.url, OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`, { requestTimeout: 300 })
      await until(() => b!.adapter.liveNodes.includes(a.adapter.node), 3000, 'a live')
      const sid = 'sid-write-outlived'
      const socket = await open(a, sid, 's1')
      // a's link stalls from the write on; the write stays where the dropped connection keeps
      // it, for the kernel to deliver later.
      const write = new HeldOnDroppedLink(a, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true)
      const ttl = 200
      const answer = handOff(a, socket, sid, [], ttl)
      // Cut off before the write is given up on: its take-back has to wait for Redis.
      await cutOff(a, proxy)
      expect(await answer).toBe(false)
      // The session goes on at a: its take-back waits for Redis, longer than the snapshot's ttl.
      const undone = a.adapter.withdrawHandOff(sid)
      await sleep(3 * ttl)
      proxy.offline = false
      await within(undone, 5000, 'the take-back answered')
      // Delivered only now, the write finds its take-back and stores nothing.
      expect(await write.run()).toBe(0)
      expect(await b!.adapter.claimSession(sid)).toEqual(owned(a))
      expect(a.warnings.filter((line) => line.includes('gave up taking back'))).toEqual([])
    } finally {
      await proxy.close()
    }
  })

  it('takes back at once a write its server stopped waiting for: run late, it refuses itself, the session kept or ended', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    for (const ended of [false, true]) {
      const sid = `sid-given-up-${ended}`
      const socket = await open(a!, sid, `s-${ended}`)
      // a's link stalls from the write on.
      const write = new HeldOnDroppedLink(a!, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true)
      const answer = handOff(a!, socket, sid)
      // The server stops waiting (its handoff.timeout): the session goes on at a, or ended there.
      if (ended) {
        a!.sockets.sessions.delete(sid)
        a!.adapter.sessionClosed(sid)
      }
      const withdrawn = a!.adapter.withdrawHandOff(sid)
      await until(() => write.held.some(isUndo), 3000, 'the undo behind the write')
      // The connection drops: the write is lost with it, the undo goes again on the next one.
      await dropConnection(a!)
      expect(await within(answer, 5000, 'the handoff answered')).toBe(false)
      await within(withdrawn, 5000, 'the undo answered')
      // Redis runs the write only now, as the dead connection's bytes delivered late: after the undo.
      expect(await write.run()).toBe(0)
      expect(await b!.adapter.claimSession(sid)).toEqual(ended ? null : owned(a!))
      expect(await b!.adapter.sessionOwner(sid)).toEqual(
        ended ? 'unknown' : { node: a!.adapter.node, url: 'http://127.0.0.1:1' },
      )
    }
  })

  it('revokes a claim Redis ran between a write given up on and its undo: the session stays its node’s, the claimer is told', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-revoked', 's1')
    // Redis is slow for a's connection: from the write on, a's handoff steps wait behind it.
    const step = (args: string[]) =>
      args[0] === 'EVAL' && args.some((arg) => arg.startsWith(`${cluster.prefix}:handoff:`))
    const slow = new HeldInOrder(a!.redis, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true, step)
    a!.hold = slow.hold
    const answer = handOff(a!, socket, 'sid-revoked')
    // The server stops waiting for the write: the session goes on at a. Its take-back goes right
    // behind the write; the call resolves once Redis has answered it (the server holds what the
    // client sends meanwhile).
    let takenBack = false
    const withdrawn = a!.adapter.withdrawHandOff('sid-revoked').then(() => {
      takenBack = true
    })
    // The write runs (its answer on its way), and b's claim right after it, before a's next step.
    await slow.runFirst()
    const { done } = takeOver(b!, await b!.adapter.claimSession('sid-revoked'))
    // b's marker reached a, whose seal waits behind its other steps.
    await until(() => slow.held.some((args) => args[1]?.includes('RPUSH') === true), 5000, 'the seal')
    expect(takenBack).toBe(false)
    await slow.runAll()
    await withdrawn
    // Not stored, for all the write ran: a's server keeps the session, nothing to withdraw.
    expect(await answer).toBe(false)
    expect(await done).toMatchObject({ ended: true, kept: true })
    // a's server was never told the session was claimed: it holds it, and owns its record.
    expect(a!.sockets.claims).toEqual([])
    expect(a!.sockets.hasSession('sid-revoked')).toBe(true)
    // b's server drops it (see HandOffTail.kept), and the client's next try is sent to a.
    b!.sockets.sessions.delete('sid-revoked')
    expect(await b!.adapter.sessionOwner('sid-revoked')).toEqual({
      node: a!.adapter.node,
      url: 'http://127.0.0.1:1',
    })
    expect(await b!.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
  })

  it('answers a claim of a session kept by its node, whose claim it revoked, with that node while the claimer has yet to read it', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const sid = 'sid-kept-revoked'
    const socket = await open(a!, sid, 's1')
    const step = (args: string[]) =>
      args[0] === 'EVAL' && args.some((arg) => arg.startsWith(`${cluster.prefix}:handoff:`))
    const slow = new HeldInOrder(a!.redis, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true, step)
    a!.hold = slow.hold
    const answer = handOff(a!, socket, sid)
    // The server stops waiting for the write: the session goes on at a.
    const withdrawn = a!.adapter.withdrawHandOff(sid)
    await slow.runFirst()
    // b's claim runs between the write and its take-back; b has not read the tail back yet (a
    // slow takeover, or b died).
    won(await b!.adapter.claimSession(sid))
    await slow.runAll()
    await withdrawn
    expect(await answer).toBe(false)
    // The handoff stays, marked, for b to read that its claim was revoked: no claim wins it.
    const hash = `${cluster.prefix}:handoff:${createHash('sha256').update(sid).digest('base64url')}`
    expect(await c!.redis.hmGet(hash, ['ended', 'kept'])).toEqual(['1', '1'])
    // A resume elsewhere is sent to a, where the session lives, rather than given a new session.
    expect(await c!.adapter.claimSession(sid)).toEqual(owned(a!))
  })

  /**
   * As above, but a's seal, behind its take-back, comes too late for b, which reads the tail
   * without it: the claim's `confirm`, right before b would answer its client, tells.
   */
  async function claimReadBeforeTakeBack(sid: string) {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, sid, 's1')
    const step = (args: string[]) =>
      args[0] === 'EVAL' && args.some((arg) => arg.startsWith(`${cluster.prefix}:handoff:`))
    const slow = new HeldInOrder(a!.redis, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true, step)
    a!.hold = slow.hold
    const answer = handOff(a!, socket, sid)
    // The server stops waiting for the write: the session goes on at a (the call resolves once
    // the take-back, held behind the write, is answered).
    void a!.adapter.withdrawHandOff(sid)
    await slow.runFirst()
    const claim = won(await b!.adapter.claimSession(sid))
    // a's seal is held until the test runs a's steps: b's wait for it can only run out, and
    // does at once here rather than after SEAL_WAIT_MS.
    const waits = watchSealWaits('at once')
    const tail = await takeOver(b!, claim).done
    waits.stop()
    expect(waits).toMatchObject({ began: 1, ranOut: 1 })
    // b stopped waiting for a's seal (SEAL_WAIT_MS) and read the tail without the revocation.
    expect(tail).toMatchObject({ complete: false })
    expect(tail.ended).toBeUndefined()
    const owner = `${cluster.prefix}:session:${createHash('sha256').update(sid).digest('base64url')}`
    return { a: a!, b: b!, slow, answer, claim, owner }
  }

  it('tells a claimer that read the tail before the take-back of the write it claimed, when it confirms: kept', async () => {
    const { a, b, slow, answer, claim, owner } = await claimReadBeforeTakeBack('sid-read-first')
    // The take-back lands now, before b confirms.
    await slow.runAll()
    expect(await answer).toBe(false)
    // b's commands about the session: its heartbeats (every HEARTBEAT ms) go on meanwhile, and
    // on a loaded machine one may fall within the confirm.
    const aboutSession = () => b.commands.filter((args) => args.includes(owner)).length
    const commands = aboutSession()
    expect(await claim.confirm!()).toBe('kept')
    expect(aboutSession()).toBe(commands + 1)
    // b's server drops its copy; the record names a, where the client's next try finds it.
    expect(await b.redis.get(owner)).toBe(a.adapter.node)
    expect(a.sockets.hasSession('sid-read-first')).toBe(true)
    expect(await b.redis.keys(`${cluster.prefix}:handoff:*`)).toEqual([])
  })

  it('confirms in turn behind a burst on the claimer: a take-back that came first still reads kept', async () => {
    const { a, b, slow, answer, claim, owner } = await claimReadBeforeTakeBack('sid-confirm-burst')
    await slow.runAll()
    expect(await answer).toBe(false)
    const raw = await pauser()
    try {
      await burstOnAdapter(raw, b.adapter, PAUSE_MS)
      const confirming = claim.confirm!()
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      // Refused, it read 'taken': b went on with a copy of the session a kept, two copies.
      expect(await within(confirming, 5000, 'the confirm')).toBe('kept')
      expect(await b.redis.get(owner)).toBe(a.adapter.node)
      expect(b.warnings.filter((line) => line.includes('could not confirm'))).toEqual([])
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it('confirms once Redis takes the claimer’s commands again: a take-back that came first still reads kept', async () => {
    const { a, b, slow, answer, claim, owner } = await claimReadBeforeTakeBack('sid-confirm-away')
    await slow.runAll()
    expect(await answer).toBe(false)
    // b's connection is being made again (its client says it is not ready) as the server confirms.
    b.down = true
    const confirming = claim.confirm!()
    await sleep(100)
    b.down = false
    // Refused at once, it read 'taken' though it was never sent: b went on with a copy of the
    // session a kept, two copies.
    expect(await within(confirming, 5000, 'the confirm')).toBe('kept')
    expect(await b.redis.get(owner)).toBe(a.adapter.node)
    expect(b.warnings.filter((line) => line.includes('could not confirm'))).toEqual([])
  })

  it('confirms late a claim whose confirm was never sent, and ends its copy once that says the old node kept the session', async () => {
    const { a, b, slow, answer, claim, owner } = await claimReadBeforeTakeBack('sid-confirm-late')
    const ended: string[] = []
    b.sockets.takenOver = (sid) => ended.push(sid)
    // Every command of b's held from now on, MAX_QUEUED_COMMANDS waiting their turn: the confirm
    // is refused as busy, never sent.
    const burst = await queueFullOn(b)
    let released = false
    try {
      expect(await within(claim.confirm!(), 5000, 'the confirm')).toBe('taken')
      const late = b.warnings.filter((line) => line.includes('it is confirmed once Redis takes it'))
      expect(late).toHaveLength(1)
      // a's take-back lands meanwhile: the claim is revoked, the session kept at a.
      await slow.runAll()
      expect(await answer).toBe(false)
      expect(ended).toEqual([])
      released = true
      await burst.release()
      // Confirmed once Redis takes it: kept, b's copy ends, and the record names a.
      await until(() => ended.length > 0, 5000, 'b’s copy ended')
      expect(ended).toEqual(['sid-confirm-late'])
      expect(await b.redis.get(owner)).toBe(a.adapter.node)
      expect(
        b.warnings.filter((line) => line.includes('a claim confirmed late found its session kept')),
      ).toHaveLength(1)
    } finally {
      if (!released) await burst.release()
    }
  })

  it('leaves a claim confirmed before the take-back came to its claimer: the record stays its own', async () => {
    const { a, b, slow, answer, claim, owner } = await claimReadBeforeTakeBack('sid-confirmed-first')
    expect(await claim.confirm!()).toBe('taken')
    // The take-back lands only after b answered its client: too late to revoke the claim, and it
    // leaves the record to b. (a still holds its copy: see "When things fail" in the README.)
    await slow.runAll()
    expect(await answer).toBe(false)
    expect(await b.redis.get(owner)).toBe(b.adapter.node)
    expect(a.sockets.hasSession('sid-confirmed-first')).toBe(true)
    // a's operator hears of it.
    await until(
      () =>
        a.warnings.some((w) => w.includes('taken over by another node, before its take-back reached Redis')),
      3000,
      'the warning',
    )
  })

  it('leaves a confirmed claim to its claimer when a node of the version before `taken` takes its write back late', async () => {
    const { b, slow, claim, owner } = await claimReadBeforeTakeBack('sid-old-undo')
    expect(await claim.confirm!()).toBe('taken')
    // a's take-back, held behind its write: a node of that version sends the same, with its
    // script, which is this one, word for word, without what reads `taken`.
    const undo = slow.held.find((args) => args[1]?.includes("'HMGET', KEYS[2], 'write', 'claimed'"))!
    expect(undo.at(-1)).toBe('kept')
    const taken = ", 'taken')\nif state[3] == ARGV[4] then return 3 end\n"
    expect(undo[1]).toContain(taken)
    const before = undo[1]!.replace(taken, ')\n')
    expect(await b.redis.sendCommand(['EVAL', before, ...undo.slice(2)])).toBe(0)
    // The record stays b's, and nothing marks the claim revoked; this version's take-back agrees.
    const hash = owner.replace(':session:', ':handoff:')
    const marks = () => b.redis.sendCommand(['HMGET', hash, 'ended', 'kept'])
    expect(await b.redis.get(owner)).toBe(b.adapter.node)
    expect(await marks()).toEqual([null, null])
    await slow.runAll()
    expect(await b.redis.get(owner)).toBe(b.adapter.node)
    expect(await marks()).toEqual([null, null])
  })

  it('tells a claimer that read the tail before the session ended on its old node, when it confirms: ended', async () => {
    await endedWhileCutOffThenClaimed('sid-ended-after-read', async ({ a, b, proxy, claim }) => {
      // b waits for a's seal in vain (its wait runs out at once here, rather than after
      // SEAL_WAIT_MS) and reads the tail; then a's withdraw goes, before b confirms.
      const waits = watchSealWaits('at once')
      expect(await takeOver(b, claim).done).toMatchObject({ complete: false })
      waits.stop()
      proxy.offline = false
      await until(() => a.redis.isReady, 5000, 'a reaches Redis again')
      // a's next command goes behind the withdraw it kept.
      await a.adapter.sessionOwner('sid-other')
      expect(await claim.confirm!()).toBe('ended')
    })
  })

  it('queues the appends of a drain while Redis does not answer, and writes them in one batch once it does: the tail is whole', async () => {
    const own = await startRedis()
    const stalled = new FakeCluster(own.url, { requestTimeout: 200 })
    try {
      const [a, b] = await stalled.start(2)
      const socket = await open(a!, 'sid-stalled', 's1')
      expect(await handOff(a!, socket, 'sid-stalled')).toBe(true)
      own.freeze()
      // Until Redis has left a command unanswered for requestTimeout: a broadcast is given up.
      await until(
        () => {
          a!.adapter.broadcast(message('probe', [0]), to(['nobody']))
          return a!.adapter.stats.lostBroadcasts > 0
        },
        3000,
        'a broadcast given up',
      )
      const before = a!.commands.length
      const texts = Array.from({ length: 50 }, (_, i) => `[5,${13 + i},"news",[${i}],0]`)
      for (const text of texts) a!.adapter.appendHandOff('sid-stalled', text)
      await sleep(100)
      // Nothing piles up in the connection meanwhile: the appends wait in the node.
      expect(a!.commands.slice(before).filter((args) => tailBatch(args) !== undefined)).toEqual([])

      own.thaw()
      await until(
        () => a!.commands.slice(before).some((args) => tailBatch(args) !== undefined),
        5000,
        'the appends',
      )
      let claim: ClaimAnswer = null
      const deadline = Date.now() + 3000
      while (!claim && Date.now() < deadline) {
        claim = await b!.adapter.claimSession('sid-stalled')
        if (!claim) await sleep(20)
      }
      const taken = takeOver(b!, claim!)
      expect(await taken.done).toEqual({ tail: texts, complete: true, late: false })
      // In one command, not one per packet.
      const batches = a!.commands
        .slice(before)
        .filter((args) => tailBatch(args)?.some((part) => part.seal === '0'))
      expect(batches).toHaveLength(1)
    } finally {
      own.thaw()
      await stalled.close()
      await own.stop()
    }
  })

  it('does not write the record of a handed-off session again after Redis restarted empty', async () => {
    const own = await startRedis()
    const restarting = new FakeCluster(own.url)
    try {
      const [a, b] = await restarting.start(2)
      await open(a!, 'sid-kept', 's1')
      const given = await open(a!, 'sid-given', 's2')
      expect(await handOff(a!, given, 'sid-given')).toBe(true)
      await own.restart()
      // a's heartbeat finds its record lost and writes its sessions' records again.
      const deadline = Date.now() + 8000
      let owner: unknown
      while (Date.now() < deadline) {
        owner = await b!.adapter.sessionOwner('sid-kept').catch(() => 'unknown')
        if (typeof owner === 'object') break
        await sleep(50)
      }
      expect(owner).toMatchObject({ node: a!.adapter.node })
      await sleep(2 * HEARTBEAT)
      expect(await b!.adapter.sessionOwner('sid-given')).toBe('unknown')
    } finally {
      await restarting.close()
      await own.stop()
    }
  })

  it('delivers every broadcast exactly once across the cut, from the old node, the claimer and a third one', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const watchers = [a!, b!, c!].map((node, i) => {
      const watcher = node.sockets.add(`w${i}`)
      node.adapter.addAll(`w${i}`, [`w${i}`, 'r'])
      return watcher
    })
    const socket = await open(a!, 'sid-cut', 's1', ['r'])
    a!.sockets.last = () => ['last']

    // Each node emits PER broadcasts to the room, one each per turn of the event loop, so that
    // they interleave with every step of the handoff, the claim and the takeover.
    const PER = 200
    const senders = [a!, b!, c!]
    let turns = 0
    const emitTurn = () => {
      senders.forEach((node, i) => {
        node.adapter.broadcast(message('news', [`${'abc'[i]}${turns}`]), to(['r']))
      })
      turns++
    }
    let running = true
    const loop = () => {
      if (!running || turns >= PER) return
      emitTurn()
      setImmediate(loop)
    }
    for (let i = 0; i < 10; i++) emitTurn()
    loop()
    const before = socket.got
    const tailAppends: string[] = []
    socket.handedOff = (text) => {
      tailAppends.push(text)
      a!.adapter.appendHandOff('sid-cut', text)
    }
    let result: HandOffTail
    let taken: ReturnType<typeof takeOver>
    try {
      expect(await a!.adapter.handOff(snapshotOf('sid-cut', 's1', ['r']), TTL)).toBe(true)
      const claim = await b!.adapter.claimSession('sid-cut')
      expect(claim).not.toBeNull()
      taken = takeOver(b!, claim!)
      result = await taken.done
      await until(() => turns >= PER, 10_000, 'every broadcast emitted')
    } finally {
      running = false
    }
    for (const watcher of watchers) await until(() => watcher.got.length === 3 * PER, 5000, 'watchers')
    // Then one more from each node, which the claimer's socket must get: nothing is in flight.
    for (const node of senders) node.adapter.broadcast(message('news', ['end']), to(['r']))
    await until(() => taken.socket.got.filter((v) => v === 'end').length === 3, 5000, 'the end markers')

    expect(result.complete).toBe(true)
    expect(result.tail.at(-1)).toBe('last')
    const fromTail = result.tail.slice(0, -1).map(argOf)
    const after = taken.socket.got.filter((v) => v !== 'end')
    // What the socket got before its snapshot, in its tail, and on the claimer after the join:
    // every broadcast once, as the watchers got them.
    const all = [...before, ...fromTail, ...after]
    expect(new Set(all).size).toBe(all.length)
    expect([...all].sort()).toEqual(watchers[2]!.got.filter((v) => v !== 'end').sort())
    // The cut fell inside the traffic, and each sender's order holds across it.
    expect(fromTail.length).toBeGreaterThan(0)
    expect(after.length).toBeGreaterThan(0)
    for (const prefix of ['a', 'b', 'c']) {
      const numbers = all.filter((v) => String(v).startsWith(prefix)).map((v) => Number(String(v).slice(1)))
      expect(numbers).toEqual([...numbers].sort((x, y) => x - y))
    }
    // Nothing was appended to the tail after the seal was written.
    expect(tailAppends.length).toBe(fromTail.length)
  })

  it('releases a socket it takes over at once when its own last broadcast was lost: the next one reaches it when emitted', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b] = await cluster.start(2)
    const sid = 'sid-after-loss'
    const socket = await open(a!, sid, 's1', ['r'])
    expect(await handOff(a!, socket, sid, ['r'])).toBe(true)
    // b's broadcast is refused by Redis: it never comes back over the channel.
    b!.hold = (args) =>
      args[0] === 'PUBLISH' && args[2]?.includes('b0') === true
        ? Promise.reject(new Error('refused'))
        : undefined
    b!.adapter.broadcast(message('news', ['b0']), to(['r']))
    await until(() => b!.adapter.stats.lostBroadcasts === 1, 3000, 'b0 lost')
    b!.hold = undefined
    const taken = takeOver(b!, await b!.adapter.claimSession(sid))
    await taken.done
    // None of b's own broadcasts is on its way: the socket takes them when emitted, as any
    // other, and so gets b1 before what b sends it directly after.
    expect(b!.adapter.handingOver).toBe(0)
    b!.adapter.broadcast(message('news', ['b1']), to(['r']))
    taken.socket.deliver(prepareEvent('direct', ['d']))
    expect(taken.socket.got).toEqual(['b1', 'd'])
  })

  it('hands a session on again with the broadcasts its node sent it at the first takeover still on their way', async () => {
    cluster = new FakeCluster(redis.url)
    const [a, b, c] = await cluster.start(3)
    const sid = 'sid-twice'
    const socket = await open(a!, sid, 's1', ['r'])
    expect(await handOff(a!, socket, sid, ['r'])).toBe(true)
    // b's own broadcasts to the room wait in its connection, the first from before its claim's
    // marker comes back: the socket it takes over is positioned until they come back.
    const publishOf = (arg: string) => (args: string[]) =>
      args[0] === 'PUBLISH' && args[2]?.includes(arg) === true
    const slow = new HeldInOrder(b!.redis, publishOf('b0'), publishOf('news'))
    b!.hold = slow.hold
    b!.adapter.broadcast(message('news', ['b0']), to(['r']))
    const taken = takeOver(b!, await b!.adapter.claimSession(sid))
    await taken.done
    // Left out when emitted (positioned): it is to take this one when it comes back.
    b!.adapter.broadcast(message('news', ['b1']), to(['r']))
    // b hands the session on (a drain, or its client's WebSocket resume reached c) before they did.
    const tail: unknown[] = []
    taken.socket.handedOff = (text) => {
      tail.push(argOf(text))
      b!.adapter.appendHandOff(sid, text)
    }
    expect(await b!.adapter.handOff(snapshotOf(sid, 's1', ['r']), TTL)).toBe(true)
    await slow.runAll()
    c!.adapter.broadcast(message('news', ['end']), to(['r']))
    await until(() => tail.includes('end'), 3000, 'the broadcast after them')
    // Each reaches the session once: before its snapshot on b, or in the tail b hands on.
    expect([...taken.socket.got, ...tail]).toEqual(['b0', 'b1', 'end'])
  })
})
