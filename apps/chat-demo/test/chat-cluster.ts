// Chat nodes on one Redis behind nginx round-robin, and a Chromium, for the browser suites that
// need a cluster: started once per suite, stopped by it.
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import type { Browser } from 'playwright-core'
import { type Nginx, startNginx } from '../../../test/support/nginx.js'
import { holdPort, onFreePort, PortTaken } from '../../../test/support/ports.js'
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'
import { pageBuilt } from './page-build.js'

/**
 * `test/support/chromium.ts` loaded when a cluster first needs its own Chromium: it imports
 * playwright-core, most of a second to load, which `chat-cluster.test.ts` (a chat node alone,
 * no browser) would otherwise pay for nothing.
 */
async function launchChromium(): Promise<Browser> {
  const chromium = await import('../../../test/support/chromium.js')
  return chromium.launchChromium()
}

export type ChatNode = { app: FastifyInstance; cluster: ChatCluster; port: number }

/** What each node of a cluster is built with besides its Redis, name and port. */
export interface ChatNodeOptions {
  /**
   * The demo's `handoff` (Parley's: see `ChatAppOptions`): a suite that drains a node in each
   * test and does not test how the pages' returns are spread gives a shorter `retrySpread` than
   * the 1000 ms default, which each drain would otherwise wait up to at random.
   */
  handoff?: { timeout?: number; retrySpread?: number }
}

export interface ChatClusterRun {
  nodes: ChatNode[]
  nginx: Nginx
  browser: Browser
  /** Stops the browser (unless the caller gave it), nginx, every node and Redis (whatever of them started). */
  stop(): Promise<void>
}

/**
 * Starts one chat node on `port`; rejects with PortTaken when another process holds it. The
 * address is known before listening, so that the first heartbeat publishes it: the port is
 * held from the start and let go only for the moment it takes Fastify to bind it.
 */
export async function startChatNode(
  redisUrl: string,
  label: string,
  port: number,
  options: ChatNodeOptions = {},
): Promise<ChatNode> {
  const held = await holdPort(port)
  let cluster: ChatCluster | undefined
  let app: FastifyInstance | undefined
  try {
    cluster = await connectRedis(redisUrl, { label, address: `http://127.0.0.1:${port}` })
    app = await buildChatApp({
      adapter: cluster.adapter,
      store: cluster.store,
      ...(options.handoff ? { handoff: options.handoff } : {}),
    })
    await app.ready()
    held.release()
    await app.listen({ port, host: '127.0.0.1' })
    return { app, cluster, port }
  } catch (error) {
    held.release()
    // Closed, the adapter takes its record out of Redis: no node is left at another's port.
    await app?.close()
    await cluster?.close()
    // Taken all the same, in that moment.
    if ((error as { code?: string }).code === 'EADDRINUSE') throw new PortTaken(port, String(error))
    throw error
  }
}

/**
 * Builds the page (when stale), starts Redis, `count` chat nodes on it, nginx over them and
 * Chromium, or takes `browser`, which the caller launched and closes (a file whose other suites
 * use it too: one Chromium rather than two); resolves once every node sees all the others (with
 * their addresses), before any page comes.
 */
export async function startChatCluster(
  count: number,
  options: { browser?: Browser } & ChatNodeOptions = {},
): Promise<ChatClusterRun> {
  await pageBuilt()
  const nodes: ChatNode[] = []
  let redis: RedisServer | undefined
  let nginx: Nginx | undefined
  let browser: Browser | undefined
  const stop = async () => {
    if (browser !== options.browser) await browser?.close()
    await nginx?.stop()
    for (const { app, cluster } of nodes) {
      await app.close()
      await cluster.close()
    }
    await redis?.stop()
  }
  try {
    redis = await startRedis()
    const url = redis.url
    const { handoff } = options
    // Side by side: each start mostly waits on Redis and the binding of its port. A port free
    // when asked may be taken before the node binds it (by another file, or by a sibling here
    // that was handed the same one): then another one. Every node that started is kept, in
    // order, so that `stop` closes it even when a sibling failed.
    const starts = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        onFreePort((port) => startChatNode(url, `node ${i + 1}`, port, handoff ? { handoff } : {})),
      ),
    )
    for (const start of starts) if (start.status === 'fulfilled') nodes.push(start.value)
    const failed = starts.find((start): start is PromiseRejectedResult => start.status === 'rejected')
    if (failed) throw failed.reason
    const end = performance.now() + 10_000
    while (!nodes.every((n) => (n.app.parley.adapter as RedisAdapter).liveNodes.length === count - 1)) {
      if (performance.now() > end) throw new Error('the nodes did not see each other within 10 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    nginx = await startNginx(nodes.map((n) => n.port))
    browser = options.browser ?? (await launchChromium())
    return { nodes, nginx, browser, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
