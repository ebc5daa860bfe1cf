// Parley in a Fastify context whose prefix has a parameter (`/:tenant`), while the instance
// closes: the endpoints' requests get Parley's answers at every tenant's URL, as under a prefix
// without one, not Fastify's bare 503 (no code, and unreadable to a page on another origin); and
// with an instance restarted there meanwhile, the old one still answers its own sessions.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from '@parley/client'
import { decodeText, ErrorCode, PacketType } from '@parley/protocol'
import parley, { type ParleyServer, type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { expectRefusedUnderOtherParameters } from './other-route-parameters.js'
import { rawConnect } from './raw-client.js'
import { holdingItsEvent, restartedWhileClosing } from './restarted-under-parameter.js'
import { upgradeStatus } from './upgrade-status.js'

const teardown: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const step of teardown.splice(0).reverse()) await step()
})

/**
 * Parley at `/parley` under the prefix `/:tenant`, with a polling client of the tenant `t1`
 * connected, its event holding the instance's close, which has begun.
 */
async function closingUnderParameter() {
  const app: FastifyInstance = Fastify({ forceCloseConnections: true })
  const hold = holding()
  let server: ParleyServer | undefined
  const sockets: ServerSocket[] = []
  await app.register(
    async (tenant) => {
      await tenant.register(parley, {})
      tenant.parley.on('connection', hold.onConnection)
      tenant.parley.on('connection', (socket) => void sockets.push(socket))
      server = tenant.parley
    },
    { prefix: '/:tenant' },
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = connect(`http://127.0.0.1:${port}/t1/parley`, {
    transports: ['polling'],
    reconnection: false,
  })
  teardown.push(async () => {
    client.disconnect()
    hold.release()
    await app.close()
  })
  await holdingItsEvent(client, hold)
  void app.close()
  await until(() => server?.closing === true, 5000, 'the instance to begin its close')
  return { port, client, sockets, server: app.server, release: hold.release }
}

describe('Parley under a Fastify prefix with a parameter, while the instance closes', () => {
  it.each([
    [
      'a GET of a session it does not hold',
      'GET',
      '/t2/parley/poll?v=1&sid=nosuch',
      '',
      503,
      'PARLEY_SERVER_SHUTTING_DOWN',
    ],
    ['a handshake', 'POST', '/t2/parley/poll?v=1', '[8,{}]', 503, 'PARLEY_SERVER_SHUTTING_DOWN'],
    ['another protocol version', 'GET', '/t1/parley/sse?v=2&sid=x', '', 400, 'PARLEY_UNSUPPORTED_VERSION'],
    ['a GET without sid', 'GET', '/t1/parley/poll?v=1', '', 400, 'PARLEY_BAD_REQUEST'],
  ])('answers %s as the endpoints do', async (_, method, target, body, status, code) => {
    const { port } = await closingUnderParameter()
    const answer = await exchange(
      `http://127.0.0.1:${port}${target}`,
      method,
      { 'content-type': 'text/plain' },
      body,
    )
    expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code })
  })

  it('takes a WebSocket upgrade as the route does while it drains', async () => {
    const { port } = await closingUnderParameter()
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/t3/parley/ws?v=1`)).toBe(101)
  })

  it("answers a live session's GET and POST at another tenant's URL as those of no session, as the routes do", async () => {
    const { port, client, sockets, server, release } = await closingUnderParameter()
    // The session's id, as its client's requests name it.
    let sid: string | null = null
    server.on('request', (req: IncomingMessage) => {
      sid ??= new URL(req.url ?? '/', 'http://x').searchParams.get('sid')
    })
    client.emit('late' as never)
    await until(() => sid !== null, 5000, "the client's request")
    const notes: unknown[] = []
    sockets[0]?.on('note', (text: unknown) => notes.push(text))
    const reason = new Promise<string>((resolve) => client.once('disconnect', resolve))
    await expectRefusedUnderOtherParameters(
      `http://127.0.0.1:${port}/t2/parley/poll?v=1&sid=${encodeURIComponent(sid ?? '')}`,
      [
        ['POST', JSON.stringify([PacketType.EVENT, 2, 'note', ['from t2'], 0])],
        ['GET', ''],
      ],
      'closing',
    )
    expect(notes).toEqual([])
    // Its last words are still its own client's.
    release()
    expect(await within(reason, 5000, 'the client to end')).toBe('server shutdown')
  })

  it("hears a live session's POST, and hands its client the CLOSE 'server shutdown'", async () => {
    const { client, server, release } = await closingUnderParameter()
    const reason = new Promise<string>((resolve) => client.once('disconnect', resolve))
    const posts: number[] = []
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST') res.once('close', () => posts.push(res.statusCode))
    })
    // Its POST is heard as on the route: refused, it would fail the client's transport before
    // the CLOSE its next poll gets.
    client.emit('late' as never)
    await until(() => posts.length === 1, 5000, "the client's POST to be answered")
    expect(posts).toEqual([204])
    release()
    expect(await within(reason, 5000, 'the client to end')).toBe('server shutdown')
  })
})

describe('an instance restarted under a prefix with a parameter while the old one closes', () => {
  it("leaves the old one's session its own answers: its POST heard, its CLOSE 'server shutdown'", async () => {
    const { shared, hold, client, reason, closing, restarted } = await restartedWhileClosing(
      '/:tenant',
      (step) => teardown.push(step),
    )

    const posts: number[] = []
    shared.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST' && req.url?.includes('sid='))
        res.once('close', () => posts.push(res.statusCode))
    })
    // The new one, which never held the session, would refuse the POST PARLEY_UNKNOWN_SESSION,
    // and its client would start a new session there without the old one's CLOSE.
    client.emit('late' as never)
    await until(() => posts.length === 1, 5000, "the client's POST to be answered")
    expect(posts).toEqual([204])
    hold.release()
    await within(closing, 5000, 'the old instance to close')
    expect(await within(reason, 5000, 'the client to end')).toBe('server shutdown')
    expect(restarted.parley.sockets.size).toBe(0)
  })
})

describe.each([
  ['default Fastify options', {}],
  ['return503OnClosing: false', { return503OnClosing: false }],
] satisfies [string, FastifyServerOptions][])(
  'the last words at close of a session opened under /t1, with %s',
  (_name, fastifyOptions: FastifyServerOptions) => {
    it('are not given to a GET under /t2, answered as one of no session, and kept for its own client', async () => {
      const app = Fastify(fastifyOptions)
      let server: ParleyServer | undefined
      await app.register(
        async (tenant) => {
          await tenant.register(parley, {})
          server = tenant.parley
        },
        { prefix: '/:tenant' },
      )
      await app.listen({ port: 0, host: '127.0.0.1' })
      const closing = { done: Promise.resolve() }
      teardown.push(() => closing.done)
      const { port } = app.server.address() as { port: number }
      const endpoint = (tenant: string) => `http://127.0.0.1:${port}/${tenant}/parley/poll`
      // Opened by its handshake alone: its CLOSE 'server shutdown' waits for the first GET.
      const opened = await fetch(`${endpoint('t1')}?v=1`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify([PacketType.HELLO, {}]),
      })
      const open = decodeText(await opened.text())
      if (!open.ok || open.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
      const sid = encodeURIComponent(open.packet.sid)
      closing.done = app.close()
      await until(() => server?.closed === true, 5000, 'the server closing')

      const other = await within(
        exchange(`${endpoint('t2')}?v=1&sid=${sid}`, 'GET', {}),
        5000,
        'the GET at t2',
      )
      expect([other.status, other.body.code, other.body.message]).toEqual([
        503,
        ErrorCode.SERVER_SHUTTING_DOWN,
        'the server is shutting down',
      ])
      // Its own tenant, written with an escape: the router reads it decoded, as its parameter.
      const own = await within(fetch(`${endpoint('t%31')}?v=1&sid=${sid}`), 5000, 'the GET at t1')
      expect(own.status).toBe(200)
      expect(packetsOf(await own.text())).toContainEqual(
        expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
      )
      await within(closing.done, 5000, 'the server to close')
    }, 25_000)
  },
)

describe('a live session opened under /t1, while the instance closes', () => {
  it('answers a POST under /t2 as one of no session, and its events are not heard', async () => {
    const app = Fastify({ forceCloseConnections: true })
    const hold = holding()
    const heard: unknown[] = []
    let server: ParleyServer | undefined
    await app.register(
      async (tenant) => {
        await tenant.register(parley, {})
        tenant.parley.on('connection', (socket) => {
          hold.onConnection(socket)
          socket.on('note', (text: unknown) => heard.push(text))
        })
        server = tenant.parley
      },
      { prefix: '/:tenant' },
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const client = await rawConnect('polling', `http://127.0.0.1:${port}/t1/parley`)
    const closing = { done: Promise.resolve() }
    teardown.push(async () => {
      client.close()
      hold.release()
      await closing.done
    })
    // Its event waits in the middleware: the close waits for it, the session live meanwhile.
    await client.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
    closing.done = app.close()
    await until(() => server?.closing === true, 5000, 'the instance to begin its close')

    const note = JSON.stringify([PacketType.EVENT, 2, 'note', ['from t2'], 0])
    const answer = await within(
      exchange(
        `http://127.0.0.1:${port}/t2/parley/poll?v=1&sid=${encodeURIComponent(client.sid)}`,
        'POST',
        { 'content-type': 'text/plain' },
        note,
      ),
      5000,
      'the answer to the POST at t2',
    )
    expect([answer.status, answer.body.code, answer.body.message]).toEqual([
      503,
      ErrorCode.SERVER_SHUTTING_DOWN,
      'the server is shutting down',
    ])
    hold.release()
    await within(closing.done, 5000, 'the instance to close')
    expect(heard).toEqual([])
  }, 25_000)
})
