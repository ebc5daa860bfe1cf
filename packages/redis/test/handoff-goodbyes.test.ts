// Drain with handoff over a real Redis (see handoff.test.ts): an old node that closes, says
// goodbye or lapses while its sessions are claimed, and a Redis that is away, slow or restarted
// empty while a node hands off. The nodes are real adapters over fake sockets (see handoff-support.ts).
import { createHash } from 'node:crypto'
import type { ClaimAnswer, HandOffTail } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { LOOK_AGAIN_MS, MAX_UNANSWERED_COMMANDS } from '../src/commands.js'
import { CLAIM_KEEP_MS } from '../src/handoff.js'
import { GOODBYE_MARK_MS } from '../src/nodes.js'
import { burstOnAdapter } from './burst.js'
import {
  beforeAnyIo,
  behind,
  cutOff,
  handOff,
  isHeartbeat,
  isUndo,
  lapse,
  OUTLIVE_CUTS,
  open,
  owned,
  PAUSE_MS,
  TTL,
  takeOver,
  watchSealWaits,
} from './handoff-steps.js'
import {
  FakeCluster,
  type FakeNode,
  fakeClusterSuite,
  HEARTBEAT,
  HeldInOrder,
  holdAll,
  isSeal,
  message,
  tailBatch,
  to,
  won,
} from './handoff-support.js'
import { rawRedisEach } from './raw-redis.js'

describe.skipIf(skipRedisSuites())('drain with handoff: goodbyes and Redis away', () => {
  const suite = fakeClusterSuite()
  let cluster: FakeCluster
  /** Raw clients that hold a burst's writes (see `burstOnAdapter`), closed after each test. */
  const pauser = rawRedisEach(() => suite.redis().url)

  afterEach(() => {
    // A test that failed while it watched the waits for a seal (see `watchSealWaits`).
    vi.restoreAllMocks()
  })

  it('gives up on an old node that closed, or never seals, within the bound (complete: false)', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster()
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
    const deadline = performance.now() + 5000
    while (answer === 'unknown' && performance.now() < deadline) {
      await sleep(50)
      answer = await a!.adapter.sessionOwner('sid-ghost')
    }
    expect(answer).toEqual({ node: 'ghost-node', url: 'http://127.0.0.1:1' })
    expect(asked()).toBe(2)
  })

  it('looks up the sessions of a node that left with one round trip each, as before: no heartbeat for each', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
  }, 25_000)

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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster()
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
    cluster = suite.cluster(OUTLIVE_CUTS)
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
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
  }, 30_000)

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
      const deadline = performance.now() + 3000
      while (!claim && performance.now() < deadline) {
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
      const deadline = performance.now() + 8000
      let owner: unknown
      while (performance.now() < deadline) {
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
})
