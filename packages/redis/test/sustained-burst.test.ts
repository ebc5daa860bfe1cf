// The steps of a handoff on a node in a burst that lasts longer than its `requestTimeout`
// (sessions opening on and on, each command answered in time: see `sustainedBurstOn`) take
// their turn behind the commands queued before them, rather than wait for the queue to empty,
// which never happens while the burst lasts: the claimer's marker and its read of the tail, the
// drain's handoff write. Starved, the claim was given back round after round, and its read of a
// tail sealed meanwhile refused: the claimer went on with an empty tail, and the client lost
// what its old node sent it after the freeze. Parley servers on one Redis, the real client
// behind a round-robin balancer.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { sustainedBurstOn } from './burst.js'
import {
  adapterOf,
  balancedSuite,
  roomClientOn,
  seesOthers,
  startTrafficNode,
  type TrafficNode,
} from './e2e-suite.js'
import { rawRedis } from './raw-redis.js'

/** The bursting node's `requestTimeout`: the burst lasts several times as long. */
const REQUEST_TIMEOUT = 1000

/** How long the burst lasts at most. */
const BURST_MS = 6 * REQUEST_TIMEOUT

/** `from`..`to`, in order. */
const numbers = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe.skipIf(skipRedisSuites())('a handoff on a node in a burst longer than requestTimeout', () => {
  const cleanups: (() => Promise<unknown>)[] = []
  const { suite, balance } = balancedSuite<TrafficNode>({
    afterNodes: async () => {
      for (const cleanup of cleanups.splice(0)) await cleanup()
    },
  })
  const { nodes, clients } = suite

  it('the claimer publishes its marker and reads the whole tail in turn: every event once, in order', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 1500 })
    // Its heartbeats far apart: the burst is the sessions opening alone.
    const b = await startTrafficNode(suite.redis.url, nodes, {
      requestTimeout: REQUEST_TIMEOUT,
      heartbeatInterval: 10_000,
    })
    await Promise.all([a, b].map((node) => adapterOf(node).ready()))
    await seesOthers(a)
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const { client, got } = await roomClientOn(balancer, a, clients)
    const id = client.id
    const emit = (from: number, to: number) => {
      for (const n of numbers(from, to)) a.started.app.parley.to('room').emit('room', n)
    }
    emit(1, 5)
    await until(() => got.length === 5, 3000, 'the first five, live')
    const burstEnds = performance.now() + BURST_MS
    const burst = sustainedBurstOn(raw, adapterOf(b), BURST_MS)
    try {
      // a drains: its client is told to resume, and reaches b, in its burst.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const closing = a.started.app.close()
      await until(() => !client.connected, 3000, 'the client told to move')
      // Sent after the freeze: into the session's tail, which b reads.
      emit(6, 10)
      await until(() => b.restored.length === 1, BURST_MS, 'the session taken over by b')
      const takenOver = performance.now()
      await within(closing, 8000, 'a closed')
      await until(() => got.length >= 10, 3000, 'the ten events')
      expect(got).toEqual(numbers(1, 10))
      // Taken over while the burst went on: every step of it took its turn.
      expect(takenOver).toBeLessThan(burstEnds)
      expect(client.id).toBe(id)
      expect(client.recovered).toBe(true)
      expect(b.warnings.filter((line) => line.includes('could not read the tail'))).toEqual([])
    } finally {
      await burst.stop()
    }
  }, 30_000)

  it('the draining node writes the snapshot and its tail in turn: the session moves, every event once, in order', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    // Its heartbeats far apart: the burst is the sessions opening alone.
    const a = await startTrafficNode(suite.redis.url, nodes, {
      requestTimeout: REQUEST_TIMEOUT,
      heartbeatInterval: 10_000,
    })
    const b = await startTrafficNode(suite.redis.url, nodes)
    await Promise.all([a, b].map((node) => adapterOf(node).ready()))
    await seesOthers(b)
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const { client, got } = await roomClientOn(balancer, a, clients)
    const id = client.id
    const emit = (from: number, to: number) => {
      for (const n of numbers(from, to)) a.started.app.parley.to('room').emit('room', n)
    }
    emit(1, 5)
    await until(() => got.length === 5, 3000, 'the first five, live')
    const burstEnds = performance.now() + BURST_MS
    const burst = sustainedBurstOn(raw, adapterOf(a), BURST_MS)
    try {
      // a drains in its burst: its client is told to resume, and reaches b.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const closing = a.started.app.close()
      await until(() => !client.connected, 3000, 'the client told to move')
      // Sent after the freeze: into the session's tail, appended in turn too.
      emit(6, 10)
      await until(() => b.restored.length === 1, BURST_MS, 'the session taken over by b')
      const takenOver = performance.now()
      await until(() => got.length >= 10, 3000, 'the ten events')
      expect(got).toEqual(numbers(1, 10))
      expect(client.id).toBe(id)
      expect(client.recovered).toBe(true)
      // Handed off while the burst went on: its write and appends took their turn.
      expect(takenOver).toBeLessThan(burstEnds)
      await within(closing, 8000, 'a closed')
    } finally {
      await burst.stop()
    }
  }, 30_000)
})
