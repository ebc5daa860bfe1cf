// Drain with handoff over a real Redis: a node stores a session's snapshot, another claims it
// (exactly one of several), takes it over at the cut point of the broadcast channel and reads
// the tail back. The nodes are real adapters over fake sockets (see handoff-support.ts).
// The old node's goodbye and Redis away are in handoff-goodbyes.test.ts, the take-backs of claims
// and writes given up on, and withdraws, in handoff-take-backs.test.ts: three files, each with its
// own Redis, that run side by side.
import { createHash } from 'node:crypto'
import { prepareEvent } from '@parley/protocol'
import type { HandOffTail, SessionClaim, SessionSnapshot } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { redisAddress } from '../src/options.js'
import { RedisUnreachableError } from '../src/send.js'
import { handOff, open, owned, TTL, takeOver, watchSealWaits } from './handoff-steps.js'
import {
  argOf,
  type FakeCluster,
  fakeClusterSuite,
  HEARTBEAT,
  HeldInOrder,
  message,
  snapshotOf,
  tailBatch,
  to,
  won,
} from './handoff-support.js'

describe.skipIf(skipRedisSuites())('drain with handoff', () => {
  const suite = fakeClusterSuite()
  let cluster: FakeCluster
  afterEach(() => {
    // A test that failed while it watched the waits for a seal (see `watchSealWaits`).
    vi.restoreAllMocks()
  })

  it('stores a snapshot that another node claims as it was written, and answers handingOff meanwhile', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster({ requestTimeout: 1000 })
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
    const started = performance.now()
    expect(await b!.adapter.requestHandOff(a!.adapter.node, 'sid-late')).toBe(false)
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * 1000 - 50)
  })

  it('waits for the answer of a node asked to hand off under the largest requestTimeout', async () => {
    // Twice 2^31-1 ms is past what a timer can hold: such a timer fires at once.
    cluster = suite.cluster({ requestTimeout: 2 ** 31 - 1 })
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
    cluster = suite.cluster({ requestTimeout: 30_000 })
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
    cluster = suite.cluster({ requestTimeout: 1000 })
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
      const started = performance.now()
      const asked = b!.adapter.requestHandOff(chatty, 'sid-chatty')
      expect(await Promise.race([asked, sleep(10_000).then(() => 'late')])).toBe(false)
      expect(performance.now() - started).toBeGreaterThanOrEqual(2 * 1000 - 50)
    } finally {
      clearInterval(repeating)
      await listener.quit()
      await a!.redis.sendCommand(['DEL', record, `${record}:note`])
      await a!.redis.sendCommand(['ZREM', `${cluster.prefix}:nodes`, chatty])
    }
  })

  it('names another live node with its address for a draining node’s resumes, the same for a sid, none once alone', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
    const [a, b] = await cluster.start(2)
    expect(await b!.adapter.claimSession('never-seen')).toBeNull()
    const socket = await open(a!, 'sid-short', 's1')
    expect(await handOff(a!, socket, 'sid-short', [], 200)).toBe(true)
    await sleep(400)
    expect(await b!.adapter.claimSession('sid-short')).toBeNull()
    // The owner record went with it: the session is gone.
    expect(await b!.adapter.sessionOwner('sid-short')).toBe('unknown')
  })

  it('says what was left of the client’s window at the claim: the handoff’s life before the claim kept it longer', async () => {
    cluster = suite.cluster()
    const [a, b] = await cluster.start(2)
    const socket = await open(a!, 'sid-left', 's1')
    // Shorter than the life a claim keeps the keys for (CLAIM_KEEP_MS, 30 s), which is not the
    // client's window.
    expect(await handOff(a!, socket, 'sid-left', [], 5000)).toBe(true)
    const asked = performance.now()
    const left = (await b!.adapter.claimSession('sid-left')) as SessionClaim
    const resolved = performance.now()
    expect(left.recoveryLeft).toBeGreaterThan(0)
    expect(left.recoveryLeft).toBeLessThanOrEqual(5000)
    // And when Redis answered: the moment the server counts the takeover's time from.
    expect(left.answeredAt).toBeGreaterThanOrEqual(asked)
    expect(left.answeredAt).toBeLessThanOrEqual(resolved)
    await within(takeOver(b!, left).done, 5000, 'the takeover')
  })

  it('leaves no key without an expiry when the handoff expires between the claim and the read-back', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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

  it('delivers every broadcast exactly once across the cut, from the old node, the claimer and a third one', async () => {
    cluster = suite.cluster()
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
  }, 25_000)

  it('releases a socket it takes over at once when its own last broadcast was lost: the next one reaches it when emitted', async () => {
    cluster = suite.cluster()
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
    cluster = suite.cluster()
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
