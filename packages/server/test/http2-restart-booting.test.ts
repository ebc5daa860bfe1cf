// A restart on one HTTP/2 server (kept across restarts, serverFactory, HTTP/1.1 beside) whose
// boot has yet to reach Parley when the old instance's close ends, as
// restart-booting-successor.test.ts has it over HTTP/1.1 alone. The old one, the last serving on
// the server, closes the server's sessions then. The restart, once booted, knows the server's
// connections afresh: it keeps an HTTP/1.1 connection alive between its answers, where what it
// shared with the old one, closed under it, ended each after its first answer; and an h2 session
// that came before it booted is still its own to close.

import http2, {
  type ClientHttp2Session,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2'
import { Agent, request as httpsRequest } from 'node:https'
import { encodeText, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { type Gate, gate } from './gate.js'
import { answerOf } from './h2-node.js'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

/** An HTTP/2 server over TLS (with HTTP/1.1 beside), listening, closed when the test ends. */
async function h2Server() {
  const tls = selfSigned()
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true })
  const serving: { handler?: Handler | undefined } = {}
  server.on('request', (req, res) => {
    if (serving.handler) serving.handler(req, res)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  return { server, port, ca: tls.cert, serving }
}

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void

/**
 * An instance on `server` with Parley at `/a`, `closeHeld` holding its close once Parley's own
 * close hook has run, `bootHeld` its boot before Parley's onReady hook (a plugin after Parley).
 * Its `ready()` is not awaited.
 */
function instance(
  server: Http2SecureServer,
  { bootHeld, hold }: { bootHeld?: Gate; hold?: ReturnType<typeof holding> } = {},
) {
  let handler: Handler | undefined
  const app = Fastify({
    http2: true,
    https: { allowHTTP1: true },
    forceCloseConnections: true,
    serverFactory: (given) => {
      handler = given as unknown as Handler
      return server
    },
  }) as unknown as FastifyInstance
  onTestFinished(async () => {
    hold?.release()
    bootHeld?.open()
    await app.close().catch(() => {})
  })
  app.register(parley, { path: '/a' })
  if (hold) app.register(async (context) => void context.parley.on('connection', hold.onConnection))
  if (bootHeld) app.register(async () => bootHeld.pass())
  const ready: Promise<unknown> = Promise.resolve(app.ready())
  return { app, ready, handler: () => handler }
}

/** An answer over HTTP/1.1 on `agent`, and whether it came on a connection used before. */
function http1Get(port: number, agent: Agent): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/quick', agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A POST on an h2 session: its answer. */
function h2Post(client: ClientHttp2Session, path: string, body: string) {
  const stream = client.request({ ':method': 'POST', ':path': path, 'content-type': 'text/plain' })
  stream.end(body)
  return answerOf(stream)
}

/** An h2 client session to `port`, its settings exchanged. */
async function h2Client(port: number, ca: Buffer): Promise<ClientHttp2Session> {
  const client = http2.connect(`https://127.0.0.1:${port}`, { ca })
  client.on('error', () => {})
  onTestFinished(() => void client.destroy())
  await within(new Promise((resolve) => client.once('remoteSettings', resolve)), 5000, 'the h2 session')
  return client
}

/**
 * The old instance on `server` closed while a restart's boot waits before Parley: `booted` lets it
 * go on, and resolves once it is ready.
 */
async function closedWhileBooting(shared: Awaited<ReturnType<typeof h2Server>>) {
  const { server, port, ca, serving } = shared
  const hold = holding()
  const old = instance(server, { hold })
  await within(old.ready, 5000, 'the old instance to boot')
  serving.handler = old.handler()
  // A session whose event waits in the middleware: the old one's close waits for it, within
  // Parley's own close hook, before it ends the server's connections.
  const client = await h2Client(port, ca)
  const open = packetsOf(
    (await within(h2Post(client, '/a/poll?v=1', '[8,{}]'), 5000, 'the handshake')).text,
  )[0]
  if (open?.type !== PacketType.OPEN) throw new Error('no OPEN')
  const event = encodeText({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
  await within(h2Post(client, `/a/poll?v=1&sid=${open.sid}`, event), 5000, 'the held event')
  await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
  const closing = old.app.close()
  await until(() => old.app.parley.closing, 5000, 'the old instance to begin its close')
  const booting = gate()
  const restart = instance(server, { bootHeld: booting })
  await until(() => booting.reached(), 5000, "the restart's boot to reach the plugin after Parley")
  hold.release()
  client.destroy()
  await within(closing, 5000, 'the old instance to close')
  // The server's requests go to nobody's Fastify for now: its own 404.
  serving.handler = undefined
  return {
    restart: restart.app,
    async booted() {
      booting.open()
      await within(restart.ready, 5000, 'the restart to boot')
    },
  }
}

describe('a restart on an HTTP/2 server whose boot has yet to reach Parley when the old instance has closed', () => {
  it('keeps an HTTP/1.1 connection alive between its answers once booted', async () => {
    const shared = await h2Server()
    const { port, ca } = shared
    const { booted } = await closedWhileBooting(shared)
    await booted()
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca })
    onTestFinished(() => agent.destroy())
    expect(await within(http1Get(port, agent), 5000, 'the first answer')).toEqual({
      status: 404,
      reused: false,
    })
    expect(await within(http1Get(port, agent), 5000, 'the second answer')).toEqual({
      status: 404,
      reused: true,
    })
  })

  it('closes, at its own close, an h2 session that came before it booted', async () => {
    const shared = await h2Server()
    const { port, ca } = shared
    const { restart, booted } = await closedWhileBooting(shared)
    const client = await h2Client(port, ca)
    const ended = new Promise((resolve) => client.once('close', resolve))
    await booted()
    await within(restart.close(), 5000, 'the restart to close')
    await within(ended, 5000, "the h2 session to end with the restart's close")
  })
})
