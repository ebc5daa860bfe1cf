// How a session ended, shared by every node through Redis: a resume of a session that ended on
// one node, reaching another (no sticky sessions), gets the ended session's last ACK and CLOSE
// there too, not a fresh session into which the client would send again what the ended one
// handled. Two real nodes behind a round-robin balancer, and the real client.
import { connect } from '@parley/client'
import { CloseReason, PacketType } from '@parley/protocol'
import { MAX_ENDED_MESSAGE, MAX_ENDED_RECORDS, MAX_UNANSWERED_COMMANDS } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { until } from '../../server/test/helpers.js'
import { sidHash } from '../src/sessions.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'

/** Ended sessions' records, as a test reads them from Redis. */
const endedKey = (sid: string) => `parley:ended:${sidHash(sid)}`

describe.skipIf(skipRedisSuites())('a resume of a session that ended on another node', () => {
  let nodes: Nodes | undefined
  const proxies: RoundRobinProxy[] = []
  const suite = redisSuite(() => {
    for (const proxy of proxies.splice(0)) void proxy.close()
    return nodes
  })

  /** Every `n` event each node's application handled, in order, by node. */
  function handled(list: TestNode[]): number[][] {
    return list.map((node) => {
      const got: number[] = []
      node.app.parley.on('connection', (socket) => socket.on('n', (n: number) => got.push(n)))
      return got
    })
  }

  it.each(['websocket', 'polling'] as const)(
    'gets its last ACK and CLOSE there, and the client does not send again what it handled (%s)',
    async (transport) => {
      nodes = new Nodes()
      // A small buffer, so that the application can end the session ('slow consumer') while its
      // client is cut off: a reason after which the client starts a new session by itself.
      const a = await nodes.start(suite.redis.url, {}, false, { handoff: false, maxBufferedBytes: 64 * 1024 })
      const b = await nodes.start(suite.redis.url)
      await until(
        () => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1,
        5000,
        'live nodes',
      )
      const [onA = [], onB = []] = handled([a, b])
      const proxy = await startRoundRobin([a.base, b.base].map((base) => Number(new URL(base).port)))
      proxies.push(proxy)
      proxy.avoid.add(1)
      // The network goes as node A takes the client's third event: its ACK (due within 200 ms)
      // never reaches the client, which keeps all three to send again.
      a.app.parley.on('connection', (socket) =>
        socket.on('n', (n: number) => {
          if (n !== 3) return
          proxy.offline = true
          proxy.cut()
        }),
      )
      const client = connect(proxy.url, {
        transports: [transport],
        reconnectionDelay: 50,
        reconnectionDelayMax: 200,
      })
      // Why the session ended, as the application hears it: a `disconnect` while the client still
      // counted itself up, or a `connect_error` that says so once it had given up on its transport.
      const heard: unknown[] = []
      client.on('disconnect', (reason) => heard.push(reason))
      client.on('connect_error', (err) =>
        heard.push((err.details as { reason?: unknown } | undefined)?.reason),
      )
      try {
        await until(() => client.connected, 3000, 'connected to node A')
        const socket = a.sockets[0]!
        for (const n of [1, 2, 3]) client.emit('n', n)
        await until(() => onA.length === 3, 3000, 'node A handled 1, 2, 3')
        const reasons: string[] = []
        socket.on('disconnect', (reason) => reasons.push(reason))
        // Whatever node A sends now goes nowhere: the client is cut off.
        socket.emit('big', 'x'.repeat(100 * 1024))
        await until(() => reasons.length === 1, 3000, 'the session ended on node A')
        expect(reasons).toEqual([CloseReason.SLOW_CONSUMER])
        const sid = socket.session.sid
        const kept = await a.redis.pTTL(endedKey(sid))
        // Kept in Redis for as long as node A keeps it (the recovery window, 2 minutes).
        expect(kept).toBeGreaterThan(100_000)
        expect(kept).toBeLessThanOrEqual(120_000)

        // The network is back, but the balancer now sends the client to node B.
        proxy.avoid.clear()
        proxy.avoid.add(0)
        proxy.offline = false
        await until(() => heard.includes(CloseReason.SLOW_CONSUMER), 5000, 'the resume at node B answered')
        // Its next session is new, on node B; nothing node A handled goes into it.
        await until(() => client.connected, 5000, 'the client’s next session')
        expect(client.recovered).toBe(false)
        client.emit('n', 4)
        await until(() => onB.length > 0, 3000, 'node B handled 4')
        expect(onB).toEqual([4])
        expect(onA).toEqual([1, 2, 3])
        // The resume, and the session after it, went to node B.
        expect(proxy.forwarded[1]).toBeGreaterThanOrEqual(1)
      } finally {
        client.disconnect()
      }
    },
    35_000,
  )

  it('keeps the CLOSE and the ACK for every node, and answers nothing known while Redis is away', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const { socket } = await nodes.client(a!)
    const sid = socket.session.sid
    socket.disconnect()
    await until(() => b!.warnings.length === 0 && !socket.connected, 3000, 'the end')
    const close = {
      type: PacketType.CLOSE,
      reason: CloseReason.SERVER_DISCONNECT,
      message: expect.any(String),
    }
    let answer: unknown
    await until(
      () => {
        void Promise.resolve(b!.adapter.endedSession(sid)).then((found) => {
          answer = found
        })
        return answer !== undefined
      },
      3000,
      'the record, read on node B',
    )
    // With the route parameters it opened under: none, at a path without a prefix.
    expect(answer).toEqual({ close, ack: 0, params: {} })
    expect(await b!.adapter.endedSession('no-such-session')).toBeUndefined()

    await suite.redis.stop()
    try {
      await until(() => !b!.redis.isReady, 5000, 'node B sees Redis gone')
      // Neither call waits on Redis, nor throws: a resume then gets a new session, as before.
      expect(await b!.adapter.endedSession(sid)).toBeUndefined()
      expect(() =>
        b!.adapter.sessionEnded(
          'other',
          { close: { type: PacketType.CLOSE, reason: CloseReason.SERVER_DISCONNECT, message: 'm' }, ack: 3 },
          1000,
        ),
      ).not.toThrow()
      expect(b!.warnings.some((line) => line.includes('could not read how a resumed session ended'))).toBe(
        true,
      )
    } finally {
      await suite.redis.restart()
    }
  })

  it('cuts a long CLOSE message, keeping the reason and the ACK whole', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const close = {
      type: PacketType.CLOSE,
      reason: CloseReason.SESSION_EXPIRED,
      message: 'm'.repeat(10_000),
      retryAfter: 5,
    } as const
    a!.adapter.sessionEnded('long', { close, ack: 7 }, 60_000)
    let answer: { close: { message: string }; ack: number } | undefined
    await until(
      () => {
        void b!.adapter.endedSession('long').then((found) => {
          answer = found
        })
        return answer !== undefined
      },
      3000,
      'the record',
    )
    expect(answer).toEqual({ close: { ...close, message: 'm'.repeat(MAX_ENDED_MESSAGE) }, ack: 7 })
  })

  it('keeps at most MAX_ENDED_RECORDS of one node’s ends alive in Redis: past it none is written, with one warning', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    const ending = {
      close: { type: PacketType.CLOSE, reason: CloseReason.SERVER_DISCONNECT, message: 'bye' },
      ack: 0,
    } as const
    // Longer than the test: none expires meanwhile (the count of those that did is ended-cap.test.ts's).
    const ttl = 60_000
    const over = 100
    const total = MAX_ENDED_RECORDS + over
    // In batches the adapter sends at once (it holds at most MAX_UNANSWERED_COMMANDS unanswered),
    // each answered before the next: a PING is answered after every SET sent before it.
    for (let from = 0; from < total; from += MAX_UNANSWERED_COMMANDS / 2) {
      const to = Math.min(total, from + MAX_UNANSWERED_COMMANDS / 2)
      for (let i = from; i < to; i++) a.adapter.sessionEnded(`storm-${i}`, ending, ttl)
      await a.redis.ping()
    }
    const key = (i: number) => endedKey(`storm-${i}`)
    expect(await a.redis.exists(Array.from({ length: MAX_ENDED_RECORDS }, (_, i) => key(i)))).toBe(
      MAX_ENDED_RECORDS,
    )
    expect(await a.redis.exists(Array.from({ length: over }, (_, i) => key(MAX_ENDED_RECORDS + i)))).toBe(0)
    const capped = a.warnings.filter((line) => line.includes('records of sessions this node ended'))
    expect(capped).toHaveLength(1)
    expect(a.warnings.filter((line) => line.includes('could not keep how a session ended'))).toEqual([])
    await a.redis.del(Array.from({ length: MAX_ENDED_RECORDS }, (_, i) => key(i)))
  })
})
