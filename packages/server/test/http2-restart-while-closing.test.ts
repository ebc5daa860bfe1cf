// An instance restarted at the path of one still closing, on one HTTP/2 server over TLS kept
// across restarts (serverFactory, `allowHTTP1`), as restart-while-closing.test.ts has it over
// HTTP/1.1: the new one takes the new sessions, over h2 and over HTTP/1.1 beside it, while the
// old one's session hears its own POST and gets the old one's CLOSE at its next poll.

import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { encodeText, type Packet, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { answerOf, http1Request } from './h2-node.js'
import { holding } from './held-events.js'
import { closeApp, until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void

const teardown: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const step of teardown.splice(0).reverse()) await step()
})

/**
 * One HTTP/2 server over TLS whose requests go to the handler of the instance made current, an h2
 * connection to it, and `make`, which gives each new instance that server (Parley at `/a`).
 */
async function restartableH2Server(return503OnClosing: boolean) {
  const tls = selfSigned()
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true })
  let current: Handler | undefined
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (current) current(req, res)
    else res.writeHead(404).end()
  })
  const apps: FastifyInstance<Http2SecureServer>[] = []
  teardown.push(async () => {
    for (const app of apps) await closeApp(app)
    await new Promise((resolve) => server.close(resolve))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const client = http2.connect(`https://127.0.0.1:${port}`, { ca: tls.cert })
  teardown.push(() => void client.destroy())
  await within(
    new Promise((resolve, reject) => client.once('remoteSettings', resolve).once('error', reject)),
    5000,
    'the h2 connection',
  )
  /** One request on the h2 connection, a stream of its own: its status and the packets answered. */
  const send = async (
    method: string,
    path: string,
    body = '',
  ): Promise<{ status: number; packets: Packet[] }> => {
    const stream = client.request({ ':method': method, ':path': path, 'content-type': 'text/plain' })
    const answer = answerOf(stream).then(({ status, text }) => ({
      status,
      packets: status === 200 ? packetsOf(text) : [],
    }))
    if (method !== 'GET') stream.end(body)
    return answer
  }
  return {
    port,
    send,
    /** A new instance on the server, its sockets' events held as `hold` says. */
    async make(hold?: ReturnType<typeof holding>) {
      let given: Handler | undefined
      const app = Fastify({
        http2: true,
        https: { allowHTTP1: true },
        forceCloseConnections: true,
        return503OnClosing,
        serverFactory: (handler) => {
          given = handler as unknown as Handler
          return server
        },
      }) as unknown as FastifyInstance<Http2SecureServer>
      apps.push(app)
      await app.register(parley, { path: '/a' })
      if (hold) app.parley.on('connection', hold.onConnection)
      await app.ready()
      return {
        app,
        serve: () => {
          current = given
        },
      }
    },
    /** A polling handshake over h2: the new session's sid. */
    async handshake(): Promise<string> {
      const { packets } = await within(send('POST', '/a/poll?v=1', '[8,{}]'), 5000, 'a handshake over h2')
      const open = packets[0]
      if (open?.type !== PacketType.OPEN) throw new Error(`no OPEN: ${JSON.stringify(packets)}`)
      return open.sid
    },
  }
}

const event = (seq: number, name: string) =>
  encodeText({ type: PacketType.EVENT, seq, name, args: [], ackId: 0 })

describe('an instance restarted at the path of one still closing on one HTTP/2 server', () => {
  it.each([true, false])(
    "takes the new sessions, while the old one's session hears its own POST and gets its CLOSE (return503OnClosing: %s)",
    async (return503OnClosing) => {
      const shared = await restartableH2Server(return503OnClosing)
      const hold = holding()
      const old = await shared.make(hold)
      old.serve()
      const sid = await shared.handshake()
      // Its event waits in the middleware: the old instance's close waits for it.
      await within(shared.send('POST', `/a/poll?v=1&sid=${sid}`, event(1, 'hold')), 5000, 'the held event')
      await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
      const closing = old.app.close()
      teardown.push(async () => {
        hold.release()
        await closing
      })
      await until(() => old.app.parley.closing, 5000, 'the old instance to begin its close')

      const restarted = await shared.make()
      restarted.serve()
      // New sessions are the new one's, over h2 and over HTTP/1.1 beside it.
      await shared.handshake()
      const overHttp1 = await within(
        http1Request(shared.port, '/a/poll?v=1', {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: '[8,{}]',
        }),
        5000,
        'a handshake over HTTP/1.1',
      )
      expect(packetsOf(overHttp1.text)[0]?.type).toBe(PacketType.OPEN)
      expect({ old: old.app.parley.sockets.size, restarted: restarted.app.parley.sockets.size }).toEqual({
        old: 1,
        restarted: 2,
      })
      // The old session's POST is the old instance's to hear, though the server hands the path's
      // requests to the new one.
      const posted = await within(
        shared.send('POST', `/a/poll?v=1&sid=${sid}`, event(2, 'late')),
        5000,
        'the POST',
      )
      expect(posted.status).toBe(204)
      // Its next poll carries the old instance's CLOSE once the held event is through.
      const poll = shared.send('GET', `/a/poll?v=1&sid=${sid}`)
      hold.release()
      await within(closing, 5000, 'the old instance to close')
      const { status, packets } = await within(poll, 5000, "the old session's poll")
      expect(status).toBe(200)
      expect(packets.find((packet) => packet.type === PacketType.CLOSE)).toMatchObject({
        reason: 'server shutdown',
      })
      // And the new one goes on taking sessions once the old one has gone.
      await shared.handshake()
      expect(restarted.app.parley.sockets.size).toBe(3)
    },
    40_000,
  )
})
