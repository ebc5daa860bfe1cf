// A resume's claim on a node in a burst (`MAX_UNANSWERED_COMMANDS` commands in flight on its
// Redis connection: a thousand sessions opening at once, a burst of broadcasts) waits its turn
// behind them, bounded, instead of being refused: refused, the client was told to try again, a
// round for nothing, and as many as the burst lasted. And an owner record that waited its turn
// past the handshake's wait for it, written late: the session's move from that node goes behind
// it on the same connection, so the record never names the node it left. Parley servers on one
// Redis, the real client behind a round-robin balancer, and a real Redis that holds the burst's
// writes for a moment (see `burstOn`).
import { connect } from '@parley/client'
import { defaults, MAX_QUEUED_COMMANDS, MAX_UNANSWERED_COMMANDS, RedisErrorCode } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { until, within } from '../../server/test/helpers.js'
import { type RawClient, rawConnect } from '../../server/test/raw-client.js'
import { sidHash } from '../src/sessions.js'
import { burstOn } from './burst.js'
import {
  adapterOf,
  cleanedSuite,
  seesOthers,
  startTrafficNode,
  type TrafficNode,
  toldTo,
} from './e2e-suite.js'
import { type RawRedis, rawRedis } from './raw-redis.js'

/** The longest Redis holds the burst, should the test fail before it lets it go. */
const PAUSE_MS = 5000

/** How long `MAX_QUEUED_COMMANDS` owner records may take to be written once Redis answers again. */
const RECORDS_WITHIN_MS = 30_000

describe.skipIf(skipRedisSuites())('a claim on a node in a burst', () => {
  const { suite, balance, cleanups } = cleanedSuite<TrafficNode>()
  const { nodes, clients } = suite

  /**
   * `node` in a burst the moment a resume's claim reaches it: Redis holds its writes, it
   * broadcasts `MAX_UNANSWERED_COMMANDS` times (see `burstOn`), then claims, and Redis answers
   * again; `behind` runs right after the claim is asked, to queue more behind it. `claims`
   * counts the claims asked of it.
   */
  function burstingAtClaim(raw: RawRedis, node: TrafficNode, behind: () => void = () => {}) {
    const adapter = adapterOf(node)
    const state = { claims: 0 }
    const claim = adapter.claimSession.bind(adapter)
    adapter.claimSession = async (sid, params) => {
      if (state.claims++ > 0) return claim(sid, params)
      await burstOn(raw, node.started, PAUSE_MS)
      const answer = claim(sid, params)
      behind()
      void raw.sendCommand(['CLIENT', 'UNPAUSE'])
      return answer
    }
    return state
  }

  it('waits its turn: the client resumes at its first try, its session whole', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const a = await startTrafficNode(suite.redis.url, nodes)
    // Its heartbeats far apart: none is in flight in the burst.
    const b = await startTrafficNode(suite.redis.url, nodes, { heartbeatInterval: 10_000 })
    await Promise.all([a, b].map((node) => adapterOf(node).ready()))
    await seesOthers(a)
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const client = connect(`${balancer.url}/parley`, {
      transports: ['websocket'],
      reconnectionDelay: 50,
      storage: memoryStorage(),
    })
    clients.push(client)
    // What the client was told: a refusal has a code of its own.
    const { refused, lost } = toldTo(client)
    await until(() => client.connected && a.connections.length === 1, 3000, 'the client on a')
    const id = client.id
    const burst = burstingAtClaim(raw, b)
    try {
      // a drains: the client is told to resume, and its resume reaches b, in a burst.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const closing = a.started.app.close()
      await until(() => b.restored.length === 1, 5000, 'the session taken over by b')
      await within(closing, 8000, 'a closed')
      client.emit('up', 1)
      await until(() => b.received.length === 1, 3000, 'the next message, on b')

      expect(burst.claims).toBe(1)
      expect(refused).toEqual([])
      expect(lost).toEqual([])
      expect(client.id).toBe(id)
      expect(client.recovered).toBe(true)
      expect(b.received).toEqual([1])
      expect(b.connections).toHaveLength(0)
      expect(b.warnings.filter((line) => line.includes('could not be looked up'))).toEqual([])
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  }, 25_000)

  it('an owner record written late, after the handshake went on without it, never names the node a session moved from', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const a = await startTrafficNode(suite.redis.url, nodes, { heartbeatInterval: 10_000 })
    const b = await startTrafficNode(suite.redis.url, nodes)
    await Promise.all([a, b].map((node) => adapterOf(node).ready()))
    await seesOthers(a)
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    try {
      // The session opens on a in a burst: its handshake stops waiting for its record
      // (OWNER_RECORD_WAIT_MS) while Redis holds it.
      await burstOn(raw, a.started, PAUSE_MS)
      const client = connect(`${balancer.url}/parley`, {
        transports: ['websocket'],
        reconnectionDelay: 50,
        storage: memoryStorage(),
      })
      clients.push(client)
      await until(() => client.connected && a.connections.length === 1, 5000, 'the client on a')
      const id = client.id
      const sid = a.connections[0]!.session.sid
      const owner = `${defaults.prefix}:session:${sidHash(sid)}`
      expect(await raw.get(owner)).toBeNull()
      // a drains before its record is written: the session moves to b, whose claim names b.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const closing = a.started.app.close()
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      await until(() => b.restored.length === 1, 5000, 'the session taken over by b')
      await within(closing, 8000, 'a closed')
      // a's record went before its handoff, on its one connection: the claim came after both.
      expect(await raw.get(owner)).toBe(adapterOf(b).node)
      expect(await adapterOf(b).sessionOwner(sid)).toBe('local')
      expect(client.id).toBe(id)
      expect(client.recovered).toBe(true)
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it('a resume of a session no node holds gets a new session at its first try, not a try again', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    // Its heartbeats far apart: none is in flight in the burst.
    const node = await startTrafficNode(suite.redis.url, nodes, { heartbeatInterval: 10_000 })
    const adapter = adapterOf(node)
    await adapter.ready()
    // Twice as many sessions open as its connection holds, behind the claim: the burst is still
    // on when the claim's answer (nothing to claim) asks whether Redis lost its data.
    const burst = burstingAtClaim(raw, node, () => {
      for (let i = 0; i < 2 * MAX_UNANSWERED_COMMANDS; i++) adapter.sessionOpened(`sid-opening-${i}`)
    })
    try {
      const resume = rawConnect('websocket', node.started.base, { sid: 'sid-gone', ack: 2 }).then(
        (client): { client?: RawClient; err?: unknown } => ({ client }),
        (err: unknown): { client?: RawClient; err?: unknown } => ({ err }),
      )
      const { client, err } = await within(resume, 5000, 'the answer to the resume')
      if (!client) throw err
      cleanups.push(async () => client.close())
      expect(client.open).toMatchObject({ recovered: false })
      expect(client.sid).not.toBe('sid-gone')
      expect(burst.claims).toBe(1)
      expect(node.warnings.filter((line) => line.includes('refilled'))).toEqual([])
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })

  it(
    'past MAX_QUEUED_COMMANDS waiting, a resume is told to try again, warned with PARLEY_REDIS_BUSY',
    async () => {
      const raw = await rawRedis(suite.redis.url, cleanups)
      const node = await startTrafficNode(suite.redis.url, nodes, { heartbeatInterval: 10_000 })
      const adapter = adapterOf(node)
      await adapter.ready()
      try {
        await burstOn(raw, node.started, PAUSE_MS)
        // As many sessions opening on it as wait their turn at most: the claim finds no place.
        const opened = Array.from({ length: MAX_QUEUED_COMMANDS }, (_, i) =>
          adapter.sessionOpened(`sid-opening-${i}`),
        )
        expect(await adapter.claimSession('sid-resumed')).toBe('retry')
        const cannotAsk = node.warned.filter(({ message }) => message.includes('could not be looked up'))
        expect(cannotAsk).toHaveLength(1)
        expect(cannotAsk[0]!.details.code).toBe(RedisErrorCode.BUSY)
        expect(String(cannotAsk[0]!.details.err)).toContain(`and ${MAX_QUEUED_COMMANDS} waiting behind them`)
        // Never sent: nothing to take back.
        expect(node.warnings.filter((line) => line.includes('no answer'))).toEqual([])
        await raw.sendCommand(['CLIENT', 'UNPAUSE'])
        // Ten thousand writes: a loaded machine takes more than 5 s over them, and how long is not
        // what is tested (that none is given up is).
        await within(Promise.all(opened), RECORDS_WITHIN_MS, 'the records of the sessions opening')
      } finally {
        await raw.sendCommand(['CLIENT', 'UNPAUSE'])
      }
    },
    RECORDS_WITHIN_MS + 20_000,
  )
})
