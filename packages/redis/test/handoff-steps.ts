// What the handoff suites (handoff.test.ts, handoff-goodbyes.test.ts, handoff-take-backs.test.ts)
// do to their nodes: open a session, hand it off, cut a node off from Redis, take a claim over, and
// watch the claimers' waits for a seal.
import type { ClaimAnswer } from '@parley/server'
import { expect, vi } from 'vitest'
import type { TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import {
  type FakeCluster,
  type FakeNode,
  type FakeSocket,
  HeldInOrder,
  snapshotOf,
  won,
} from './handoff-support.js'

export const TTL = 60_000

/** The longest Redis holds a burst's writes, should a test fail before it lets them go. */
export const PAUSE_MS = 5000

/** A session `sid` with socket `id` on `node`, in `rooms`, its owner record written. */
export async function open(
  node: FakeNode,
  sid: string,
  id: string,
  rooms: string[] = [],
): Promise<FakeSocket> {
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, ...rooms])
  await node.adapter.sessionOpened(sid)
  return socket
}

/** Hands `sid` off as the server does: from the snapshot on, what the socket gets goes to the tail. */
export async function handOff(
  node: FakeNode,
  socket: FakeSocket,
  sid: string,
  rooms: string[] = [],
  ttl = TTL,
  snapshot = snapshotOf(sid, socket.id, rooms),
) {
  socket.handedOff = (text) => node.adapter.appendHandOff(sid, text)
  return node.adapter.handOff(snapshot, ttl)
}

/**
 * `sid`'s snapshot is stored from `node`, whose way to Redis is `proxy`; then `node` is cut off
 * from Redis and the session ends there: its withdraw waits for Redis.
 */
export async function endWhileCutOff(
  node: FakeNode,
  proxy: TcpProxy,
  sid: string,
  id: string,
): Promise<void> {
  const socket = await open(node, sid, id)
  expect(await handOff(node, socket, sid)).toBe(true)
  proxy.offline = true
  await until(() => !node.redis.isReady, 3000, 'cut off from Redis')
  node.sockets.sessions.delete(sid)
  await node.adapter.withdrawHandOff(sid)
}

/**
 * A new node of `cluster`, live for `b`, that reaches Redis through `proxy`: a link the test takes
 * down (see `cutOff`). Its requestTimeout (5 s) outlasts the cut.
 */
export async function behind(proxy: TcpProxy, cluster: FakeCluster, b: FakeNode): Promise<FakeNode> {
  const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`, { requestTimeout: 5000 })
  await until(() => b.adapter.liveNodes.includes(a.adapter.node), 3000, 'a live')
  return a
}

/** Takes `node`'s link to Redis (`proxy`) down, and waits until its client sees it gone. */
export async function cutOff(node: FakeNode, proxy: TcpProxy): Promise<void> {
  proxy.offline = true
  await until(() => !node.redis.isReady, 3000, 'a cut off from Redis')
}

/** The UNDO of a handoff's write given up on (see `UNDO` in src/handoff.ts), as a node sends it. */
export const isUndo = (args: string[]) =>
  args[1]?.includes("'HMGET', KEYS[2], 'write', 'claimed', 'taken'") === true

/** The heartbeat script (see `HEARTBEAT` in src/nodes.ts), as a node sends it. */
export const isHeartbeat = (args: string[]) => args[1]?.includes("'ZREMRANGEBYSCORE'") === true

/**
 * Holds back `node`'s heartbeats, unanswered, until `release`: its record lapses while it goes
 * on (a stalled process, a Redis slow to answer its connection), the rest of its commands
 * answered as ever.
 */
export function lapse(node: FakeNode): { release(): void } {
  const held = new HeldInOrder(node.redis, isHeartbeat, isHeartbeat)
  node.hold = held.hold
  return {
    release: () => {
      node.hold = undefined
      void held.runAll()
    },
  }
}

/**
 * `promise`'s value when it settles on microtasks alone, before the next turn of the event loop
 * (no timer, no answer from Redis); 'waited' when it did not.
 */
export function beforeAnyIo<T>(promise: Promise<T>): Promise<T | 'waited'> {
  return Promise.race([promise, new Promise<'waited'>((resolve) => setImmediate(() => resolve('waited')))])
}

/**
 * Watches the claimers' waits for a seal (`sealWaits`) until `stop`: how many began, and how many
 * ran out. With 'never', none runs out: a takeover that ends at all was ended by what it waited
 * for (a seal, the old node leaving). What ended a wait is then known without reading the clock,
 * which on a loaded machine measures the load. With 'at once', each wait runs out on the next
 * turn of the event loop rather than after SEAL_WAIT_MS (3 s): for a test whose seal cannot
 * come, and which asserts what follows the bound, not its length. With 'by hand', each runs out
 * when the test calls `runOut`: once what the claimer is to read after its bound is in Redis.
 */
export function watchSealWaits(mode: 'real' | 'never' | 'at once' | 'by hand' = 'real') {
  const pending: (() => void)[] = []
  const waits = {
    began: 0,
    ranOut: 0,
    stop: () => spy.mockRestore(),
    /** With 'by hand': the waits begun so far run out now. */
    runOut: () => {
      for (const ranOut of pending.splice(0)) ranOut()
    },
  }
  const start = sealWaits.start
  const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
    waits.began++
    if (mode === 'never') return () => {}
    let over = false
    const ranOut = () => {
      if (over) return
      over = true
      waits.ranOut++
      wake()
    }
    if (mode === 'real') return start(ranOut)
    if (mode === 'by hand') {
      pending.push(ranOut)
      return () => {
        over = true
      }
    }
    const timer = setTimeout(ranOut, 0)
    return () => clearTimeout(timer)
  })
  return waits
}

/**
 * A claim's answer when nothing is stored and `node`, another live node, owns the session
 * (`ClaimMissed`).
 */
export const owned = (node: FakeNode) => ({ missed: 'owned', node: node.adapter.node, live: true })

/** Takes `result` over on `node` as the server does: the socket exists, `join` puts it in its rooms. */
export function takeOver(node: FakeNode, result: ClaimAnswer | undefined) {
  const claim = won(result)
  const { sid, id, rooms } = claim.snapshot
  const socket = node.sockets.add(id, sid)
  let joins = 0
  const done = claim.takeOver(() => {
    joins++
    node.adapter.addAll(id, [id, ...rooms])
  })
  return { socket, done, joins: () => joins }
}

/**
 * a hands `sid` off and its write is held, then given up (the server stops waiting: the session
 * goes on at a, and its take-back waits behind the write); b claims the write in between and
 * reads the tail without a's seal, which is held until the test runs a's steps (`slow`), so b's
 * wait for it runs out at once. What b read (`tail`) and its waits for the seal (`waits`) are the
 * caller's to check.
 */
export async function claimedBeforeTakeBack(cluster: FakeCluster, sid: string) {
  const [a, b] = await cluster.start(2)
  const socket = await open(a!, sid, 's1')
  const step = (args: string[]) =>
    args[0] === 'EVAL' && args.some((arg) => arg.startsWith(`${cluster.prefix}:handoff:`))
  const slow = new HeldInOrder(a!.redis, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true, step)
  a!.hold = slow.hold
  const answer = handOff(a!, socket, sid)
  void a!.adapter.withdrawHandOff(sid)
  await slow.runFirst()
  const claim = won(await b!.adapter.claimSession(sid))
  const waits = watchSealWaits('at once')
  const tail = await takeOver(b!, claim).done
  waits.stop()
  return { a: a!, b: b!, slow, answer, claim, tail, waits }
}

/**
 * Heartbeats for the tests that cut a node's connection to Redis, so that its record outlives the
 * cut by far. With the tests' 300 ms heartbeats it lasts 900 ms, which the reconnection took on a
 * loaded machine: the node's next beat found its record gone, took Redis for restarted empty, and
 * its claims answered 'retry' (Redis being refilled) where the test waits for the session's own
 * answer (seen: 'expected "retry" to be null', 4 runs in 5 at a load average of 20).
 */
export const OUTLIVE_CUTS = { heartbeatInterval: 2000 }
