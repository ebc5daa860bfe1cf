// Chat nodes on one Redis behind nginx round-robin, and a Chromium, for the browser suites that
// need a cluster: started once per suite, stopped by it.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import type { Browser } from 'playwright-core'
import { launchChromium } from '../../../test/support/chromium.js'
import { type Nginx, startNginx } from '../../../test/support/nginx.js'
import { freePort, type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'

export type ChatNode = { app: FastifyInstance; cluster: ChatCluster; port: number }

export interface ChatClusterRun {
  nodes: ChatNode[]
  nginx: Nginx
  browser: Browser
  /** Stops the browser, nginx, every node and Redis (whatever of them started). */
  stop(): Promise<void>
}

/**
 * Builds the page, starts Redis, `count` chat nodes on it, nginx over them and Chromium; resolves
 * once every node sees all the others (with their addresses), before any page comes.
 */
export async function startChatCluster(count: number): Promise<ChatClusterRun> {
  await promisify(execFile)(process.execPath, [fileURLToPath(new URL('../build.mjs', import.meta.url))])
  const nodes: ChatNode[] = []
  let redis: RedisServer | undefined
  let nginx: Nginx | undefined
  let browser: Browser | undefined
  const stop = async () => {
    await browser?.close()
    await nginx?.stop()
    for (const { app, cluster } of nodes) {
      await app.close()
      await cluster.close()
    }
    await redis?.stop()
  }
  try {
    redis = await startRedis()
    for (let i = 0; i < count; i++) {
      // The address is known before listening, so that the first heartbeat publishes it.
      const port = await freePort()
      const cluster = await connectRedis(redis.url, {
        label: `node ${i + 1}`,
        address: `http://127.0.0.1:${port}`,
      })
      const app = await buildChatApp({ adapter: cluster.adapter, store: cluster.store })
      await app.listen({ port, host: '127.0.0.1' })
      nodes.push({ app, cluster, port })
    }
    const end = Date.now() + 10_000
    while (!nodes.every((n) => (n.app.parley.adapter as RedisAdapter).liveNodes.length === count - 1)) {
      if (Date.now() > end) throw new Error('the nodes did not see each other within 10 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    nginx = await startNginx(nodes.map((n) => n.port))
    browser = await launchChromium()
    return { nodes, nginx, browser, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
