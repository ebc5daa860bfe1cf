// Three Parley nodes on Redis behind nginx round-robin (no sticky sessions), with the Node
// client over each transport alone: every SSE or polling request may land on any node, which
// forwards it to the node that owns the session. Messages still arrive once and in order.
import type { TransportName } from '@parley/protocol'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { client, closeClients, next, until } from '../../packages/client/test/helpers.js'
import { startFaultProxy } from '../support/fault-proxy.js'
import { ask, type Cluster, nodeOf, recordingFetch, skipClusterSuites, startCluster } from './cluster.js'

const N = 2000
const transports: TransportName[] = ['websocket', 'sse', 'polling']
const options = { connectTimeout: 5000, ackTimeout: 8000 }

describe.skipIf(skipClusterSuites())('three nodes behind nginx round-robin', () => {
  let cluster: Cluster

  // Starting the nodes loads their bundle: seconds each on a loaded machine (as rooms.test.ts).
  beforeAll(async () => {
    cluster = await startCluster()
  }, 60_000)
  afterEach(() => closeClients())
  afterAll(async () => {
    await cluster?.stop()
  })

  /**
   * The nodes that served the requests of the sessions in `sids`, from nginx's log, which has
   * each session id cut to its first six characters and `...`.
   */
  function nodesServing(sids: Set<string>): Set<string> {
    const logged = new Set([...sids].map((sid) => `${sid.slice(0, 6)}...`))
    const served = new Set<string>()
    for (const r of cluster.nginx.requests()) {
      const sid = new URL(r.url, 'http://x').searchParams.get('sid')
      if (sid && logged.has(sid)) served.add(cluster.nodeAt(r.upstream) ?? r.upstream)
    }
    return served
  }

  describe.each(transports)('over %s alone', (transport) => {
    it('connects and answers acks from the node that owns the session', async () => {
      const socket = client(cluster.url, { ...options, transports: [transport] })
      await next(socket, 'connect', 10_000)
      expect(socket.transport).toBe(transport)
      const owner = await nodeOf(socket)
      expect(cluster.nodes.map((n) => n.name)).toContain(owner)
      for (let i = 0; i < 30; i++) {
        expect(await ask(socket, 'echo', { i, text: `héllo ${i}` })).toEqual({
          node: owner,
          value: { i, text: `héllo ${i}` },
        })
      }
      // The same answers when many acks are in flight at once.
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => ask(socket, 'echo', i)))
      expect(answers).toEqual(Array.from({ length: 50 }, (_, i) => ({ node: owner, value: i })))
    })

    it(`carries ${N} messages each way exactly once and in order`, async () => {
      const recorder = recordingFetch()
      const socket = client(cluster.url, { ...options, transports: [transport], fetch: recorder.fetch })
      const down: number[] = []
      socket.on('down', (n: number) => down.push(n))
      let connects = 0
      socket.on('connect', () => connects++)
      await next(socket, 'connect', 10_000)

      for (let i = 1; i <= N; i++) socket.emit('seq', i)
      await ask(socket, 'pump', N)
      await until(() => down.length >= N, 30_000, `${N} messages down (got ${down.length})`)
      // The session handled every `seq` before the `pump` that followed them. Counted in the
      // session's data, which travels with it: a node or this process held 2 s by a loaded
      // machine loses the WebSocket (1 s PINGs, a 1 s pingTimeout), and its resume, through
      // nginx, may move the session to another node, where a count kept by the node starts at 0.
      const report = await ask<{ count: number; last: number; faults: string[] }>(socket, 'seqReport')
      expect(report).toMatchObject({ count: N, last: N, faults: [] })
      expect(down).toEqual(Array.from({ length: N }, (_, i) => i + 1))
      expect(socket.transport).toBe(transport)
      // One session from start to end: never a new one in between.
      expect(connects).toBe(1)

      if (transport !== 'websocket') {
        // Round-robin spread the session's requests: more than one node served them.
        await until(() => nodesServing(recorder.sids).size > 1, 5000, 'requests served by several nodes')
        // The session id, a secret, is never in nginx's log whole.
        const whole = cluster.nginx
          .requests()
          .filter((r) => [...recorder.sids].some((sid) => r.url.includes(sid)))
        expect(whole).toEqual([])
      }
    }, 60_000)
  })

  // A node waits for its owner record in Redis before it answers a handshake: the client's
  // next request finds the session on whichever node nginx picks.
  it('finds a new SSE or polling session on every node from its first request', async () => {
    const errors: string[] = []
    for (let i = 0; i < 30; i++) {
      const transport = i % 2 === 0 ? 'sse' : 'polling'
      const socket = client(cluster.url, { ...options, transports: [transport] })
      socket.on('connect_error', (error) => errors.push(`${transport}: ${error.code}`))
      await next(socket, 'connect', 10_000)
      await ask(socket, 'whoami')
      await ask(socket, 'whoami')
      // Done with: left connected, its heartbeat (1 s PINGs, a 1 s pingTimeout) ran on through
      // the later ones, and a node or this process held 2 s by a loaded machine lost it, its
      // resume's failed tries counted here as errors of the first requests of sessions long
      // checked.
      socket.disconnect()
    }
    expect(errors).toEqual([])
  }, 60_000)

  it('keeps one session across transport switches whose requests land on different nodes', async () => {
    // A proxy before nginx refuses WebSocket, then lets it through, then cuts it: the client
    // steps down to SSE, climbs back to WebSocket and steps down again, and each new transport
    // reaches whichever node nginx picks.
    const proxy = await startFaultProxy(cluster.nginx.port)
    try {
      proxy.ws = 'reject'
      const recorder = recordingFetch()
      const socket = client(proxy.url, {
        ...options,
        transports: ['websocket', 'sse'],
        upgradeDelay: 300,
        upgradeDelayMax: 600,
        fetch: recorder.fetch,
      })
      const seen: string[] = []
      socket.on('transport', (now) => seen.push(String(now)))
      const down: number[] = []
      socket.on('down', (n: number) => down.push(n))
      const disconnects: string[] = []
      socket.on('disconnect', (reason) => disconnects.push(String(reason)))
      await next(socket, 'connect', 10_000)
      expect(socket.transport).toBe('sse')
      const id = socket.id

      // `seq`, whose count travels with the session: a WebSocket that reaches another node takes
      // the session over there (handoff), so a count kept per node would start again.
      let sent = 0
      const burst = async (n: number) => {
        for (let i = 0; i < n; i++) socket.emit('seq', ++sent)
        await ask(socket, 'pump', n)
      }
      await burst(100)

      proxy.ws = 'pass'
      await until(() => socket.transport === 'websocket', 10_000, 'climb back to websocket')
      await burst(100)

      proxy.ws = 'reject'
      proxy.cut('websocket')
      await until(() => socket.transport === 'sse' && socket.connected, 10_000, 'step down to sse')
      await burst(100)

      await until(() => down.length >= 300, 20_000, `300 messages down (got ${down.length})`)
      expect(down).toEqual(Array.from({ length: 300 }, (_, i) => (i % 100) + 1))
      const report = await ask<{ count: number; last: number; faults: string[] }>(socket, 'seqReport')
      expect(report).toMatchObject({ count: 300, last: 300, faults: [] })
      // One session all along: same socket id, nothing the application had to notice.
      expect(socket.id).toBe(id)
      expect(disconnects).toEqual([])
      expect(seen).toEqual(expect.arrayContaining(['sse', 'websocket']))
      await until(() => nodesServing(recorder.sids).size > 1, 5000, 'requests served by several nodes')
    } finally {
      await proxy.close()
    }
  }, 60_000)
})
