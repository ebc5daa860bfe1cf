// Drain with handoff over a real Redis (see handoff.test.ts): the take-back of a claim or a handoff
// write given up on, whichever Redis runs first, and the withdraw of a snapshot whose session
// ended while Redis was away. The nodes are real adapters over fake sockets (see handoff-support.ts).
import { createHash } from 'node:crypto'
import type { ClaimAnswer, SessionClaim } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { UNCLAIM_KEEP_MS } from '../src/handoff.js'
import { burstOnAdapter, queueFullOn } from './burst.js'
import {
  claimedBeforeTakeBack,
  cutOff,
  endWhileCutOff,
  handOff,
  isUndo,
  OUTLIVE_CUTS,
  open,
  owned,
  PAUSE_MS,
  takeOver,
  watchSealWaits,
} from './handoff-steps.js'
import {
  dropConnection,
  eventually,
  FakeCluster,
  type FakeNode,
  fakeClusterSuite,
  HeldInOrder,
  HeldOnDroppedLink,
  holdAll,
  won,
} from './handoff-support.js'
import { rawRedisEach } from './raw-redis.js'

/**
 * The requestTimeout of the one node whose command Redis holds until it gives up. Only that
 * node's: given to the whole cluster, it bounded every other command too (the old node's handoff
 * write, another node's claim), which a loaded machine answered past 200 ms now and then, and
 * the test failed on a step it does not hold. The others keep the default (5 s).
 */
const GIVES_UP_AFTER = { requestTimeout: 200 }

/**
 * `count` nodes of `cluster`, made in order, the one at `short` with `bound` (`GIVES_UP_AFTER`
 * unless given): once each sees the others live.
 */
async function startWithShort(
  cluster: FakeCluster,
  count: number,
  short: number,
  bound: { requestTimeout: number } = GIVES_UP_AFTER,
): Promise<FakeNode[]> {
  const nodes: FakeNode[] = []
  for (let i = 0; i < count; i++) nodes.push(await cluster.node(undefined, i === short ? bound : {}))
  await until(() => nodes.every((n) => n.adapter.liveNodes.length >= count - 1), 5000, 'live nodes')
  return nodes
}

describe.skipIf(skipRedisSuites())('drain with handoff: take-backs and withdraws', () => {
  const suite = fakeClusterSuite()
  let cluster: FakeCluster
  /** Raw clients that hold a burst's writes (see `burstOnAdapter`), closed after each test. */
  const pauser = rawRedisEach(() => suite.redis().url)

  afterEach(() => {
    // A test that failed while it watched the waits for a seal (see `watchSealWaits`).
    vi.restoreAllMocks()
  })

  it('takes back a claim given up on that Redis runs late: another node claims the session and takes it over whole', async () => {
    const own = await startRedis()
    const slow = new FakeCluster(own.url)
    try {
      const [a, b, c] = await startWithShort(slow, 3, 1)
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
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [a, c] = await cluster.start(2)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster()
    const [a, b, c] = await startWithShort(cluster, 3, 1)
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
    cluster = suite.cluster()
    const [a, c] = await cluster.start(2)
    const proxy = await startTcpProxy(suite.redis().port)
    try {
      // b reaches Redis through a link that can go half-open.
      const b = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`, GIVES_UP_AFTER)
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
      const deadline = performance.now() + 3000
      while (answer === 'elsewhere' && performance.now() < deadline) {
        answer = await c!.adapter.claimSession('sid-lapsed')
        if (answer === 'elsewhere') await sleep(20)
      }
      expect(answer).toEqual({ missed: 'lost' })
    } finally {
      await proxy.close()
    }
  })

  it('takes back a claim whose connection dropped for a claim of another node: that one wins once it went through', async () => {
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [a, c] = await cluster.start(2)
    const proxy = await startTcpProxy(suite.redis().port)
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
      const deadline = performance.now() + 5000
      while ((claim === null || claim === 'retry' || claim === 'elsewhere') && performance.now() < deadline) {
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
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
      const deadline = performance.now() + 5000
      while ((typeof owner !== 'object' || owner.handingOff) && performance.now() < deadline) {
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
    cluster = suite.cluster()
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster()
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
    cluster = suite.cluster(options)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster()
    // a's bound alone: long enough for b's claim and marker to come first, and b's own commands
    // (its claim, the takeover's reads) keep the default, which a loaded machine does not outlast.
    const [a, b] = await startWithShort(cluster, 2, 0, { requestTimeout: 1000 })
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
    const [a, b] = await startWithShort(cluster, 2, 0)
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
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster()
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
  }, 35_000)

  it('revokes a claim Redis ran between a write given up on and its undo: the session stays its node’s, the claimer is told', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
    // a's handOff resolves once the take-back, held behind the write, is answered.
    const { tail, waits, ...claimed } = await claimedBeforeTakeBack(cluster, sid)
    expect(waits).toMatchObject({ began: 1, ranOut: 1 })
    // b stopped waiting for a's seal (SEAL_WAIT_MS) and read the tail without the revocation.
    expect(tail).toMatchObject({ complete: false })
    expect(tail.ended).toBeUndefined()
    const owner = `${cluster.prefix}:session:${createHash('sha256').update(sid).digest('base64url')}`
    return { ...claimed, owner }
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
})
