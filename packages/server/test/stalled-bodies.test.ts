// POST bodies that stop arriving: a connection left half-open by a network change, a stalled
// proxy. A session must not stay locked behind one, nor a closing server wait for it.
import type { IncomingMessage } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { decodeText, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'

const opened = closedAfterEach()

const portOf = (app: FastifyInstance) => (app.server.address() as { port: number }).port

/** A POST that announces 100 bytes and sends only `sent`, its connection left open. */
async function stalledPost(port: number, path: string, sent = '[3]\n'): Promise<RawHttp> {
  const raw = await RawHttp.open(port)
  opened.rawHttp.push(raw)
  raw.write(head('POST', path, { 'Content-Type': 'text/plain', 'Content-Length': '100' }))
  raw.write(sent)
  return raw
}

describe('a POST body that stops arriving', () => {
  it.each([
    ['polling', 'poll'],
    ['sse', 'sse'],
  ] as const)(
    'over %s, is answered 408 once nothing came for pingTimeout, its connection closed and the session free to POST',
    async (transport, segment) => {
      // No PING comes within the test (pingInterval stays 20 s): pingTimeout only bounds the body.
      opened.started = await startServer({ pingTimeout: 300 })
      const c = await rawConnect(transport, opened.started.base)
      opened.clients.push(c)
      const stalled = await stalledPost(portOf(opened.started.app), `/parley/${segment}?v=1&sid=${c.sid}`)
      const answer = await stalled.answer()
      expect(answer.status).toBe(408)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_BAD_REQUEST' })
      expect(answer.headers['cache-control']).toBe('no-store')
      await until(() => stalled.isClosed, 3000, 'the stalled connection closed')
      expect(await c.send({ type: PacketType.PONG })).toBe(204)
    },
  )

  it('whose connection went while an application’s hook held it, leaves the session free to POST at once', async () => {
    // An async onRequest hook of the application's (an auth lookup, say) holds a POST whose
    // client goes meanwhile, its body sent whole: Node has closed the request before Parley reads
    // it, and no event of it comes again. pingTimeout (20 s) is far beyond the test's waits.
    let gate: Promise<void> | undefined
    let open = () => {}
    const held: IncomingMessage[] = []
    let handled = 0
    opened.started = await startServer({ pingTimeout: 20_000 }, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method !== 'POST' || !gate) return
        held.push(request.raw)
        await gate
      })
      app.addHook('preHandler', async (request) => {
        if (held.includes(request.raw)) handled++
      })
    })
    const c = await rawConnect('polling', opened.started.base)
    opened.clients.push(c)
    gate = new Promise((resolve) => (open = resolve))
    const body = '[3]\n'
    const raw = await RawHttp.open(portOf(opened.started.app))
    opened.rawHttp.push(raw)
    raw.write(
      head('POST', `/parley/poll?v=1&sid=${c.sid}`, {
        'Content-Type': 'text/plain',
        'Content-Length': String(body.length),
      }),
    )
    raw.write(body)
    await until(() => held.length === 1, 3000, 'the POST, held')
    raw.destroy()
    await until(() => held[0]!.destroyed, 3000, 'the held POST closed')
    gate = undefined
    open()
    await until(() => handled === 1, 3000, 'the held POST handed to its route')
    // Its route took it (synchronously after the hook) before this POST can come.
    expect(await c.send({ type: PacketType.PONG })).toBe(204)
  })

  it('is answered 408 on a handshake POST too, its connection closed', async () => {
    opened.started = await startServer({ pingTimeout: 300 })
    const stalled = await stalledPost(portOf(opened.started.app), '/parley/poll?v=1', '[8,{')
    const answer = await stalled.answer()
    expect(answer.status).toBe(408)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_BAD_REQUEST' })
    await until(() => stalled.isClosed, 3000, 'the stalled connection closed')
  })

  it('keeps a body that arrives slowly but steadily', async () => {
    opened.started = await startServer({ pingTimeout: 1000 })
    const c = await rawConnect('polling', opened.started.base)
    opened.clients.push(c)
    const body = '[3]\n[4,0]\n[3]\n[4,0]\n'
    const raw = await RawHttp.open(portOf(opened.started.app))
    opened.rawHttp.push(raw)
    raw.write(
      head('POST', `/parley/poll?v=1&sid=${c.sid}`, {
        'Content-Type': 'text/plain',
        'Content-Length': String(body.length),
      }),
    )
    // Twice pingTimeout in all, never silent for a tenth as long.
    for (const char of body) {
      raw.write(char)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect((await raw.answer()).status).toBe(204)
  })

  it('holds about its own size while it comes a byte to a TCP segment', async () => {
    // A full collection on demand, as `--expose-gc` would give.
    setFlagsFromString('--expose-gc')
    const collect = runInNewContext('gc') as () => void
    opened.started = await startServer({ pingTimeout: 60_000 })
    // Each byte costs the process a turn of its event loop on both ends, and the suite's other
    // files share the cores: 60 000 of them took past the test's 20 s on a loaded machine. What
    // is held is measured per byte of the body, and a few tens of thousands tell the two apart.
    const auth = 'x'.repeat(20_000)
    const body = `[8,{"auth":"${auth}"}]`
    const raw = await RawHttp.open(portOf(opened.started.app))
    opened.rawHttp.push(raw)
    raw.socket.setNoDelay(true)
    raw.write(head('POST', '/parley/poll?v=1', { 'Content-Length': String(body.length) }))
    await new Promise((resolve) => setTimeout(resolve, 50))
    collect()
    const before = process.memoryUsage().heapUsed
    // Each byte leaves in a segment of its own, and the server reads each as it comes.
    for (const char of body.slice(0, -1)) {
      raw.write(char)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    collect()
    const held = process.memoryUsage().heapUsed - before
    // A Buffer per chunk held some 200 bytes of heap for each byte of the body (4 MB here);
    // joined, the chunks hold a tenth of a megabyte or so, whatever the body's length.
    expect(held).toBeLessThan(body.length * 50)
    raw.write(body.slice(-1))
    const answer = await raw.answer()
    expect(answer.status).toBe(200)
    const open = decodeText(answer.body)
    expect(open.ok && open.packet.type).toBe(PacketType.OPEN)
    expect([...opened.started.app.parley.sockets.values()][0]?.handshake.auth).toBe(auth)
  })

  it.each([
    ['sse', 'polling'],
    ['polling', 'sse'],
  ] as const)(
    'does not hold back the POSTs of a transport that took over its session (%s, then %s)',
    async (first, second) => {
      // A body that may take as long as it likes: what is tested is the lock, not the deadline.
      opened.started = await startServer({ pingTimeout: 60_000 })
      const c = await rawConnect(first, opened.started.base)
      opened.clients.push(c)
      await stalledPost(
        portOf(opened.started.app),
        `/parley/${first === 'sse' ? 'sse' : 'poll'}?v=1&sid=${c.sid}`,
      )
      // Give the stalled POST time to reach its handler (and take the lock, if it takes one).
      await new Promise((resolve) => setTimeout(resolve, 100))
      const resumed = await rawConnect(second, opened.started.base, { sid: c.sid, ack: 0 })
      opened.clients.push(resumed)
      expect(resumed.open.recovered).toBe(true)
      expect(await resumed.send({ type: PacketType.PONG })).toBe(204)
    },
  )

  it('does not hold app.close(): bodies in progress are answered 503 and their connections closed', async () => {
    // Fastify's defaults: connections are not destroyed at close, and requests have no time limit.
    const app = Fastify()
    let reading = 0
    await app.register(parley, { pingTimeout: 60_000 })
    app.addHook('preHandler', async (request) => {
      if (request.method === 'POST') reading++
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = portOf(app)
    const c = await rawConnect('sse', `http://127.0.0.1:${port}/parley`)
    opened.clients.push(c)
    const upstream = await stalledPost(port, `/parley/sse?v=1&sid=${c.sid}`)
    const handshake = await stalledPost(port, '/parley/poll?v=1', '[8,{')
    await until(() => reading === 3, 3000, 'both POSTs reached their handler')
    // The handler runs right after the hook: let it begin reading.
    await new Promise((resolve) => setImmediate(resolve))
    const closed = await Promise.race([
      app.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still open after 10 s'), 10_000)),
    ])
    expect(closed).toBe('closed')
    for (const stalled of [upstream, handshake]) {
      const answer = await stalled.answer()
      expect(answer.status).toBe(503)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
      await until(() => stalled.isClosed, 3000, 'the stalled connection closed')
    }
  })
})
