// A whole test cluster: a throwaway Redis, three node processes on it (./node.ts) and nginx
// round-robin in front of them, as docs/scaling.md describes. Plus the client-side helpers
// the cluster suites share.
// By path, not by name: the bench (bench/src/rolling.ts) runs this file too, and resolves
// @parley/client to its build.
import type { Socket } from '../../packages/client/src/index.js'
import { type Nginx, type StartNginxOptions, skipNginxSuites, startNginx } from '../support/nginx.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../support/redis-server.js'
import { type ClusterNode, type NodeOptions, startNode, startNodes } from './nodes.js'

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
  /**
   * Restarts `nodes[index]` as a deploy does: a new process with the same name starts, then
   * the old one gets SIGTERM (it drains, then closes) and the new one takes its port. Resolves
   * with the old process (its output stays readable) once every node sees every other one.
   * `phase` hears how long each step took, in ms: `loaded` (the new process ready), `drained`
   * (the old one drained and exited), `listening` (the new one on the port), `seen` (every node
   * sees every other one).
   */
  restart(index: number, phase?: (step: RestartStep, ms: number) => void): Promise<ClusterNode>
  /** Starts the process that `restart(index)` will use ahead, so that it has loaded by then. */
  prepare(index: number): void
  /** Stops nginx, ends every node's sessions, stops the nodes (SIGTERM), then Redis. */
  stop(): Promise<void>
}

/** The steps of `Cluster.restart`, in order. */
export type RestartStep = 'loaded' | 'drained' | 'listening' | 'seen'

/** A node process started ahead of a restart. */
interface Standby {
  /** Resolves once it loaded (it then waits for its port); rejects if it failed before. */
  ready: Promise<void>
  started: Promise<ClusterNode>
}

export async function startCluster(
  names = ['n1', 'n2', 'n3'],
  options: NodeOptions = {},
  nginxOptions: StartNginxOptions = {},
): Promise<Cluster> {
  const redis = await startRedis()
  let nodes: ClusterNode[] = []
  // Ends node processes still starting when the cluster stops (standbys, a restart cut short).
  const starts = new AbortController()
  const standbys = new Map<number, Standby>()
  /** A process that will take over `node`'s name and port once it exits. */
  const standby = (node: ClusterNode): Standby => {
    let ready: () => void = () => {}
    const isReady = new Promise<void>((resolve) => {
      ready = resolve
    })
    const started = startNode(node.name, redis.url, {
      ...options,
      port: node.port,
      onReady: ready,
      signal: starts.signal,
    })
    const loaded = Promise.race([isReady, started.then(() => {})])
    // A standby nobody waits for (the cluster stopped first, and killed it) must not be an
    // unhandled rejection.
    started.catch(() => {})
    loaded.catch(() => {})
    return { ready: loaded, started }
  }
  try {
    nodes = await startNodes(names, redis.url, options)
    await allSeeEachOther(nodes)
    const nginx = await startNginx(
      nodes.map((n) => n.port),
      nginxOptions,
    )
    return {
      redis,
      nodes,
      nginx,
      url: nginx.url,
      nodeAt: (address) => nodes.find((n) => address === `127.0.0.1:${n.port}`)?.name,
      prepare(index) {
        const node = nodes[index]
        if (node && !standbys.has(index)) standbys.set(index, standby(node))
      },
      async restart(index, phase) {
        const old = nodes[index]
        if (!old) throw new Error(`no node ${index}`)
        let since = performance.now()
        const step = (name: RestartStep) => {
          const now = performance.now()
          phase?.(name, now - since)
          since = now
        }
        // The new process is started ahead (a standby, as a deploy's new instance starts before
        // the old one stops): it loads, then waits for the port.
        const next = standbys.get(index) ?? standby(old)
        standbys.delete(index)
        await next.ready
        step('loaded')
        await old.stop()
        step('drained')
        nodes[index] = await next.started
        step('listening')
        await allSeeEachOther(nodes)
        step('seen')
        // The next standbys load while the cluster runs on, this node's too: it has the other
        // nodes' restarts to load in, where a loaded machine takes seconds.
        for (const [i, node] of nodes.entries()) {
          if (!standbys.has(i)) standbys.set(i, standby(node))
        }
        return old
      },
      async stop() {
        starts.abort()
        await nginx.stop()
        // Every node stops at once here: none could claim another's sessions (see endSessions).
        await Promise.all(nodes.map(endSessions))
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

/**
 * Ends every session of `node` (its test-only `POST /end-sessions`, see node.ts) before the
 * cluster stops: a draining node hands its sessions off and waits, up to its handoff timeout,
 * for other nodes to claim them, which nodes that drain at the same time never do. A node
 * already gone (killed by the test) is skipped; one that does not answer just drains as before.
 */
async function endSessions(node: ClusterNode): Promise<void> {
  if (!node.alive()) return
  try {
    const res = await fetch(`${node.url}/end-sessions`, { method: 'POST', signal: AbortSignal.timeout(5000) })
    await res.arrayBuffer()
  } catch {
    // Its SIGTERM drains what is left, as without this call.
  }
}

/**
 * Waits until every node sees every other one alive (their heartbeats, with their addresses,
 * went through Redis): before that, a node could not forward a request to another yet.
 */
async function allSeeEachOther(nodes: ClusterNode[]): Promise<void> {
  const end = performance.now() + 10_000
  for (const node of nodes) {
    for (;;) {
      const state = (await (await fetch(`${node.url}/cluster`)).json()) as { live: number }
      if (state.live === nodes.length - 1) break
      if (performance.now() > end)
        throw new Error(`${node.name} sees ${state.live} other nodes, not ${nodes.length - 1}`)
      await new Promise((r) => setTimeout(r, 50))
    }
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

/**
 * Moves nginx's round-robin on by one request (a GET that any node answers 404): the next
 * handshake lands on the next node, which spreads clients that connect one after the other.
 */
export async function nudge(cluster: Cluster, requests = 1): Promise<void> {
  for (let n = 0; n < requests; n++) {
    const res = await fetch(`${cluster.url}/round-robin-nudge`)
    await res.arrayBuffer()
  }
}

/**
 * Before another try at landing a client on a given node: moves the round-robin on by 0 to
 * (node count - 1) requests, drawn at random, so that the next handshake lands on any node
 * alike. A client makes about the same number of requests each try, and any fixed pattern of
 * nudges adds up with it to the same few positions: 1, 2, 3 nudges in turn over three nodes
 * reach only two of them, and a test that waited for the third failed after 30 tries.
 */
export async function redraw(cluster: Cluster): Promise<void> {
  await nudge(cluster, Math.floor(Math.random() * cluster.nodes.length))
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
