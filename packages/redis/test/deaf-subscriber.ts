// A node whose subscriber, reaching Redis through a proxy, is cut and cannot connect again until
// the proxy is back online: what a request meets when it goes out while a node is live by its
// heartbeats yet hears nothing on the channels (see query-resubscribe, ack-broadcast-resubscribe).
import { expect } from 'vitest'
import type { TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import type { FakeNode } from './handoff-support.js'

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
