// The scene of the tests of a takeover that joins its socket before its claim marker came back
// (see src/uncut-sockets.ts): the claimer's subscriber is held, so that neither the marker nor
// what comes after it reaches the claimer until the test lets it read.
import type { BroadcastReply, SessionClaim } from '@parley/server'
import { until } from '../../server/test/helpers.js'
import {
  type FakeCluster,
  type FakeNode,
  type FakeSocket,
  HeldInOrder,
  handedOffSession,
  handoffNodes,
  type handoffScenes,
  message,
  sealWaitsByHand,
  takeOverOn,
  to,
  untilTailSealed,
  won,
} from './handoff-support.js'

/** The claimer's read of the tail (see FINISH in handoff.ts): its two keys, for a takeover. */
export const isTailRead = (args: string[]) =>
  args[0] === 'EVAL' && args[4]?.endsWith(':tail') === true && args[5] === '1'

export interface UncutScene {
  cluster: FakeCluster
  /** The old node, b the claimer, c a third. */
  a: FakeNode
  b: FakeNode
  c: FakeNode
  /** The waits for the seal, run out by hand. */
  waits: ReturnType<typeof sealWaitsByHand>
  /** b's claim of the session, won, not taken over yet (see `takeOver` for the usual way). */
  claim: SessionClaim
  /** Lets b's subscriber read again what Redis sent it meanwhile (once; later calls do nothing). */
  release(): void
  /** b's takeover of the session, once its marker reached a and a sealed the tail. */
  takeOver(): Promise<ReturnType<typeof takeOverOn>>
  /**
   * b's takeover (as `takeOver`) with the answer to its read of the tail held back; then the wait
   * for the seal runs out, and b joins the socket and sends the read. Redis runs it, and every
   * later command of b, as they come; their answers wait behind the read's, in order, as on one
   * connection, until `tailRead.runAll()`.
   */
  joinReadHeld(): Promise<ReturnType<typeof takeOverOn> & { tailRead: HeldInOrder }>
}

/**
 * Nodes a, b and c on a scene of `handoffScenes` (b's subscriber through its proxy); `before`
 * sets them up further (what it returns is given to `body`); session `sid` handed off on a and
 * won by b's claim; then b's subscriber stops reading, and `body` runs. Whatever becomes of it,
 * b's subscriber is let go and the waits for the seal are theirs again.
 */
export async function uncutScene<T = undefined>(
  scene: ReturnType<typeof handoffScenes>,
  { sid, before }: { sid: string; before?: (nodes: { a: FakeNode; b: FakeNode; c: FakeNode }) => T },
  body: (scene: UncutScene, setUp: T) => Promise<void>,
): Promise<void> {
  const { proxy, cluster } = await scene()
  const waits = sealWaitsByHand()
  let release: (() => void) | undefined
  try {
    const [a, b, c] = await handoffNodes(cluster, { subscriberVia: proxy })
    const setUp = before?.({ a, b, c }) as T
    await handedOffSession(a, sid)
    const claim: SessionClaim = won(await b.adapter.claimSession(sid))
    release = proxy.holdDownstream()
    const takeOver = async () => {
      const takeover = takeOverOn(b, claim, sid)
      await until(() => a.sockets.claims.includes(sid) && waits.began === 1, 5000, 'the marker at a')
      await untilTailSealed(cluster, a)
      return takeover
    }
    await body(
      {
        cluster,
        a,
        b,
        c,
        waits,
        claim,
        release() {
          release?.()
          release = undefined
        },
        takeOver,
        async joinReadHeld() {
          const tailRead = new HeldInOrder(b.redis, isTailRead, () => true)
          tailRead.sendAll()
          b.hold = tailRead.hold
          const takeover = await takeOver()
          waits.runOut()
          await until(() => b.commands.some(isTailRead), 5000, 'the tail read sent')
          return { ...takeover, tailRead }
        },
      },
      setUp,
    )
  } finally {
    release?.()
    waits.stop()
  }
}

/** A socket 'w' of `node` in room 'r': what it got is what `node`'s subscriber read. */
export function watcherOn(node: FakeNode): FakeSocket {
  const watcher = node.sockets.add('w')
  node.adapter.addAll('w', ['w', 'r'])
  return watcher
}

/**
 * A `before` for `uncutScene` with sockets that tell what b's subscriber read: c's watcher 'cw'
 * (in room 'r') takes b's question when Redis runs it, and b's watcher 'bw' (in room 'after')
 * then takes what c sends after it: once it has, b read its question back.
 */
export function readBackWatchers({ b, c }: { b: FakeNode; c: FakeNode }) {
  const seenAtC = c.sockets.add('cw')
  c.adapter.addAll('cw', ['cw', 'r'])
  const seenAtB = b.sockets.add('bw')
  b.adapter.addAll('bw', ['bw', 'after'])
  return { seenAtC, seenAtB }
}

/** Asks room 'r' from `node` (event 'ask', `what` its argument): its count and replies, as they come. */
export function askRoom(node: FakeNode, what: string) {
  const asked: { count: number | undefined; replies: BroadcastReply[] } = { count: undefined, replies: [] }
  node.adapter.broadcastWithAck(
    message('ask', [what]),
    to(['r']),
    10_000,
    (count) => {
      asked.count = count
    },
    (reply) => asked.replies.push(reply),
  )
  return asked
}

/** Waits until the question `askRoom` asked has its count and as many replies. */
export function allAnswered(asked: ReturnType<typeof askRoom> | undefined): Promise<void> {
  return until(
    () => asked?.count !== undefined && asked.replies.length >= asked.count,
    5000,
    'the count and replies of the question',
  )
}
