// Broadcasts across three nodes joined by a real Redis: rooms, except, volatile, local, binary
// arguments, and broadcasts that count replies over every live node.
import { type EventPacket, type Packet, PacketType, type ParleyError } from '@parley/protocol'
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { inbox, Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())('broadcasts over Redis', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const { raws } = suite

  it('reaches a room spanning three nodes once each, leaving out the except rooms and the sender', async () => {
    nodes = new Nodes()
    const [a, b, c] = await nodes.cluster(suite.redis.url)
    const a0 = await nodes.client(a!)
    const b0 = await nodes.client(b!)
    const b1 = await nodes.client(b!)
    const c0 = await nodes.client(c!)
    const boxes = [a0, b0, b1, c0].map(({ client }) => inbox(client))
    for (const { socket } of [a0, b0, b1, c0]) socket.join('lobby')
    b1.socket.join('muted')

    a!.app.parley.to('lobby').emit('news', 'to lobby')
    c!.app.parley.to('lobby').except('muted').emit('news', 'not muted')
    b0.socket.to('lobby').emit('news', 'from b0')
    await until(
      () => boxes[0]!.length === 3 && boxes[2]!.length === 2 && boxes[3]!.length === 3,
      5000,
      'deliveries',
    )
    // A marker sent after everything: once it is in, any duplicate would be in too.
    a!.app.parley.emit('news', 'end')
    await until(() => boxes.every((box) => box.includes('end')), 5000, 'marker')
    const [inA0, inB0, inB1, inC0] = boxes.map((box) => [...box].sort())
    expect(inA0).toEqual(['end', 'from b0', 'not muted', 'to lobby'])
    expect(inB0).toEqual(['end', 'not muted', 'to lobby'])
    expect(inB1).toEqual(['end', 'from b0', 'to lobby'])
    expect(inC0).toEqual(['end', 'from b0', 'not muted', 'to lobby'])
  })

  it("applies a socket's joins and leaves at once, in the order they were called", async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    const box = inbox(b0.client)
    // Membership stays on the socket's node: nothing to await, nothing to put in order.
    expect(b0.socket.join('left')).toBeUndefined()
    expect(b0.socket.leave('left')).toBeUndefined()
    b0.socket.join('kept')
    b0.socket.leave('kept')
    b0.socket.join('kept')
    a!.app.parley.to('left').emit('news', 'to left')
    a!.app.parley.to('kept').emit('news', 'to kept')
    await until(() => box.includes('to kept'), 5000, 'the broadcast to kept')
    expect(box).toEqual(['to kept'])
  })

  it('keeps local broadcasts on their node, without a PUBLISH', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const a0 = await nodes.client(a!)
    const b0 = await nodes.client(b!)
    const [inA0, inB0] = [inbox(a0.client), inbox(b0.client)]
    const sent = vi.spyOn(a!.redis, 'sendCommand')
    a!.app.parley.local.emit('news', 'a only')
    a!.app.parley.local.to(b0.socket.id).emit('news', 'never')
    await until(() => inA0.length === 1, 3000, 'local delivery')
    const publishes = () => sent.mock.calls.filter(([args]) => args[0] === 'PUBLISH').length
    expect(publishes()).toBe(0)
    // Anything that was to reach b0 would have arrived before this one, which is published.
    a!.app.parley.emit('news', 'end')
    expect(publishes()).toBe(1)
    sent.mockRestore()
    await until(() => inB0.length === 1, 5000, 'marker')
    expect(inA0).toEqual(['a only', 'end'])
    expect(inB0).toEqual(['end'])
  })

  it('sends volatile broadcasts unnumbered on the other nodes', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const raw = await rawConnect('websocket', b!.base)
    raws.push(raw)
    await until(() => b!.sockets.length === 1)
    a!.app.parley.volatile.emit('news', 'volatile')
    a!.app.parley.emit('news', 'numbered')
    const first = await raw.next((p) => p.type === PacketType.EVENT, 5000)
    const second = await raw.next((p) => p.type === PacketType.EVENT, 5000)
    expect(first).toMatchObject({ name: 'news', args: ['volatile'], seq: 0 })
    expect(second).toMatchObject({ name: 'news', args: ['numbered'], seq: 1 })
  })

  it('sends a volatile broadcast that awaits replies unnumbered on the other nodes, failing at once where it is dropped', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    const b = await nodes.start(suite.redis.url, {}, false, { handoff: false, highWaterMark: 1000 })
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    const x = await rawConnect('websocket', b.base)
    const y = await rawConnect('websocket', b.base)
    raws.push(x, y)
    await until(() => b.sockets.length === 2)
    // y never acknowledges: this stays kept, and y is past its highWaterMark.
    b.sockets[1]!.emit('fill', 'x'.repeat(2000))
    await y.next((p) => p.type === PacketType.EVENT && p.name === 'fill')
    const isQuestion = (p: Packet) => p.type === PacketType.EVENT && p.name === 'q'
    // A timeout past the test's own time: only x's reply can end the wait.
    const outcome = a.app.parley
      .timeout(60_000)
      .volatile.emitWithAck('q')
      .catch((e: unknown) => e)
    const asked = (await x.next(isQuestion, 5000)) as EventPacket
    expect(asked).toMatchObject({ seq: 0, args: [] })
    await x.send({ type: PacketType.REPLY, seq: 1, ackId: asked.ackId, args: ['from x'] })
    // y counts as failed from the start: the wait ends with x's reply, not at the timeout.
    const ended = within(outcome, 5000, "the broadcast to end at x's reply (y failed at once)")
    expect(await ended).toMatchObject({
      code: 'PARLEY_ACK_TIMEOUT',
      message: '1 socket(s) did not reply: 1 dropped',
      details: { replies: ['from x'] },
    })
    b.sockets[1]!.emit('end', 1)
    await y.next((p) => p.type === PacketType.EVENT && p.name === 'end')
    expect(y.received.some(isQuestion)).toBe(false)
  })

  it('carries binary arguments to the other nodes byte for byte', async () => {
    nodes = new Nodes()
    const [a, b, c] = await nodes.cluster(suite.redis.url)
    const b0 = await nodes.client(b!)
    const c0 = await nodes.client(c!)
    const got: unknown[] = []
    for (const { client } of [b0, c0])
      client.on('file', (meta: unknown, bytes: unknown) => got.push([meta, bytes]))
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255])
    a!.app.parley.emit('file', { name: 'f.bin', nested: { raw: bytes } }, bytes)
    await until(() => got.length === 2, 5000, 'binary deliveries')
    for (const [meta, received] of got as [{ nested: { raw: Uint8Array } }, Uint8Array][]) {
      expect(new Uint8Array(received)).toEqual(bytes)
      expect(new Uint8Array(meta.nested.raw)).toEqual(bytes)
    }
  })

  it('encodes a broadcast once per node, and publishes it once', async () => {
    nodes = new Nodes()
    const [a, b, c] = await nodes.cluster(suite.redis.url)
    const list = [
      await nodes.client(a!),
      await nodes.client(a!),
      await nodes.client(b!),
      await nodes.client(b!),
      await nodes.client(c!),
    ]
    const boxes = list.map(({ client }) => inbox(client))
    const stringify = vi.spyOn(JSON, 'stringify')
    const sent = vi.spyOn(a!.redis, 'sendCommand')
    a!.app.parley.emit('news', { text: 'hi' })
    await until(() => boxes.every((box) => box.length === 1), 5000, 'deliveries')
    // prepareEvent encodes [name, args] once; count those encodings of this event.
    const encodings = stringify.mock.calls.filter(([value]) => Array.isArray(value) && value[0] === 'news')
    const publishes = sent.mock.calls.filter(([args]) => args[0] === 'PUBLISH')
    stringify.mockRestore()
    sent.mockRestore()
    expect(encodings).toHaveLength(3)
    expect(publishes).toHaveLength(1)
  })

  it('drops malformed messages on its channels and goes on', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    const got = inbox(b0.client)
    const channels = ['parley:broadcast', 'parley:request', `parley:response:${b!.adapter.node}`]
    for (const channel of channels) {
      for (const junk of ['', 'nope', '{"n":"x","e":"[5,0,1,[],0]","o":{"r":[],"x":[],"v":false}}']) {
        await a!.redis.sendCommand(['PUBLISH', channel, junk])
      }
    }
    a!.app.parley.emit('news', 'after the junk')
    await until(() => got.length === 1, 5000, 'delivery')
    expect(got).toEqual(['after the junk'])
    expect(b!.warnings.some((w) => w.includes('malformed'))).toBe(true)
  })

  it('drops a broadcast with acks that names no timeout: its sockets get nothing, and no count is sent', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    const got = inbox(b0.client)
    const listener = a!.redis.duplicate()
    await listener.connect()
    try {
      const answers: string[] = []
      await listener.subscribe('parley:response:x', (message) => answers.push(message))
      const request = {
        n: 'x',
        id: '1',
        k: 'ack',
        o: { r: [], x: [], v: false },
        e: '[5,0,"news",["without t"],0]',
      }
      await a!.redis.sendCommand(['PUBLISH', 'parley:request', JSON.stringify(request)])
      // The same request with its timeout, on the same connection: read after the first.
      await a!.redis.sendCommand([
        'PUBLISH',
        'parley:request',
        JSON.stringify({ ...request, id: '2', e: '[5,0,"news",["with t"],0]', t: 1000 }),
      ])
      await until(() => got.length === 1, 5000, 'the request with a timeout')
      await until(() => answers.length === 2, 5000, 'its count and its reply')
      expect(got).toEqual(['with t'])
      expect(answers.map((text) => JSON.parse(text).id)).toEqual(['2', '2'])
      expect(b!.warnings.some((w) => w.includes('malformed'))).toBe(true)
    } finally {
      await listener.quit()
    }
  })

  it('delivers a broadcast that carries a field it does not know, even one named k', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    const got = inbox(b0.client)
    // A broadcast as a's version sends it, then the same with a field of a later version.
    const sent = vi.spyOn(a!.redis, 'sendCommand')
    a!.app.parley.emit('news', 'known')
    const publish = sent.mock.calls.find(([args]) => args[0] === 'PUBLISH')?.[0]
    sent.mockRestore()
    await until(() => got.length === 1, 5000, 'the broadcast')
    const later = { ...JSON.parse(String(publish![2])), n: 'a-later-node', k: 'something-new' }
    await a!.redis.sendCommand(['PUBLISH', 'parley:broadcast', JSON.stringify(later)])
    await until(() => got.length === 2, 5000, 'the later broadcast')
    expect(got).toEqual(['known', 'known'])
  })

  it('drops for its sockets, with a warning, a broadcast past its own maxPayload from a node with a larger one', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    const b = await nodes.start(suite.redis.url, {}, false, { handoff: false, maxPayload: 1000 })
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    const b0 = await nodes.client(b)
    const got = inbox(b0.client)
    // 1200 bytes of CJK in 400 characters first: measured in bytes, as the client measures it.
    a.app.parley.emit('news', '界'.repeat(400))
    a.app.parley.emit('news', 'x'.repeat(2000))
    a.app.parley.emit('news', 'end')
    await until(() => got.length > 0, 5000, 'the small broadcast')
    expect(got).toEqual(['end'])
    expect(b0.client.connected).toBe(true)
    // The line names this node's limit, the value to align, and the first broadcast's event and size.
    const line = b.warnings.find((w) => w.includes('past maxPayload (1000 bytes)') && w.includes('differ'))
    const size = Number(/: event "news": the packet is (\d+) bytes/.exec(line ?? '')?.[1])
    expect(size > 1200 && size < 2000, line).toBe(true)
  })

  it('waits without a timer under timeout(Infinity), for the replies of every node', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const voters = [await nodes.client(a!), await nodes.client(b!)]
    for (const [i, { client, socket }] of voters.entries()) {
      socket.join('voters')
      // Later than a timer set for Infinity (which fires at once) would have ended the wait.
      client.on('vote', (ack: (value: unknown) => void) => setTimeout(() => ack(`v${i}`), 100))
    }
    const asking = a!.app.parley.timeout(Number.POSITIVE_INFINITY).to('voters').emitWithAck('vote')
    const replies = await within(asking, 5000, "both voters' replies")
    expect(replies.sort()).toEqual(['v0', 'v1'])
    expect(b!.warnings).toEqual([])
  })

  /**
   * Two nodes, a voter on each, b's never answering; a broadcast from a with `timeout`, once both
   * voters were asked (b has counted its voter). `outcome` is what its callback got.
   */
  async function voteWhereBNeverAnswers(timeout: number) {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const voters = [await nodes.client(a!), await nodes.client(b!)]
    let asked = 0
    for (const [i, { client, socket }] of voters.entries()) {
      socket.join('voters')
      client.on('vote', (ack: (value: unknown) => void) => {
        asked++
        if (i === 0) ack('v0')
      })
    }
    // The total a learns once b's count came: a node that has not counted is not waited for.
    let total: number | undefined
    const broadcastWithAck = a!.adapter.broadcastWithAck.bind(a!.adapter)
    a!.adapter.broadcastWithAck = (message, options, ms, expect, reply) =>
      broadcastWithAck(
        message,
        options,
        ms,
        (count) => {
          total = count
          expect(count)
        },
        reply,
      )
    const outcome = new Promise<[ParleyError | null, unknown[]]>((resolve) => {
      a!.app.parley
        .timeout(timeout)
        .to('voters')
        .emit('vote', (err: ParleyError | null, got: unknown[]) => resolve([err, got]))
    })
    await until(() => asked === 2 && total === 2, 3000, "both voters asked, and b's count at a")
    return { a: a!, b: b!, outcome }
  }

  /** What a broadcast that one socket of two did not answer gives its callback. */
  function expectOneMissing([error, got]: [ParleyError | null, unknown[]]) {
    expect(error?.code).toBe('PARLEY_ACK_TIMEOUT')
    expect(error?.message).toMatch(/^1 socket\(s\) did not reply/)
    expect(got).toEqual(['v0'])
  }

  it('fails at once the replies a counted node still owed when it leaves the live set', async () => {
    // Far past the test's own time: the wait must end when b leaves, not at the timeout.
    const { b, outcome } = await voteWhereBNeverAnswers(60_000)
    // b's adapter closes, answering nothing more, and a notices at its next heartbeat that b left.
    await b.adapter.close()
    const ended = await within(outcome, 5000, 'the broadcast to end with b leaving')
    expectOneMissing(ended)
    // Its message says why, as the reply's own error does.
    expect(ended[0]?.message).toBe('1 socket(s) did not reply: 1 left')
  })

  it('takes a count that came within requestTimeout though its node was held past it', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { requestTimeout: 300 })
    for (const [i, { client, socket }] of [await nodes.client(a!), await nodes.client(b!)].entries()) {
      socket.join('voters')
      client.on('vote', (ack: (value: unknown) => void) => ack(`v${i}`))
    }
    // Once b's count is on its way, this process (a's too: the nodes share it) is held for longer
    // than requestTimeout, as by a long pause: the count reaches a's socket meanwhile, and a's wait
    // for it is overdue when the process runs again.
    holdProcessOnceSent(b!, 'count')
    const replies = await within(
      a!.app.parley.timeout(10_000).to('voters').emitWithAck('vote'),
      8000,
      'the replies',
    )
    expect(replies.sort()).toEqual(['v0', 'v1'])
    expect(a!.adapter.stats.incompleteRequests).toBe(0)
  })

  it("takes a query's answer that came within requestTimeout though its node was held past it", async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { requestTimeout: 300 })
    for (const node of [a!, b!]) (await nodes.client(node)).socket.join('voters')
    // As above, for fetchSockets: the process is held past requestTimeout once b's answer is on
    // its way, and a's wait for it is overdue when the process runs again.
    holdProcessOnceSent(b!, 'sockets')
    const sockets = await within(a!.app.parley.in('voters').fetchSockets(), 8000, 'the sockets')
    expect(sockets).toHaveLength(2)
    expect(a!.adapter.stats.incompleteRequests).toBe(0)
  })

  it('stops waiting for the count of a live node that stays silent past requestTimeout, whatever the timeout', async () => {
    nodes = new Nodes()
    // A prefix of its own: the ghost below haunts no other test. b, in this process too, counts
    // within requestTimeout of Redis taking each request: with 300 ms, a loaded machine held it
    // past that once, and it was counted as silent too, its voter's reply dropped.
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { requestTimeout: 2000, prefix: 'silent' })
    for (const [i, { client, socket }] of [await nodes.client(a!), await nodes.client(b!)].entries()) {
      socket.join('voters')
      client.on('vote', (ack: (value: unknown) => void) => ack(`v${i}`))
    }
    // A ghost: its record says it is live, but nothing reads the requests for it (as a node
    // whose subscriber was reconnecting, or whose count Redis lost).
    await a!.redis.sendCommand(['SET', 'silent:node:ghost', 'http://127.0.0.1:9', 'PX', '60000'])
    await a!.redis.sendCommand(['ZADD', 'silent:nodes', String(Date.now()), 'ghost'])
    try {
      await until(() => a!.adapter.liveNodes.includes('ghost'), 5000, 'ghost live')
      for (const timeout of [Number.POSITIVE_INFINITY, 60_000]) {
        // Ended by requestTimeout (2 s), never by the caller's timeout: 'late' is far past the
        // first, for a machine many times slower, and far short of the second.
        let timer: NodeJS.Timeout | undefined
        const replies = await Promise.race([
          a!.app.parley.timeout(timeout).to('voters').emitWithAck('vote'),
          new Promise<'late'>((resolve) => {
            timer = setTimeout(() => resolve('late'), 10_000)
          }),
        ]).finally(() => clearTimeout(timer))
        expect(replies === 'late' ? replies : replies.sort()).toEqual(['v0', 'v1'])
      }
      expect(a!.adapter.stats.incompleteRequests).toBe(2)
      expect(a!.warnings.some((w) => w.includes('1 did not count its sockets within 2000 ms'))).toBe(true)
    } finally {
      await a!.redis.sendCommand(['DEL', 'silent:node:ghost'])
      await a!.redis.sendCommand(['ZREM', 'silent:nodes', 'ghost'])
    }
  })

  it('fails at once the replies other nodes still owed when its own adapter closes, even under timeout(Infinity)', async () => {
    const { a, outcome } = await voteWhereBNeverAnswers(Number.POSITIVE_INFINITY)
    let settled: [ParleyError | null, unknown[]] | undefined
    void outcome.then((result) => {
      settled = result
    })
    // b counted its voter; then a's adapter closes: no reply from b can reach it any more. The
    // broadcast has no timer: it ends by the close itself, settled once the close is done.
    await a.adapter.close()
    expect(settled).toBeDefined()
    expectOneMissing(settled!)
  })

  it('counts replies over every node, and stops waiting for a node that left the live set', async () => {
    nodes = new Nodes()
    const [a, b, c] = await nodes.cluster(suite.redis.url)
    const voters = [
      await nodes.client(a!),
      await nodes.client(b!),
      await nodes.client(b!),
      await nodes.client(c!),
    ]
    for (const [i, { client, socket }] of voters.entries()) {
      socket.join('voters')
      client.on('vote', (ack: (value: unknown) => void) => ack(i === 3 ? new Uint8Array([i]) : `v${i}`))
    }
    const replies = await a!.app.parley.timeout(5000).to('voters').emitWithAck('vote')
    expect(replies.filter((r) => typeof r === 'string').sort()).toEqual(['v0', 'v1', 'v2'])
    expect(replies.filter((r) => r instanceof Uint8Array).map((r) => [...(r as Uint8Array)])).toEqual([[3]])

    // Node c's adapter closes: it answers nothing, and leaves the live set, which a notices at
    // its next heartbeat. The broadcast then ends with what the other nodes counted, well
    // before its timeout (reached, it would be an error).
    await c!.adapter.close()
    const ended = new Promise<[ParleyError | null, unknown[]]>((resolve) => {
      a!.app.parley
        .to('voters')
        .timeout(15_000)
        .emit('vote', (err: ParleyError | null, got: unknown[]) => resolve([err, got]))
    })
    const [error, partial] = await within(ended, 5000, 'the broadcast to end with c leaving')
    expect(error).toBeNull()
    expect(partial.sort()).toEqual(['v0', 'v1', 'v2'])
    expect(a!.adapter.liveNodes).not.toContain(c!.adapter.node)

    // With `local`, only a's own sockets, without a word to the others.
    expect(await a!.app.parley.local.timeout(5000).to('voters').emitWithAck('vote')).toEqual(['v0'])
  })
})

/**
 * Holds this whole process for 1 s (longer than the tests' requestTimeout), as a long pause
 * would, right after `node` sent a message of kind `kind` (its PUBLISH on its way to Redis).
 */
function holdProcessOnceSent(node: ClusterNode, kind: string): void {
  const send = node.redis.sendCommand.bind(node.redis)
  vi.spyOn(node.redis, 'sendCommand').mockImplementation((args) => {
    const answer = send(args)
    if (args[0] === 'PUBLISH' && JSON.parse(String(args[2])).k === kind) {
      setImmediate(() => {
        const end = performance.now() + 1000
        while (performance.now() < end) {}
      })
    }
    return answer
  })
}

type ClusterNode = NonNullable<Awaited<ReturnType<Nodes['cluster']>>[number]>
