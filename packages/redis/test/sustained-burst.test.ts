// The steps of a handoff on a node in a burst that lasts longer than its `requestTimeout`
// (sessions opening on and on, each command answered in time: see `sustainedBurstOn`) take
// their turn behind the commands queued before them, rather than wait for the queue to empty,
// which never happens while the burst lasts: the claimer's marker and its read of the tail, the
// drain's handoff write. Starved, the claim was given back round after round, and its read of a
// tail sealed meanwhile refused: the claimer went on with an empty tail, and the client lost
// what its old node sent it after the freeze. Parley servers on one Redis, the real client
// behind a round-robin balancer.
import type { Socket } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { sustainedBurstOn } from './burst.js'
import {
  adapterOf,
  cleanedSuite,
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
  const { suite, balance, cleanups } = cleanedSuite<TrafficNode>()
  const { nodes, clients } = suite

  /** What a drain in a burst leaves to its test: the client moved, and when. */
  interface Moved {
    /** The claimer. */
    b: TrafficNode
    client: Socket
    /** What the client got in the room: 1 to 5 live, then 6 to 10 (sent after the freeze). */
    got: number[]
    /** The client's session id before the move. */
    id: string | undefined
    /** a's close, under way. */
    closing: Promise<unknown>
    /** When b had taken the session over, and when the burst was to end at the latest. */
    takenOver: number
    burstEnds: number
  }

  /**
   * Nodes a then b, the one `bursting` with REQUEST_TIMEOUT and its heartbeats far apart (the
   * burst is the sessions opening alone), the other with `options`, behind a balancer; a client
   * on a, in the room, got 1 to 5 live. Then, in a burst on the bursting node, a drains: its
   * client is told to resume and reaches b, 6 to 10 are sent after the freeze (into the
   * session's tail), and once b took the session over, `after` runs, the burst still on.
   */
  async function drainInBurst(
    bursting: 'a' | 'b',
    options: { handoffTimeout?: number },
    after: (moved: Moved) => Promise<void>,
  ): Promise<void> {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const burstOptions = { requestTimeout: REQUEST_TIMEOUT, heartbeatInterval: 10_000 }
    const a = await startTrafficNode(suite.redis.url, nodes, bursting === 'a' ? burstOptions : options)
    const b = await startTrafficNode(suite.redis.url, nodes, bursting === 'b' ? burstOptions : options)
    await Promise.all([a, b].map((node) => adapterOf(node).ready()))
    await seesOthers(bursting === 'a' ? b : a)
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
    const burst = sustainedBurstOn(raw, adapterOf(bursting === 'a' ? a : b), BURST_MS)
    try {
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const closing = a.started.app.close()
      await until(() => !client.connected, 3000, 'the client told to move')
      emit(6, 10)
      await until(() => b.restored.length === 1, BURST_MS, 'the session taken over by b')
      const takenOver = performance.now()
      await after({ b, client, got, id, closing, takenOver, burstEnds })
    } finally {
      await burst.stop()
    }
  }

  it(
    'the claimer publishes its marker and reads the whole tail in turn: every event once, in order',
    () =>
      drainInBurst(
        'b',
        { handoffTimeout: 1500 },
        async ({ b, client, got, id, closing, takenOver, burstEnds }) => {
          await within(closing, 8000, 'a closed')
          await until(() => got.length >= 10, 3000, 'the ten events')
          expect(got).toEqual(numbers(1, 10))
          // Taken over while the burst went on: every step of it took its turn.
          expect(takenOver).toBeLessThan(burstEnds)
          expect(client.id).toBe(id)
          expect(client.recovered).toBe(true)
          expect(b.warnings.filter((line) => line.includes('could not read the tail'))).toEqual([])
        },
      ),
    30_000,
  )

  it(
    'the draining node writes the snapshot and its tail in turn: the session moves, every event once, in order',
    () =>
      drainInBurst('a', {}, async ({ client, got, id, closing, takenOver, burstEnds }) => {
        await until(() => got.length >= 10, 3000, 'the ten events')
        expect(got).toEqual(numbers(1, 10))
        expect(client.id).toBe(id)
        expect(client.recovered).toBe(true)
        // Handed off while the burst went on: its write and appends took their turn.
        expect(takenOver).toBeLessThan(burstEnds)
        await within(closing, 8000, 'a closed')
      }),
    30_000,
  )
})
