// A whole test cluster: a throwaway Redis, three node processes on it (./node.ts) and nginx
// round-robin in front of them, as docs/scaling.md describes. Plus the client-side helpers
// the cluster suites share.
import type { Socket } from '@parley/client'
import { type Nginx, skipNginxSuites, startNginx } from '../support/nginx.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../support/redis-server.js'
import { type ClusterNode, type NodeOptions, startNodes } from './nodes.js'

/** Whether to skip the cluster suites: both checks run, so a required one always fails loudly. */
export function skipClusterSuites(): boolean {
  const noRedis = skipRedisSuites()
  const noNginx = skipNginxSuites()
  return noRedis || noNginx
}

export interface Cluster {
  redis: RedisServer
  nodes: ClusterNode[]
  nginx: Nginx
  /** nginx's URL: where clients connect. */
  url: string
  /** The node listening on `127.0.0.1:<port>` (as nginx's log names it), by name. */
  nodeAt(address: string): string | undefined
  stop(): Promise<void>
}

export async function startCluster(names = ['n1', 'n2', 'n3'], options: NodeOptions = {}): Promise<Cluster> {
  const redis = await startRedis()
  let nodes: ClusterNode[] = []
  try {
    nodes = await startNodes(names, redis.url, options)
    const nginx = await startNginx(nodes.map((n) => n.port))
    return {
      redis,
      nodes,
      nginx,
      url: nginx.url,
      nodeAt: (address) => nodes.find((n) => address === `127.0.0.1:${n.port}`)?.name,
      async stop() {
        await nginx.stop()
        await Promise.all(nodes.map((n) => n.stop()))
        await redis.stop()
      },
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.kill()))
    await redis.stop()
    throw error
  }
}

/** Asks the node that owns the socket's session (the node's remote control, see node.ts). */
export function ask<T = unknown>(socket: Socket, event: string, ...args: unknown[]): Promise<T> {
  return (
    socket.timeout(8000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<T> }
  ).emitWithAck(event, ...args)
}

/** The node that owns the socket's session. */
export async function nodeOf(socket: Socket): Promise<string> {
  return (await ask<{ node: string }>(socket, 'whoami')).node
}

/**
 * A fetch that remembers the session id of each request it sends, so that a test can find
 * the session's requests in nginx's log (the client keeps its session id to itself).
 */
export function recordingFetch(): { fetch: typeof fetch; sids: Set<string> } {
  const sids = new Set<string>()
  return {
    sids,
    fetch: (input, init) => {
      const sid = new URL(String(input instanceof Request ? input.url : input)).searchParams.get('sid')
      if (sid) sids.add(sid)
      return fetch(input, init)
    },
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
