// The scene of the tests where both the old node's and the claimer's subscribers may fall
// behind: a's and b's subscribers read Redis through proxies that can hold what Redis sends
// them, and the waits for the seal are run out by hand.
import { releaseAll } from '../../../test/support/release.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import {
  type FakeCluster,
  type FakeNode,
  type handoffScenes,
  proxiedTrio,
  sealWaitsByHand,
} from './handoff-support.js'

export interface ProxiedScene {
  cluster: FakeCluster
  /** The old node, b the claimer, c a third, reading Redis directly. */
  a: FakeNode
  b: FakeNode
  c: FakeNode
  /** The proxies of a's and b's subscribers. */
  aProxy: TcpProxy
  proxy: TcpProxy
  /** The waits for the seal, run out by hand. */
  waits: ReturnType<typeof sealWaitsByHand>
  /** The lets-go of what the body held: each is called at the end, whatever became of it. */
  releases: (() => void)[]
}

/**
 * Nodes a, b and c on a scene of `handoffScenes` (`aOptions`: a's own, and b's as `claimer`, see
 * `proxiedTrio`), then `body`. Whatever becomes of it, what it held is let go, the waits for the seal are theirs
 * again, and the nodes close, then a's proxy, which a's subscriber goes through.
 */
export async function proxiedScene(
  scene: ReturnType<typeof handoffScenes>,
  aOptions: { requestTimeout?: number; claimer?: { requestTimeout?: number } },
  body: (scene: ProxiedScene) => Promise<void>,
): Promise<void> {
  const { redis, proxy, cluster } = await scene()
  const aProxy = await startTcpProxy(redis.port)
  const waits = sealWaitsByHand()
  const releases: (() => void)[] = []
  try {
    const { claimer, ...ofA } = aOptions
    const { a, b, c } = await proxiedTrio(cluster, aProxy, proxy, ofA, claimer)
    await body({ cluster, a, b, c, aProxy, proxy, waits, releases })
  } finally {
    for (const release of releases) release()
    waits.stop()
    await releaseAll([() => cluster.close(), () => aProxy.close()])
  }
}

/**
 * Listens on the broadcast channel from here on, directly (no proxy holds it): true once a claim
 * marker of `node` was on it, so that what another node PUBLISHes next lands past it. A wait for
 * the seal that began says less: the marker is queued on `node`'s client, and may run after a
 * PUBLISH sent meanwhile on another connection. The listener is let go with `releases`.
 */
export async function markerOnChannel(
  cluster: FakeCluster,
  node: FakeNode,
  releases: (() => void)[],
): Promise<() => boolean> {
  let seen = false
  const listener = node.redis.duplicate()
  listener.on('error', () => {})
  await listener.connect()
  releases.push(() => listener.destroy())
  await listener.subscribe(`${cluster.prefix}:broadcast`, (text) => {
    const packet = JSON.parse(text) as { k?: unknown; n?: unknown }
    if (packet.k === 'claim' && packet.n === node.adapter.node) seen = true
  })
  return () => seen
}
