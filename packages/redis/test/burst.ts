import {
  MAX_QUEUED_COMMANDS,
  MAX_UNANSWERED_COMMANDS,
  type RedisAdapter,
  RedisErrorCode,
} from '@parley/redis'
import { until } from '../../server/test/helpers.js'
import { type FakeNode, HeldInOrder, message, to } from './handoff-support.js'
import type { TestNode } from './nodes.js'
import type { RawRedis } from './raw-redis.js'

/**
 * A burst on `node`, made with a real Redis: Redis holds every write (PUBLISH too) for at most
 * `pauseMs`, or until the test sends `CLIENT UNPAUSE`, and the node broadcasts
 * `MAX_UNANSWERED_COMMANDS` times meanwhile, so that its connection has that many commands in
 * flight at once, as a thousand sessions opening or ending at once would leave it. Reads of
 * other connections go on.
 */
export async function burstOn(raw: RawRedis, node: Pick<TestNode, 'app'>, pauseMs: number): Promise<void> {
  await raw.sendCommand(['CLIENT', 'PAUSE', String(pauseMs), 'WRITE'])
  for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++) node.app.parley.to('nobody').emit('burst', i)
}

/** As `burstOn`, for an adapter without a server (a node of handoff-support.ts' `FakeCluster`). */
export async function burstOnAdapter(
  raw: RawRedis,
  adapter: Pick<RedisAdapter, 'broadcast'>,
  pauseMs: number,
): Promise<void> {
  await raw.sendCommand(['CLIENT', 'PAUSE', String(pauseMs), 'WRITE'])
  for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++) adapter.broadcast(message('burst', [i]), to(['nobody']))
}

/**
 * A burst on `node` (a node of handoff-support.ts' `FakeCluster`) that fills the queue of the
 * commands waiting their turn (see `Commands.sendInTurn`): every command of its held unanswered
 * from now on, as by a Redis that answers its connection nothing, whatever the machine's load;
 * its broadcasts, `MAX_UNANSWERED_COMMANDS` of them, on their way, then `MAX_QUEUED_COMMANDS`
 * owner records of sessions opening waiting behind them, and one more, refused with
 * `PARLEY_REDIS_BUSY`: resolves once that one is warned, when the next command that waits its
 * turn is refused as busy too, and stays so (no answer frees a place) until `release()` has Redis
 * answer them all, in order.
 */
export async function queueFullOn(node: FakeNode): Promise<{ release: () => Promise<void> }> {
  const burst = await queueFilledOn(node, MAX_QUEUED_COMMANDS + 1)
  const busy = () => node.warned.some(({ details }) => details.code === RedisErrorCode.BUSY)
  await until(busy, 3000, 'an owner record refused as busy')
  return burst
}

/**
 * As `queueFullOn`, with `waiting` owner records in the queue (up to `MAX_QUEUED_COMMANDS`, those
 * past it refused), queued all at once right before this resolves (no timer, no answer of
 * Redis comes in between), so that a test can leave the queue's last places to commands of its
 * own.
 */
export async function queueFilledOn(
  node: FakeNode,
  waiting: number,
): Promise<{ release: () => Promise<void> }> {
  const held = new HeldInOrder(
    node.redis,
    () => true,
    () => true,
  )
  node.hold = held.hold
  // Redis answers one connection in order: once this is answered, so is every command the node
  // sent before the hold, and none answered later frees a place in the burst.
  await node.redis.sendCommand(['PING'])
  for (let i = 0; i < MAX_UNANSWERED_COMMANDS; i++)
    node.adapter.broadcast(message('burst', [i]), to(['nobody']))
  const opened = Array.from({ length: waiting }, (_, i) => node.adapter.sessionOpened(`sid-burst-${i}`))
  return {
    release: async () => {
      await held.runAll()
      await Promise.allSettled(opened)
    },
  }
}

/** Keeps Redis busy for `ARGV[1]` ms in one script: every connection waits meanwhile. */
const SPIN = `local t = redis.call('TIME')
local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1]) * 1000
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop
return 1`

/** How long each of a sustained burst's spins holds Redis (see `sustainedBurstOn`). */
const SPIN_MS = 25

/** How many owner records a sustained burst keeps on their way at once (see `sustainedBurstOn`). */
const KEPT_OPENING = 2 * MAX_UNANSWERED_COMMANDS + MAX_UNANSWERED_COMMANDS / 2

/**
 * A burst on `adapter` that goes on for `ms`, longer than its `requestTimeout`, while Redis
 * answers every command in time: sessions keep opening on it, `KEPT_OPENING` owner records on
 * their way at once, so that `MAX_UNANSWERED_COMMANDS` are in flight and more wait their turn
 * (see `Commands.sendInTurn`) the whole time; and Redis, held by `raw` in spins of `SPIN_MS`
 * one after another, answers them at a pace below theirs, each well within `requestTimeout`.
 * Ends at `ms`, or at `stop()`, which resolves once the records still on their way are written.
 */
export function sustainedBurstOn(
  raw: RawRedis,
  adapter: Pick<RedisAdapter, 'sessionOpened'>,
  ms: number,
): { stop: () => Promise<void>; opened: () => number } {
  const until = performance.now() + ms
  let stopped = false
  let onTheirWay = 0
  let opened = 0
  const records: Promise<void>[] = []
  const open = () => {
    while (onTheirWay < KEPT_OPENING) {
      onTheirWay++
      const record = adapter.sessionOpened(`sid-burst-${opened++}`).finally(() => onTheirWay--)
      records.push(record)
    }
  }
  open()
  const topUp = setInterval(() => {
    if (stopped || performance.now() >= until) clearInterval(topUp)
    else open()
  }, 5)
  const spinning = (async () => {
    while (!stopped && performance.now() < until) await raw.sendCommand(['EVAL', SPIN, '0', String(SPIN_MS)])
  })()
  return {
    opened: () => opened,
    stop: async () => {
      stopped = true
      clearInterval(topUp)
      await spinning
      await Promise.allSettled(records)
    },
  }
}
