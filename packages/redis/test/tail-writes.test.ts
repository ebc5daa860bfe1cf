// The appends of a node to the tails of the sessions it handed off, while Redis is slow: they wait
// in the node, bounded, and reach the tail once Redis answers, in order and once each. Past the
// node's bound the tail is incomplete, and the node says so. Real adapters over fake sockets on a
// real Redis (see handoff-support.ts).
import type { BroadcastReply, SessionClaim } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { MAX_UNANSWERED_COMMANDS } from '../src/commands.js'
import { redisAddress } from '../src/options.js'
import { RedisUnreachableError } from '../src/send.js'
import { MAX_QUEUED_TAIL_APPENDS, MAX_QUEUED_TAIL_BYTES } from '../src/tail-writes.js'
import { queueFullOn } from './burst.js'
import {
  type FakeNode,
  fakeClusterSuite,
  HeldInOrder,
  holdAll,
  isSeal,
  message,
  snapshotOf,
  tailBatch,
  to,
} from './handoff-support.js'

const TTL = 60_000

/** An append to a tail, as a node of any version sends it: a script that pushes onto a list. */
const isAppend = (args: string[]) => args[0] === 'EVAL' && args[1]?.includes("'RPUSH'") === true

/** The wire text of the `i`th event numbered after the snapshot (whose last is 12). */
const text = (i: number) => `[5,${13 + i},"news",[${i}],0]`

describe.skipIf(skipRedisSuites())('the tail of a handed-off session while Redis is slow', () => {
  const suite = fakeClusterSuite()

  /** Two nodes; `a` has handed off session `sid` (its snapshot stored); their cluster's prefix. */
  async function handedOff(sid: string): Promise<{ a: FakeNode; b: FakeNode; prefix: string }> {
    const cluster = suite.cluster()
    const [a, b] = await cluster.start(2)
    await handOffOn(a!, sid)
    return { a: a!, b: b!, prefix: cluster.prefix }
  }

  /** Session `sid`, with socket `s1`, opened on `node` and handed off (its snapshot stored). */
  async function handOffOn(node: FakeNode, sid: string): Promise<void> {
    const socket = node.sockets.add('s1', sid)
    node.adapter.addAll('s1', ['s1'])
    await node.adapter.sessionOpened(sid)
    socket.handedOff = (text) => node.adapter.appendHandOff(sid, text)
    expect(await node.adapter.handOff(snapshotOf(sid, 's1'), TTL)).toBe(true)
  }

  /**
   * Every command of `node`'s held unanswered from now on (Redis answers its connection
   * nothing), with its broadcasts, MAX_UNANSWERED_COMMANDS of them, on their way: what it sends
   * next waits its turn behind them. Release with `runAll()`.
   */
  async function heldBehindBroadcasts(node: FakeNode): Promise<HeldInOrder> {
    const held = new HeldInOrder(
      node.redis,
      () => true,
      () => true,
    )
    node.hold = held.hold
    await node.redis.sendCommand(['PING'])
    for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++)
      node.adapter.broadcast(message('burst', [i]), to(['nobody']))
    return held
  }

  /** What `node`'s close said of its one batch, refused before it went: never sent, never reached Redis. */
  function expectOneBatchNeverSent(node: FakeNode): void {
    expect(node.commands.filter((args) => tailBatch(args) !== undefined)).toEqual([])
    const about = node.warnings.filter((w) => w.includes("handed-off sessions' tails"))
    expect(about).toEqual([
      expect.stringContaining("1 append(s) or seal(s) to handed-off sessions' tails could not reach Redis"),
    ])
  }

  /** `b` claims `sid` and takes it over: the tail, once `a` sealed it. */
  async function takenOver(b: FakeNode, sid: string) {
    const claim = (await b.adapter.claimSession(sid)) as SessionClaim
    expect(claim).toHaveProperty('takeOver')
    return within(
      claim.takeOver(() => {}),
      8000,
      'the takeover',
    )
  }

  it(`keeps every append Redis holds, past ${MAX_UNANSWERED_COMMANDS} of them, and writes them in order once it answers`, async () => {
    const { a, b } = await handedOff('sid-held')
    const held = holdAll(a)
    const texts = Array.from({ length: MAX_UNANSWERED_COMMANDS + 500 }, (_, i) => text(i))
    for (const t of texts) a.adapter.appendHandOff('sid-held', t)
    await until(() => a.commands.some(isAppend), 3000, 'a first batch on its way')
    held.release()
    expect(await takenOver(b, 'sid-held')).toEqual({ tail: texts, complete: true, late: false })
    // A few batches, not a command per packet.
    expect(a.commands.filter((args) => tailBatch(args) !== undefined).length).toBeLessThan(5)
    expect(a.warnings).toEqual([])
  })

  it('appends once what a batch Redis ran carried when its answer was lost: sent again, it skips what is there', async () => {
    const { a, b } = await handedOff('sid-lost-answer')
    // The first batch runs, and its answer is lost with the connection.
    let first: string[] | undefined
    a.hold = (args) => {
      if (first || !isAppend(args)) return undefined
      first = args
      return a.redis.sendCommand(args).then(() => {
        throw new RedisUnreachableError('the connection dropped before the answer', {
          at: redisAddress(a.redis),
        })
      })
    }
    a.adapter.appendHandOff('sid-lost-answer', text(0))
    a.adapter.appendHandOff('sid-lost-answer', text(1))
    await until(() => first !== undefined, 3000, 'the first batch')
    expect(await takenOver(b, 'sid-lost-answer')).toEqual({
      tail: [text(0), text(1)],
      complete: true,
      late: false,
    })
    // Sent again as it was (the script skipped what the first copy appended), then the seal.
    const parts = a.commands.flatMap((args) => tailBatch(args) ?? [])
    expect(parts.map(({ from, seal, texts }) => ({ from, seal, texts }))).toEqual([
      { from: 0, seal: '0', texts: [text(0), text(1)] },
      { from: 0, seal: '0', texts: [text(0), text(1)] },
      { from: 2, seal: '1', texts: [] },
    ])
  })

  it("counts a question asked into the tail when Redis has not answered its append by the question's timeout: slow, not lost", async () => {
    const { a } = await handedOff('sid-question-slow')
    // Its appends are held, unanswered; its PUBLISHes go.
    const appends = new HeldInOrder(a.redis, isAppend, isAppend)
    a.hold = appends.hold
    try {
      const asked: { count?: number; replies: BroadcastReply[] } = { replies: [] }
      a.adapter.broadcastWithAck(
        message('ask', ['q']),
        to(['s1']),
        500,
        (count) => {
          asked.count = count
        },
        (reply) => asked.replies.push(reply),
      )
      await until(() => appends.held.length > 0, 3000, 'the question appended, unanswered')
      // At the question's timeout, its append still unanswered: the session counts, its reply too.
      await until(() => asked.count !== undefined, 3000, 'the count')
      expect(asked.count).toBe(1)
      expect(asked.replies).toEqual([{ ok: true, value: null }])
    } finally {
      await appends.runAll()
    }
  })

  it.each([
    {
      bound: 'MAX_QUEUED_TAIL_APPENDS',
      texts: Array.from({ length: MAX_QUEUED_TAIL_APPENDS + 5 }, (_, i) => text(i)),
      kept: MAX_QUEUED_TAIL_APPENDS,
    },
    {
      bound: 'MAX_QUEUED_TAIL_BYTES',
      texts: Array.from(
        { length: 3 },
        (_, i) => `[5,${13 + i},"news",["${'x'.repeat(MAX_QUEUED_TAIL_BYTES / 3)}"],0]`,
      ),
      kept: 2,
    },
  ])(
    'drops what comes past $bound while Redis does not answer: the tail is incomplete, and the node warns',
    async ({ texts, kept }) => {
      const { a, b } = await handedOff('sid-bound')
      const held = holdAll(a)
      for (const t of texts) a.adapter.appendHandOff('sid-bound', t)
      expect(a.warnings.filter((w) => w.includes('dropped an append'))).toHaveLength(1)
      held.release()
      const tail = await takenOver(b, 'sid-bound')
      expect(tail).toMatchObject({ complete: false, late: false })
      expect(tail.tail).toEqual(texts.slice(0, kept))
    },
  )

  it.each([
    { bound: 'none', texts: [text(0), text(1), text(2)], kept: 3, complete: true },
    {
      bound: 'MAX_QUEUED_TAIL_APPENDS',
      texts: Array.from({ length: MAX_QUEUED_TAIL_APPENDS + 5 }, (_, i) => text(i)),
      kept: MAX_QUEUED_TAIL_APPENDS,
      complete: false,
    },
  ])(
    'holds what a session is sent while its handoff waits for Redis, first in its tail once stored (bound: $bound)',
    async ({ texts, kept, complete }) => {
      const cluster = suite.cluster()
      const [a, b] = await cluster.start(2)
      const sid = 'sid-waiting'
      a!.sockets.add('s1', sid)
      a!.adapter.addAll('s1', ['s1'])
      await a!.adapter.sessionOpened(sid)
      // a's broadcasts are held (a Redis slow to answer a's connection), MAX_UNANSWERED_COMMANDS
      // of them: a sends nothing more, its handoff included, until Redis answers.
      const channel = `${cluster.prefix}:broadcast`
      const isProbe = (args: string[]) =>
        args[0] === 'PUBLISH' && args[1] === channel && args[2]!.includes('probe')
      const busy = new HeldInOrder(a!.redis, isProbe, isProbe)
      a!.hold = busy.hold
      for (let i = 0; i <= MAX_UNANSWERED_COMMANDS; i++)
        a!.adapter.broadcast(message('probe', [i]), to(['nobody']))
      const storing = a!.adapter.handOff(snapshotOf(sid, 's1'), TTL)
      // What the server numbers for the session from its freeze on, before the entry begins.
      for (const t of texts) a!.adapter.appendHandOff(sid, t)
      expect(a!.warnings.filter((w) => w.includes('dropped an append'))).toHaveLength(complete ? 0 : 1)
      await busy.runAll()
      expect(await within(storing, 8000, 'the handoff')).toBe(true)
      const tail = await takenOver(b!, sid)
      expect(tail).toMatchObject({ complete, late: false })
      expect(tail.tail).toEqual(texts.slice(0, kept))
    },
  )

  it('counts what it holds for a handoff waiting for Redis within the bounds of every tail', async () => {
    const { a, b } = await handedOff('sid-stored')
    // Another session of a's, whose handoff waits for Redis: a's client says it is not ready.
    a.sockets.add('s2', 'sid-waiting')
    a.adapter.addAll('s2', ['s2'])
    await a.adapter.sessionOpened('sid-waiting')
    a.down = true
    const waiting = a.adapter.handOff(snapshotOf('sid-waiting', 's2'), TTL)
    const dropped = () => a.warnings.filter((w) => w.includes('dropped an append'))
    for (let i = 0; i < MAX_QUEUED_TAIL_APPENDS; i++) a.adapter.appendHandOff('sid-waiting', text(i))
    expect(dropped()).toHaveLength(0)
    // The stored session's next packet does not fit beside them: dropped, its tail incomplete.
    a.adapter.appendHandOff('sid-stored', text(0))
    expect(dropped()).toHaveLength(1)
    a.down = false
    expect(await within(waiting, 8000, 'the waiting handoff')).toBe(true)
    expect(await takenOver(b, 'sid-stored')).toMatchObject({ tail: [], complete: false })
  })

  it('says at close which writes Redis got and may still run, and which never reached it', async () => {
    // The batch is not given up before the close ends its wait for it (UNDO_AT_CLOSE_MS); the
    // goodbye, held behind it too, is waited for GOODBYE_MS after that.
    const cluster = suite.cluster({ requestTimeout: 5000 })
    const [a] = await cluster.start(1)
    await handOffOn(a!, 'sid-closing')
    // The first batch reaches Redis and its answer never comes; what follows waits behind it,
    // in the adapter, or on the connection, as every command a sends after it (run, unanswered).
    const held = new HeldInOrder(a!.redis, isAppend, () => true)
    held.sendAll()
    a!.hold = held.hold
    a!.adapter.appendHandOff('sid-closing', text(0))
    await until(() => a!.commands.some(isAppend), 3000, 'the first batch on its way')
    a!.adapter.appendHandOff('sid-closing', text(1))
    a!.adapter.appendHandOff('sid-closing', text(2))
    await cluster.stop(a!)
    const about = a!.warnings.filter((w) => w.includes("handed-off sessions' tails"))
    expect(about).toEqual([
      expect.stringContaining("2 append(s) or seal(s) to handed-off sessions' tails could not reach Redis"),
      expect.stringContaining(
        "1 append(s) or seal(s) to handed-off sessions' tails were sent and not answered before the adapter closed; Redis may still write them",
      ),
    ])
  })

  it('says at close that a batch refused as busy never reached Redis', async () => {
    // Nothing goes overdue before the close ends its wait for the batch (UNDO_AT_CLOSE_MS): every
    // try of it is refused for the burst alone.
    const cluster = suite.cluster({ requestTimeout: 20_000 })
    const [a] = await cluster.start(1)
    await handOffOn(a!, 'sid-busy')
    const burst = await queueFullOn(a!)
    try {
      // Its batch is refused as busy (`MAX_QUEUED_COMMANDS` wait their turn), and again at each
      // try while the node closes.
      a!.adapter.appendHandOff('sid-busy', text(0))
      await cluster.stop(a!)
    } finally {
      await burst.release()
    }
    expectOneBatchNeverSent(a!)
  })

  it('says at close that a batch refused while it waited its turn never reached Redis', async () => {
    // Short, for the burst's commands to go overdue while the batch waits behind them.
    const cluster = suite.cluster({ requestTimeout: 1000 })
    const [a] = await cluster.start(1)
    await handOffOn(a!, 'sid-in-turn')
    // Its batch waits its turn behind the broadcasts, until they go overdue and it is refused,
    // never sent.
    const held = await heldBehindBroadcasts(a!)
    try {
      a!.adapter.appendHandOff('sid-in-turn', text(0))
      const overdue = (w: string) => w.includes('did not answer the PUBLISH')
      await until(() => a!.warnings.some(overdue), 5000, 'a broadcast given up unanswered')
      await cluster.stop(a!)
    } finally {
      await held.runAll()
    }
    expectOneBatchNeverSent(a!)
  })

  it('sends at close a batch that still waited its turn behind a burst, and says Redis may still write it', async () => {
    // Nothing goes overdue before the close ends its wait for the batch (UNDO_AT_CLOSE_MS): the
    // batch still waits its turn when the close stops the commands, which sends it then (Redis
    // answers, slowly: the count of commands unanswered alone holds nothing back at the close).
    const cluster = suite.cluster({ requestTimeout: 20_000 })
    const [a] = await cluster.start(1)
    await handOffOn(a!, 'sid-stopped')
    // Its batch waits its turn behind the broadcasts.
    const held = await heldBehindBroadcasts(a!)
    try {
      a!.adapter.appendHandOff('sid-stopped', text(0))
      await cluster.stop(a!)
    } finally {
      await held.runAll()
    }
    expect(a!.commands.filter((args) => tailBatch(args) !== undefined)).toHaveLength(1)
    expect(a!.warnings.filter((w) => w.includes("handed-off sessions' tails"))).toEqual([
      expect.stringContaining(
        "1 append(s) or seal(s) to handed-off sessions' tails were sent and not answered before the adapter closed; Redis may still write them",
      ),
    ])
  })

  it('reads the tail back once Redis takes the claimer’s commands again, rather than go on without it', async () => {
    const { a, b, prefix } = await handedOff('sid-busy-claimer')
    const texts = [text(0), text(1), text(2)]
    for (const t of texts) a.adapter.appendHandOff('sid-busy-claimer', t)
    // a's seal waits until b cannot ask Redis.
    const seal = new HeldInOrder(
      a.redis,
      (args) => isSeal(args),
      () => false,
    )
    a.hold = seal.hold
    const claim = (await b.adapter.claimSession('sid-busy-claimer')) as SessionClaim
    const taking = claim.takeOver(() => {})
    await until(() => seal.held.length > 0, 3000, 'a’s seal on its way')
    // b's broadcasts are held (a Redis slow to answer b's connection): MAX_UNANSWERED_COMMANDS of
    // them, and b sends nothing more until Redis answers.
    const channel = `${prefix}:broadcast`
    const isBroadcast = (args: string[]) => args[0] === 'PUBLISH' && args[1] === channel
    const busy = new HeldInOrder(b.redis, isBroadcast, isBroadcast)
    b.hold = busy.hold
    for (let i = 0; i <= MAX_UNANSWERED_COMMANDS; i++)
      b.adapter.broadcast(message('probe', [i]), to(['nobody']))
    expect(b.adapter.stats.lostBroadcasts).toBeGreaterThan(0)
    // The test hears a's 'sealed' as b does; b would read the tail then.
    const listener = b.redis.duplicate()
    try {
      await listener.connect()
      let sealed = false
      await listener.subscribe(`${prefix}:response:${b.adapter.node}`, (packet) => {
        if (packet.includes('"sealed"')) sealed = true
      })
      await seal.runAll()
      await until(() => sealed, 3000, 'a’s seal said')
      expect(await Promise.race([taking.then(() => 'read'), sleep(200).then(() => 'waits')])).toBe('waits')
      await busy.runAll()
      expect(await within(taking, 5000, 'the takeover')).toEqual({ tail: texts, complete: true, late: false })
    } finally {
      listener.destroy()
    }
  })

  it('publishes the claim marker once Redis takes the claimer’s commands again, and gets the old node’s seal', async () => {
    const { a, b, prefix } = await handedOff('sid-busy-marker')
    a.sockets.last = () => ['its last packet']
    a.adapter.appendHandOff('sid-busy-marker', text(0))
    const claim = (await b.adapter.claimSession('sid-busy-marker')) as SessionClaim
    expect(claim).toHaveProperty('takeOver')
    // Then b's broadcasts are held (a Redis slow to answer b's connection),
    // MAX_UNANSWERED_COMMANDS of them, before b takes the session over: it cannot send its marker.
    const channel = `${prefix}:broadcast`
    const isProbe = (args: string[]) =>
      args[0] === 'PUBLISH' && args[1] === channel && args[2]!.includes('probe')
    const busy = new HeldInOrder(b.redis, isProbe, isProbe)
    b.hold = busy.hold
    for (let i = 0; i <= MAX_UNANSWERED_COMMANDS; i++)
      b.adapter.broadcast(message('probe', [i]), to(['nobody']))
    expect(b.adapter.stats.lostBroadcasts).toBeGreaterThan(0)
    const taking = claim.takeOver(() => {})
    await sleep(100)
    await busy.runAll()
    // The marker went once b could send it: a ended the session there and sealed its tail.
    expect(await within(taking, 8000, 'the takeover')).toEqual({
      tail: [text(0), 'its last packet'],
      complete: true,
      late: false,
    })
    expect(a.sockets.claims).toEqual(['sid-busy-marker'])
  })
})
