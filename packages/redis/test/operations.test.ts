// Socket operations and session owners across three nodes joined by a real Redis.

import { createHash } from 'node:crypto'
import type { SocketDescription } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { ADDRESS_KEEP_MS } from '../src/nodes.js'
import { packSocket, packValue } from '../src/wire.js'
import { inbox, Nodes, redisSuite, type TestNode } from './nodes.js'

/** Waits until an async `check` holds, polling every 20 ms, at most `timeoutMs`. */
async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const end = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe.skipIf(skipRedisSuites())('socket operations over Redis', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const { raws } = suite

  it('fetches plain socket views from every node, and joins, leaves and disconnects across nodes', async () => {
    nodes = new Nodes()
    const [a, b, c] = await nodes.cluster(suite.redis.url)
    const a0 = await nodes.client(a!)
    const b0 = await nodes.client(b!)
    const c0 = await nodes.client(c!)
    const c1 = await nodes.client(c!)
    a0.socket.data.name = 'ada'
    b0.socket.data.name = 'bob'
    c0.socket.data = { name: 'cy', key: new Uint8Array([7, 8]) }
    for (const { socket } of [a0, b0, c0]) socket.join('team')

    const team = await a!.app.parley.in('team').fetchSockets()
    expect(team.map((s) => s.id).sort()).toEqual([a0.socket.id, b0.socket.id, c0.socket.id].sort())
    const bob = team.find((s) => s.id === b0.socket.id)!
    expect(bob.data).toEqual({ name: 'bob' })
    expect(bob.rooms).toEqual(new Set([b0.socket.id, 'team']))
    expect(bob.handshake).toMatchObject({ transport: 'websocket', address: '127.0.0.1' })
    const cy = team.find((s) => s.id === c0.socket.id)!
    expect(new Uint8Array((cy.data as { key: Uint8Array }).key)).toEqual(new Uint8Array([7, 8]))
    expect((await a!.app.parley.local.fetchSockets()).map((s) => s.id)).toEqual([a0.socket.id])
    expect(await b!.app.parley.fetchSockets()).toHaveLength(4)

    await a!.app.parley.in('team').socketsJoin('moved')
    expect([a0, b0, c0].every(({ socket }) => socket.rooms.has('moved'))).toBe(true)
    expect(c1.socket.rooms.has('moved')).toBe(false)
    await b!.app.parley.in('moved').except(c0.socket.id).socketsLeave('team')
    expect([a0, b0, c0].map(({ socket }) => socket.rooms.has('team'))).toEqual([false, false, true])

    await c!.app.parley.in('moved').except('team').disconnectSockets()
    await until(() => !a0.socket.connected && !b0.socket.connected, 5000, 'disconnects')
    expect(c0.socket.connected && c1.socket.connected).toBe(true)
    expect(a!.adapter.stats.incompleteRequests).toBe(0)
  })

  it('never takes a socket out of its own room: del and socketsLeave on every node leave it there', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const a0 = await nodes.client(a!)
    const b0 = await nodes.client(b!)
    const got = [inbox(a0.client), inbox(b0.client)]
    const ids = [a0.socket.id, b0.socket.id]
    for (const { socket } of [a0, b0]) socket.join('team')
    a!.adapter.del(a0.socket.id, a0.socket.id)
    await a!.app.parley.socketsLeave([...ids, 'team'])
    await b!.app.parley.in('team').socketsLeave(ids)
    expect([...a0.socket.rooms]).toEqual([a0.socket.id])
    expect([...b0.socket.rooms]).toEqual([b0.socket.id])
    // Reached by their own rooms from the other node, and left out by them as senders.
    a!.app.parley.to(b0.socket.id).emit('news', 'to b0')
    b!.app.parley.to(a0.socket.id).emit('news', 'to a0')
    a0.socket.broadcast.emit('news', 'all but a0')
    await until(() => got[0]!.length === 1 && got[1]!.length === 2, 5000, 'deliveries')
    expect(got).toEqual([['to a0'], ['to b0', 'all but a0']])
  })

  it('gathers answers until requestTimeout when a live node stays silent, and stops waiting for a node that drops out, saying so', async () => {
    nodes = new Nodes()
    // A prefix of its own: the ghost below haunts no other test.
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { requestTimeout: 300, prefix: 'haunted' })
    const b0 = await nodes.client(b!)
    // A ghost: its record says it is live, but nothing answers for it.
    await a!.redis.sendCommand(['SET', 'haunted:node:ghost', 'http://127.0.0.1:9', 'PX', '60000'])
    await a!.redis.sendCommand(['ZADD', 'haunted:nodes', String(Date.now()), 'ghost'])
    await until(() => a!.adapter.liveNodes.includes('ghost'), 5000, 'ghost live')

    expect((await a!.app.parley.fetchSockets()).map((s) => s.id)).toEqual([b0.socket.id])
    expect(a!.adapter.stats.incompleteRequests).toBe(1)
    expect(a!.warnings.some((w) => w.includes('1 did not answer within 300 ms'))).toBe(true)

    // A longer query: the ghost's record goes, and the query ends at a's next heartbeat.
    const slow = await nodes.start(suite.redis.url, { requestTimeout: 60_000, prefix: 'haunted' })
    await until(() => slow.adapter.liveNodes.length === 3, 5000, 'three others live')
    const fetching = slow.app.parley.in(b0.socket.id).fetchSockets()
    await a!.redis.sendCommand(['DEL', 'haunted:node:ghost'])
    expect((await fetching).map((s) => s.id)).toEqual([b0.socket.id])
    // Its record lapsed without a goodbye: it may hold sockets that the list lacks.
    expect(slow.adapter.stats.incompleteRequests).toBe(1)
    expect(slow.warnings.filter((w) => w.includes('cluster query'))).toEqual([
      '@parley/redis: a cluster query went unanswered by some nodes: 1 dropped out of the live set before answering, their heartbeat record lapsed without a goodbye: ghost',
    ])
  })

  it('learns at once of a node that joins or leaves, not at its next heartbeat', async () => {
    nodes = new Nodes()
    // Heartbeats far longer than the test: only the nodes' own word can tell the others.
    const slow = { heartbeatInterval: 60_000, prefix: 'membership' }
    const a = await nodes.start(suite.redis.url, slow)
    const b = await nodes.start(suite.redis.url, slow)
    await until(() => a.adapter.liveNodes.includes(b.adapter.node), 2000, 'a learns that b joined')
    const b0 = await nodes.client(b)
    expect((await a.app.parley.fetchSockets()).map((s) => s.id)).toEqual([b0.socket.id])

    await nodes.stop(b)
    await until(() => a.adapter.liveNodes.length === 0, 2000, 'a learns that b left')
    expect(a.warnings).toEqual([])
  })

  it('takes the answers of a node it does not know yet, while the query is open', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { requestTimeout: 500, prefix: 'newcomer' })
    // A ghost keeps the query open until requestTimeout; a newcomer a has not seen yet (it never
    // said it joined) answers it, as a node between its first heartbeat and a's next one does.
    await a.redis.sendCommand(['SET', 'newcomer:node:ghost', 'http://127.0.0.1:9', 'PX', '60000'])
    await a.redis.sendCommand(['ZADD', 'newcomer:nodes', String(Date.now()), 'ghost'])
    await until(() => a.adapter.liveNodes.includes('ghost'), 5000, 'ghost live')
    const newcomer = a.redis.duplicate()
    await newcomer.connect()
    const answers = a.redis.duplicate()
    await answers.connect()
    try {
      await newcomer.subscribe('newcomer:request', (text) => {
        const request = JSON.parse(text) as { n: string; id: string; k: string }
        const respond = (packet: object) =>
          void answers.publish(
            `newcomer:response:${request.n}`,
            JSON.stringify({ ...packet, n: 'late', id: request.id }),
          )
        if (request.k === 'fetch') {
          const socket: SocketDescription = {
            id: 'late0',
            handshake: {
              headers: {},
              query: {},
              auth: undefined,
              address: '127.0.0.1',
              time: new Date(0).toISOString(),
              issued: 0,
              transport: 'websocket',
              url: '/parley/ws?v=1',
              params: {},
            },
            rooms: new Set(['late0']),
            data: null,
          }
          respond({ k: 'sockets', s: [packSocket(socket)] })
        } else if (request.k === 'ack') {
          respond({ k: 'count', c: 1 })
          respond({ k: 'reply', ok: true, v: packValue('from late') })
        }
      })
      expect((await a.app.parley.fetchSockets()).map((s) => s.id)).toEqual(['late0'])
      expect(await a.app.parley.timeout(2000).emitWithAck('vote')).toEqual(['from late'])
    } finally {
      await newcomer.quit()
      await answers.quit()
    }
  })

  it('tells where a session lives: here, on another live node with its address, or unknown', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const c = await nodes.start(suite.redis.url, { address: 'http://10.1.2.3:8080/' })
    await until(() => a!.adapter.liveNodes.length === 2 && b!.adapter.liveNodes.length === 2, 5000, 'c live')
    const onA = await rawConnect('polling', a!.base)
    const onC = await rawConnect('sse', c.base)
    raws.push(onA, onC)
    const aUrl = new URL(a!.base).origin

    expect(await a!.adapter.sessionOwner(onA.sid)).toBe('local')
    await eventually(async () => typeof (await b!.adapter.sessionOwner(onA.sid)) === 'object', 5000, 'owner')
    expect(await b!.adapter.sessionOwner(onA.sid)).toEqual({ node: a!.adapter.node, url: aUrl })
    await eventually(async () => typeof (await b!.adapter.sessionOwner(onC.sid)) === 'object', 5000, 'owner')
    expect(await b!.adapter.sessionOwner(onC.sid)).toEqual({
      node: c.adapter.node,
      url: 'http://10.1.2.3:8080',
    })
    expect(await b!.adapter.sessionOwner('nobodyHasThisSession1')).toBe('unknown')

    // A session that ended is no one's.
    a!.sockets.find((s) => s.id === onA.id)!.disconnect()
    await eventually(
      async () => (await b!.adapter.sessionOwner(onA.sid)) === 'unknown',
      5000,
      'record removed',
    )
    await onA.ended
  })

  it('works with a client that reads bulk strings as Buffers', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, {}, true)
    const b = await nodes.start(suite.redis.url)
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    const raw = await rawConnect('polling', b.base)
    raws.push(raw)
    await eventually(async () => typeof (await a.adapter.sessionOwner(raw.sid)) === 'object', 5000, 'owner')
    expect(await a.adapter.sessionOwner(raw.sid)).toEqual({
      node: b.adapter.node,
      url: new URL(b.base).origin,
    })
  })

  it("names a session's owner whose record lapsed at its last address, and unknown once it said it left", async () => {
    nodes = new Nodes()
    const [a, b] = (await nodes.cluster(suite.redis.url, 2)) as [TestNode, TestNode]
    const raw = await rawConnect('websocket', a.base)
    raws.push(raw)
    await eventually(async () => typeof (await b.adapter.sessionOwner(raw.sid)) === 'object', 5000, 'owner')
    const url = new URL(a.base).origin

    // a loses its Redis connection: no goodbye, its record expires, and it goes on, alive. Its
    // sessions are still sent there: a lapsed heartbeat does not prove a node dead.
    a.redis.destroy()
    await until(() => b.adapter.liveNodes.length === 0, 5000, 'a drops out')
    expect(await b.adapter.sessionOwner(raw.sid)).toEqual({ node: a.adapter.node, url })
    // So does a node that never saw a live (it starts now): a's address record outlives its
    // heartbeat record.
    const c = await nodes.start(suite.redis.url)
    expect(c.adapter.liveNodes).toEqual([b.adapter.node])
    expect(await c.adapter.sessionOwner(raw.sid)).toEqual({ node: a.adapter.node, url })
    // a's adapter goes on without its client, and says so without throwing.
    a.app.parley.emit('news', 'still local')
    expect(a.adapter.stats.lostBroadcasts).toBe(1)
    // Handed off (as a drain marks it): the old transport's requests go there too.
    const record = `parley:session:${createHash('sha256').update(raw.sid).digest('base64url')}`
    await b.redis.sendCommand(['SET', record, `${a.adapter.node} handoff`])
    expect(await b.adapter.sessionOwner(raw.sid)).toEqual({ node: a.adapter.node, url, handingOff: true })
    // Its goodbye, as `close()` says it: gone for good, its sessions found nowhere (a handed-off
    // one is still claimed where its resume lands).
    await b.redis.sendCommand([
      'PUBLISH',
      'parley:membership',
      JSON.stringify({ n: a.adapter.node, k: 'left' }),
    ])
    for (const node of [b, c]) {
      await eventually(
        async () => !('url' in ((await node.adapter.sessionOwner(raw.sid)) as object)),
        3000,
        'no address',
      )
      expect(await node.adapter.sessionOwner(raw.sid)).toEqual({ node: a.adapter.node, handingOff: true })
    }
    await b.redis.sendCommand(['SET', record, a.adapter.node])
    expect(await b.adapter.sessionOwner(raw.sid)).toBe('unknown')
    expect(await c.adapter.sessionOwner(raw.sid)).toBe('unknown')
  })

  it("keeps a node's address a day past its heartbeat, for nodes that never saw it, and removes it as it closes", async () => {
    nodes = new Nodes()
    const [a, b] = (await nodes.cluster(suite.redis.url, 2)) as [TestNode, TestNode]
    const key = (node: TestNode) => `parley:node:${node.adapter.node}:address`
    expect(await b.redis.get(key(a))).toBe(new URL(a.base).origin)
    const life = await b.redis.pTTL(key(a))
    expect(life).toBeGreaterThan(ADDRESS_KEEP_MS - 60_000)
    expect(life).toBeLessThanOrEqual(ADDRESS_KEEP_MS)
    expect(ADDRESS_KEEP_MS).toBe(24 * 60 * 60 * 1000)
    await nodes.stop(a)
    expect(await b.redis.exists(key(a))).toBe(0)

    // A node of the version before writes none (a rolling upgrade): once its record lapsed, a
    // node that saw it live still sends its sessions there, one that did not finds them nowhere,
    // as before.
    const c = await nodes.start(suite.redis.url)
    const raw = await rawConnect('websocket', c.base)
    raws.push(raw)
    await eventually(async () => typeof (await b.adapter.sessionOwner(raw.sid)) === 'object', 5000, 'owner')
    c.redis.destroy()
    await b.redis.del(key(c))
    await until(() => b.adapter.liveNodes.length === 0, 5000, 'c drops out')
    const d = await nodes.start(suite.redis.url)
    expect(await b.adapter.sessionOwner(raw.sid)).toEqual({
      node: c.adapter.node,
      url: new URL(c.base).origin,
    })
    expect(await d.adapter.sessionOwner(raw.sid)).toBe('unknown')
  })

  it('keeps tracking live nodes when the index names a key that is not a node record', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    // A stray member, scored far in the future (never tidied), whose key is a hash.
    await a!.redis.sendCommand(['ZADD', 'parley:nodes', String(Date.now() + 1e12), 'evil'])
    await a!.redis.sendCommand(['HSET', 'parley:node:evil', 'x', 'y'])
    try {
      // A node that joins now is seen by both: their heartbeats go on.
      const c = await nodes.start(suite.redis.url)
      await until(
        () => a!.adapter.liveNodes.includes(c.adapter.node) && b!.adapter.liveNodes.includes(c.adapter.node),
        5000,
        'the new node seen live',
      )
      expect(await a!.redis.sendCommand(['ZSCORE', 'parley:nodes', 'evil'])).toBeNull()
      // Whichever node's heartbeat met the stray member first took it out, and said so.
      const warnings = [...a!.warnings, ...b!.warnings, ...c.warnings]
      expect(warnings.some((w) => w.includes('parley:node:evil'))).toBe(true)
      expect(warnings.some((w) => w.includes('heartbeat failed'))).toBe(false)
    } finally {
      await a!.redis.sendCommand(['DEL', 'parley:node:evil'])
      await a!.redis.sendCommand(['ZREM', 'parley:nodes', 'evil'])
    }
  })

  it('names the key and what to do when the live-node index holds another type', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { prefix: 'shared' })
    // Another application's key where the index goes: every heartbeat fails on it.
    await a.redis.sendCommand(['DEL', 'shared:nodes'])
    await a.redis.sendCommand(['SET', 'shared:nodes', 'not an index'])
    try {
      await until(() => a.warnings.some((w) => w.includes('heartbeat failed')), 3000, 'a failed heartbeat')
      const warning = a.warnings.find((w) => w.includes('heartbeat failed'))
      expect(warning).toContain('shared:nodes holds a value of another type')
      expect(warning).toContain('give each its own `prefix`')
    } finally {
      await a.redis.sendCommand(['DEL', 'shared:nodes'])
    }
  })

  it("warns once when another live node publishes this node's own address", async () => {
    nodes = new Nodes()
    // Two hosts or containers on the default address: both publish what each listens on.
    const address = 'http://127.0.0.1:9'
    const a = await nodes.start(suite.redis.url, { address })
    const b = await nodes.start(suite.redis.url, { address })
    const c = await nodes.start(suite.redis.url)
    const told = (node: TestNode) =>
      node.warnings.filter((w) => w.includes("publishes this node's own address"))
    await until(() => told(a).length === 1 && told(b).length === 1, 5000, 'the warnings')
    // Several heartbeats later, still once; a node with an address of its own hears nothing.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(told(a)).toHaveLength(1)
    expect(told(a)[0]).toContain(`node ${b.adapter.node} publishes this node's own address, ${address}`)
    expect(told(b)).toHaveLength(1)
    expect(told(c)).toEqual([])
  })

  it('warns once when a node of the same prefix serves Parley at another path', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    const b = await nodes.start(suite.redis.url, {}, false, { handoff: false, path: '/elsewhere' })
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    const told = (node: TestNode) => node.warnings.filter((w) => w.includes('give each application its own'))
    await until(() => told(a).length === 1 && told(b).length === 1, 5000, 'the warnings')
    // Several heartbeats later, still once.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(told(a)).toHaveLength(1)
    expect(told(a)[0]).toContain('"/elsewhere"')
    expect(told(b)).toHaveLength(1)
  })
})
