// A burst on one node (past `MAX_UNANSWERED_COMMANDS` commands in flight on its Redis
// connection: a burst of broadcasts, a thousand sessions ending at once) while a session ends
// there, or while another node reads how it ended: the record waits its turn, bounded, instead
// of being given up, so that the session's client, resuming on the other node, hears the CLOSE
// its session ended with, not a new session. Two real nodes behind a round-robin balancer, the
// real client on long-polling, a real Redis that holds the writes for a moment (see `burstOn`).
import { connect, type Socket } from '@parley/client'
import { CloseReason, PacketType } from '@parley/protocol'
import { MAX_QUEUED_COMMANDS, RedisErrorCode } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { until } from '../../server/test/helpers.js'
import { sidHash } from '../src/sessions.js'
import { burstOn } from './burst.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'
import { type RawRedis, rawRedis } from './raw-redis.js'

/** The longest Redis holds the burst, should the test fail before it lets it go. */
const PAUSE_MS = 5000

/** Ended sessions' records, as a test reads them from Redis. */
const endedKey = (sid: string) => `parley:ended:${sidHash(sid)}`

/** Waits, at most 3 s, for the record of how `sid` ended to be in Redis. */
async function recorded(raw: RawRedis, sid: string): Promise<void> {
  for (const end = performance.now() + 3000; performance.now() < end; ) {
    if ((await raw.exists(endedKey(sid))) === 1) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('the record of how the session ended never came into Redis')
}

/** The warnings of the ended records' writes and reads given up. */
const givenUp = (node: TestNode) =>
  node.warned.filter(({ message }) => message.includes('how a session ended'))

describe.skipIf(skipRedisSuites())('how a session ended, kept and read in a burst', () => {
  let nodes: Nodes | undefined
  const proxies: RoundRobinProxy[] = []
  const cleanups: (() => Promise<unknown>)[] = []
  const suite = redisSuite(() => {
    for (const proxy of proxies.splice(0)) void proxy.close()
    for (const cleanup of cleanups.splice(0)) void cleanup()
    return nodes
  })

  /**
   * Node A, whose small buffer lets a session end ('slow consumer') while its client is cut
   * off, and node B, behind a balancer that sends everything to A for now; the real client
   * connected to A over long-polling, then cut off, the reasons its session ended as its
   * application hears them in `heard`.
   */
  async function cutOffOnA() {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, {}, false, { handoff: false, maxBufferedBytes: 64 * 1024 })
    const b = await nodes.start(suite.redis.url)
    await until(
      () => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1,
      5000,
      'live nodes',
    )
    const proxy = await startRoundRobin([a.base, b.base].map((base) => Number(new URL(base).port)))
    proxies.push(proxy)
    proxy.avoid.add(1)
    const raw = await rawRedis(suite.redis.url, cleanups)
    const client = connect(proxy.url, {
      transports: ['polling'],
      reconnectionDelay: 50,
      reconnectionDelayMax: 200,
    })
    cleanups.push(async () => client.disconnect())
    const heard: unknown[] = []
    client.on('disconnect', (reason) => heard.push(reason))
    client.on('connect_error', (err) => heard.push((err.details as { reason?: unknown } | undefined)?.reason))
    await until(() => client.connected, 3000, 'connected to node A')
    proxy.offline = true
    proxy.cut()
    return { a, b, proxy, raw, client, heard }
  }

  /** Ends the session on node A as a slow consumer: what A sends now goes nowhere. */
  async function endOnA(a: TestNode): Promise<string> {
    const socket = a.sockets[0]!
    const reasons: string[] = []
    socket.on('disconnect', (reason) => reasons.push(reason))
    socket.emit('big', 'x'.repeat(100 * 1024))
    await until(() => reasons.length === 1, 3000, 'the session ended on node A')
    expect(reasons).toEqual([CloseReason.SLOW_CONSUMER])
    return socket.session.sid
  }

  /** The network is back, and the balancer sends the client to node B: it hears why its session ended. */
  async function resumeOnB(proxy: RoundRobinProxy, client: Socket, heard: unknown[]): Promise<void> {
    proxy.avoid.clear()
    proxy.avoid.add(0)
    proxy.offline = false
    await until(() => heard.includes(CloseReason.SLOW_CONSUMER), 5000, 'the CLOSE of the session, at node B')
    expect(client.recovered).toBe(false)
    expect(proxy.forwarded[1]).toBeGreaterThanOrEqual(1)
  }

  it('a session that ends on a node in a burst: its record waits its turn, and a resume on another node gets its CLOSE', async () => {
    const { a, b, proxy, raw, client, heard } = await cutOffOnA()
    try {
      await burstOn(raw, a, PAUSE_MS)
      const sid = await endOnA(a)
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      await recorded(raw, sid)
      await resumeOnB(proxy, client, heard)
      expect(givenUp(a)).toEqual([])
      expect(givenUp(b)).toEqual([])
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it('a resume that reaches a node in a burst: its read of the record waits its turn, and the client gets its CLOSE', async () => {
    const { a, b, proxy, raw, client, heard } = await cutOffOnA()
    try {
      const sid = await endOnA(a)
      await recorded(raw, sid)
      // Node B bursts the moment it reads the record: its GET is behind the burst.
      const read = b.adapter.endedSession.bind(b.adapter)
      let bursts = 0
      b.adapter.endedSession = async (asked) => {
        if (bursts++ === 0) {
          await burstOn(raw, b, PAUSE_MS)
          // Let go once the GET is on its way (or refused), in this turn.
          setImmediate(() => void raw.sendCommand(['CLIENT', 'UNPAUSE']))
        }
        return read(asked)
      }
      await resumeOnB(proxy, client, heard)
      expect(bursts).toBeGreaterThanOrEqual(1)
      expect(givenUp(a)).toEqual([])
      expect(givenUp(b)).toEqual([])
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it('a record given up all the same is warned with its code', async () => {
    nodes = new Nodes()
    const [a] = await nodes.cluster(suite.redis.url, 2)
    const raw = await rawRedis(suite.redis.url, cleanups)
    try {
      await burstOn(raw, a!, PAUSE_MS)
      // The queue filled by sessions opening (as node A's server tells its adapter of each), then
      // one session ends: its record is one too many to wait.
      const opened = Array.from({ length: MAX_QUEUED_COMMANDS }, (_, i) =>
        a!.adapter.sessionOpened(`sid-burst-${i}`),
      )
      a!.adapter.sessionEnded(
        'sid-ended',
        { close: { type: PacketType.CLOSE, reason: CloseReason.SERVER_DISCONNECT, message: 'bye' }, ack: 0 },
        60_000,
      )
      await until(() => givenUp(a!).length === 1, 3000, 'the warning of the record given up')
      expect(givenUp(a!)[0]!.message).toBe(
        '@parley/redis: could not keep how a session ended; a resume of it that reaches another node gets a new session',
      )
      expect(givenUp(a!)[0]!.details.code).toBe(RedisErrorCode.BUSY)
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      await Promise.all(opened)
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })
})
