// A node whose subscriber, reaching Redis through a proxy, is cut and cannot connect again until
// the proxy is back online: what a request meets when it goes out while a node is live by its
// heartbeats yet hears nothing on the channels (see query-resubscribe, ack-broadcast-resubscribe).
import { expect } from 'vitest'
import type { TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import type { FakeNode, handoffScenes } from './handoff-support.js'

/**
 * Nodes `a` and `b` of a scene of `handoffScenes` (started here), on its Redis: `a` asks, with
 * `requestTimeout`; the subscriber of the one `deaf` names reaches Redis through the scene's
 * proxy, for `deafen` to cut. Not yet waited for live to each other: see `allLive`.
 */
export async function deafenable(
  scene: ReturnType<typeof handoffScenes>,
  deaf: 'a' | 'b',
  requestTimeout: number,
) {
  const { redis, proxy, cluster } = await scene()
  const subscriber = `redis://127.0.0.1:${new URL(proxy.url).port}`
  const a = await cluster.node(redis.url, { requestTimeout, ...(deaf === 'a' && { subscriber }) })
  const b = await cluster.node(redis.url, deaf === 'b' ? { subscriber } : {})
  return { proxy, cluster, a, b }
}

/** Until each of `nodes` takes every other one for live, and no other node. */
export function allLive(nodes: readonly FakeNode[]): Promise<void> {
  return until(() => nodes.every((node) => node.adapter.liveNodes.length === nodes.length - 1), 5000, 'live')
}

/** `node`'s subscriber, reaching Redis through `proxy`, is cut and cannot connect again. */
export async function deafen(node: FakeNode, proxy: TcpProxy): Promise<void> {
  proxy.offline = true
  await until(
    () => node.warnings.some((w) => w.includes('subscriber connection') && w.endsWith('by itself')),
    5000,
    'the subscriber cut',
  )
}

/** What `node` sent so far has run in Redis: its connection answered a PING sent after it. */
export async function ranInRedis(node: FakeNode): Promise<void> {
  expect(await node.redis.sendCommand(['PING'])).toBe('PONG')
}
