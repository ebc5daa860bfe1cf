// A burst on one node: past `MAX_UNANSWERED_COMMANDS` commands in flight on its Redis
// connection (a thousand sessions opening at once, a burst of broadcasts), the owner records of
// the sessions opening then wait their turn, bounded, instead of being given up until the next
// heartbeat, during which another node would not find those sessions. Two real nodes behind a
// round-robin balancer, the real client on long-polling, a real Redis that holds the writes for
// a moment, so that the burst is in flight at once.
import { connect } from '@parley/client'
import { defaults, MAX_QUEUED_COMMANDS, RedisErrorCode } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { until, within } from '../../server/test/helpers.js'
import { sidHash } from '../src/sessions.js'
import { burstOn } from './burst.js'
import { eventually } from './handoff-support.js'
import { HEARTBEAT, Nodes, redisSuite } from './nodes.js'
import { rawRedis } from './raw-redis.js'

/** The longest Redis holds the burst, should the test fail before it lets it go. */
const PAUSE_MS = 5000

/**
 * How long Redis holds the writes of a burst on the node that a request reaches: far longer than
 * the request takes to get there, far below the server's wait for a look-up.
 */
const LOOKUP_PAUSE_MS = 1000

/** How long `MAX_QUEUED_COMMANDS` owner records may take to be written once Redis answers again. */
const RECORDS_WITHIN_MS = 30_000

/**
 * The heartbeat of a node whose burst is held: three of it (the others' wait before they take it
 * for gone) outlast the burst, however loaded the machine.
 */
const BURST_HEARTBEAT = 10_000

describe.skipIf(skipRedisSuites())('owner records written in a burst', () => {
  let nodes: Nodes | undefined
  const proxies: RoundRobinProxy[] = []
  const cleanups: (() => Promise<unknown>)[] = []
  const suite = redisSuite(() => {
    for (const proxy of proxies.splice(0)) void proxy.close()
    for (const cleanup of cleanups.splice(0)) void cleanup()
    return nodes
  })

  /**
   * Two nodes whose heartbeats are far apart (none writes a missed record again while a test
   * runs), behind a round-robin proxy that sends everything to node A for now; what each node's
   * application handled of the client's `n` events (a session lost to node B would be a new one
   * there), and a raw Redis client to hold its writes.
   */
  async function twoNodesBehindProxy() {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { heartbeatInterval: 10_000 })
    const handled = [a!, b!].map((node) => {
      const got: number[] = []
      node.app.parley.on('connection', (socket) =>
        socket.on('n', (n: number, ack?: (reply: number) => void) => {
          got.push(n)
          ack?.(n)
        }),
      )
      return got
    })
    const proxy = await startRoundRobin([a!.base, b!.base].map((base) => Number(new URL(base).port)))
    proxies.push(proxy)
    proxy.avoid.add(1)
    const raw = await rawRedis(suite.redis.url, cleanups)
    return { a: a!, b: b!, handled, proxy, raw }
  }

  it('are written once the burst is answered: a request that reaches another node finds the session', async () => {
    const { a, b, handled, proxy, raw } = await twoNodesBehindProxy()

    // Node A's handshakes tell when one reached it: its owner record is written right after.
    let hellos = 0
    a.app.parley.use(() => {
      hellos++
    })

    // Redis holds every write (PUBLISH too) until the test lets it go, and node A broadcasts a
    // burst meanwhile: its connection has MAX_UNANSWERED_COMMANDS commands in flight when the
    // client's session opens there. Reads go on: node B can look sessions up.
    await burstOn(raw, a!, PAUSE_MS)
    const client = connect(proxy.url, { transports: ['polling'], reconnectionDelay: 50 })
    const lost: unknown[] = []
    client.on('disconnect', (reason) => lost.push(reason))
    client.on('connect_error', (err) => lost.push(err.code))
    try {
      await until(() => hellos === 1, 3000, 'the handshake at node A')
      // Its middleware done, the handshake asks for its record within the same turn.
      await new Promise((resolve) => setImmediate(resolve))
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      await until(() => client.connected, 5000, 'connected to node A')
      const sid = a.sockets[0]!.session.sid
      const id = client.id

      // Every request from now on reaches node B, which sends it on to the session's owner.
      proxy.avoid.clear()
      proxy.avoid.add(0)
      expect(await within(client.timeout(5000).emitWithAck('n', 1), 6000, 'the ack through node B')).toBe(1)
      expect(proxy.forwarded[1]).toBeGreaterThanOrEqual(1)
      expect(client.id).toBe(id)
      expect([...a.sockets, ...b.sockets].map((socket) => socket.session.sid)).toEqual([sid])
      expect(handled).toEqual([[1], []])
      expect(lost).toEqual([])
      expect(a.warnings.filter((line) => line.includes('session owner record'))).toEqual([])
    } finally {
      client.disconnect()
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it('written late, after the handshake went on without it, for a session that ended meanwhile: no record is left', async () => {
    const { a, b, proxy, raw } = await twoNodesBehindProxy()
    await burstOn(raw, a, PAUSE_MS)
    const client = connect(proxy.url, { transports: ['polling'], reconnectionDelay: 50 })
    try {
      // The handshake stops waiting for the record (OWNER_RECORD_WAIT_MS) while Redis holds it.
      await until(() => client.connected, 5000, 'connected to node A')
      const sid = a.sockets[0]!.session.sid
      const owner = `${defaults.prefix}:session:${sidHash(sid)}`
      expect(await raw.get(owner)).toBeNull()
      // The session ends before its record is written: its end's writes wait behind it.
      client.disconnect()
      await until(() => a.app.parley.sockets.size === 0, 3000, 'the session ended on node A')
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      const ended = `${defaults.prefix}:ended:${sidHash(sid)}`
      await eventually(async () => (await raw.get(ended)) !== null, 5000, 'its end kept')
      // Written late, the record was removed behind it, in order: no node is named for a
      // session that no longer lives, and a resume elsewhere hears how it ended.
      expect(await raw.get(owner)).toBeNull()
      expect(await b.adapter.sessionOwner(sid)).toBe('unknown')
      expect((await b.adapter.endedSession(sid))?.close.reason).toBe('client disconnect')
    } finally {
      client.disconnect()
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it(
    'wait their turn at most MAX_QUEUED_COMMANDS at once: one more is given up with a coded warning, and written at the next heartbeat',
    async () => {
      nodes = new Nodes()
      // Node A skips its heartbeats while the burst is in flight: at the tests' usual pace (three
      // missed ones, under a second), node B took it for gone on a loaded machine, whose burst lasts
      // seconds, and read its records as no owner's. This beat outlasts the burst; and no record
      // that waited its turn is given up unanswered (requestTimeout) while the loaded machine
      // works through ten thousand of them: neither bound is what this test is about.
      const [a, b] = await nodes.cluster(suite.redis.url, 2, {
        heartbeatInterval: BURST_HEARTBEAT,
        requestTimeout: RECORDS_WITHIN_MS,
      })
      const raw = await rawRedis(suite.redis.url, cleanups)
      try {
        await burstOn(raw, a!, PAUSE_MS)
        // The sessions' opening, as node A's server tells its adapter of each (no route parameters:
        // one command each), one more than wait their turn.
        const sids = Array.from({ length: MAX_QUEUED_COMMANDS + 1 }, (_, i) => `sid-burst-${i}`)
        const opened = sids.map((sid) => a!.adapter.sessionOpened(sid))
        const busy = () => a!.warned.filter(({ details }) => details.code === RedisErrorCode.BUSY)
        await until(() => busy().length === 1, 3000, 'the warning of the record given up')
        expect(busy()[0]!.message).toBe(
          '@parley/redis: could not write a session owner record; it is written again once Redis answers',
        )
        expect(String(busy()[0]!.details.err)).toContain(`and ${MAX_QUEUED_COMMANDS} waiting behind them`)

        await raw.sendCommand(['CLIENT', 'UNPAUSE'])
        // Ten thousand writes: a loaded machine takes more than 5 s over them, and how long is not
        // what is tested (that none is given up is).
        await within(Promise.all(opened), RECORDS_WITHIN_MS, 'the records written')
        // Those that waited are there at once; the one given up, once a heartbeat wrote it again.
        for (const sid of [sids[0]!, sids[MAX_QUEUED_COMMANDS - 1]!])
          expect(await b!.adapter.sessionOwner(sid)).toMatchObject({ node: a!.adapter.node })
        const last = sids[MAX_QUEUED_COMMANDS]!
        const end = performance.now() + 2 * BURST_HEARTBEAT
        while ((await b!.adapter.sessionOwner(last)) === 'unknown' && performance.now() < end)
          await new Promise((resolve) => setTimeout(resolve, HEARTBEAT / 3))
        expect(await b!.adapter.sessionOwner(last)).toMatchObject({ node: a!.adapter.node })
        expect(busy()).toHaveLength(1)
      } finally {
        await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      }
    },
    RECORDS_WITHIN_MS + 2 * BURST_HEARTBEAT + 20_000,
  )

  it('are looked up in turn on a node in a burst: a request that reaches it is sent on to the owner', async () => {
    const { b, handled, proxy, raw } = await twoNodesBehindProxy()
    const client = connect(proxy.url, { transports: ['polling'], reconnectionDelay: 50 })
    const lost: unknown[] = []
    client.on('disconnect', (reason) => lost.push(reason))
    client.on('connect_error', (err) => lost.push(err.code))
    try {
      await until(() => client.connected, 5000, 'connected to node A')
      const id = client.id
      // Redis holds the writes for a moment, and node B broadcasts a burst meanwhile: its
      // connection has MAX_UNANSWERED_COMMANDS commands in flight when the client's next
      // request reaches it, and B must look up where the session lives.
      await burstOn(raw, b, LOOKUP_PAUSE_MS)
      proxy.avoid.clear()
      proxy.avoid.add(0)
      expect(await within(client.timeout(5000).emitWithAck('n', 1), 6000, 'the ack through node B')).toBe(1)
      expect(proxy.forwarded[1]).toBeGreaterThanOrEqual(1)
      expect(client.id).toBe(id)
      expect(handled).toEqual([[1], []])
      expect(lost).toEqual([])
    } finally {
      client.disconnect()
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })
})
