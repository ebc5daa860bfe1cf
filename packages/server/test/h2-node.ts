// A Parley node on an HTTP/2 Fastify over TLS with `allowHTTP1` (what browsers need: see the
// README's "HTTP/2"), and an h2 client connected to it, for the suites that put such a node
// among others. Its certificate is the fixture's (self-signed.ts), which the client trusts.
import type { OutgoingHttpHeaders } from 'node:http'
import http2, { type Http2SecureServer } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { encodeText, PacketType } from '@parley/protocol'
import parley, { type ParleyServer, type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { packetsOf } from './answer-packets.js'
import { until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

/** What the suites use of an HTTP/2 Fastify with Parley. */
export interface H2App {
  parley: ParleyServer
  close(): Promise<unknown>
}

/** One answer on an h2 stream: its status, its headers and its whole body. */
export interface H2Answer {
  status: number
  headers: http2.IncomingHttpHeaders
  text: string
}

export interface H2Node {
  app: H2App
  /** `https://127.0.0.1:<port>` plus Parley's path. */
  base: string
  port: number
  /** The h2 connection the suite's requests go on. */
  client: http2.ClientHttp2Session
  /**
   * One request on `client`, a stream of its own; `path` is under Parley's (no leading slash).
   * `responded` hears its status as soon as it comes, before the body (an event stream's).
   */
  send(
    method: string,
    path: string,
    body?: string,
    headers?: http2.OutgoingHttpHeaders,
    responded?: (status: number) => void,
  ): Promise<H2Answer>
  /** Closes the client, then the app (ending its sessions first, as `closeApp` does). */
  stop(): Promise<void>
}

/** Fastify's `logger` option, for a node whose lines a test reads (none by default). */
export type H2Logger = { level: string; stream: { write(line: string): void } }

/**
 * Starts the node on 127.0.0.1, port 0, with `options` (and `logger`); `setup` runs before it
 * listens. The caller stops it (`stop()`), in its teardown.
 */
export async function startH2Node(
  options: ParleyServerOptions = {},
  setup?: (app: FastifyInstance<Http2SecureServer>) => void,
  logger?: H2Logger,
): Promise<H2Node> {
  const tls = selfSigned()
  const app = Fastify({ http2: true, https: { ...tls, allowHTTP1: true }, ...(logger && { logger }) })
  await app.register(parley, options)
  setup?.(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = http2.connect(`https://127.0.0.1:${port}`, { ca: tls.cert })
  const stop = async () => {
    client.destroy()
    for (const socket of [...app.parley.sockets.values()]) socket.disconnect()
    await app.close()
  }
  try {
    await within(
      new Promise((resolve, reject) => client.once('remoteSettings', resolve).once('error', reject)),
      5000,
      'the h2 connection',
    )
  } catch (error) {
    await stop()
    throw error
  }
  const path = options.path ?? '/parley'
  const send = async (
    method: string,
    to: string,
    body = '',
    headers: http2.OutgoingHttpHeaders = {},
    responded?: (status: number) => void,
  ) => {
    const stream = client.request({ ':method': method, ':path': `${path}/${to}`, ...headers })
    const answer = answerOf(stream, responded)
    // A GET's stream ends with its headers (Node's default for it).
    if (method !== 'GET') stream.end(body)
    return answer
  }
  return { app, base: `https://127.0.0.1:${port}${path}`, port, client, send, stop }
}

/**
 * The answer on an h2 client's `stream`, whole once it ends; `responded` hears its status as soon
 * as it comes, before the body.
 */
export function answerOf(
  stream: http2.ClientHttp2Stream,
  responded?: (status: number) => void,
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    let status = 0
    let headers: http2.IncomingHttpHeaders = {}
    let text = ''
    stream.setEncoding('utf8')
    stream.on('response', (received) => {
      status = Number(received[':status'])
      headers = received
      responded?.(status)
    })
    stream.on('data', (chunk: string) => {
      text += chunk
    })
    stream.on('end', () => resolve({ status, headers, text }))
    stream.on('error', reject)
  })
}

/** What `startH2NodeHeldAtClose` gives: the node, and its close held open. */
export interface HeldH2Node {
  node: H2Node
  /** Lets the held event go: b's close then goes on. Again, does nothing. */
  letGo(): void
  /**
   * Opens b's own session (over h2, polling: `sid`), sends it the held event, and begins b's
   * close.
   */
  closeHeld(): Promise<{ closing: Promise<unknown>; sid: string }>
}

/**
 * An h2 node (`options`, with no handoff of its own; `logger`) whose close waits for an event its own
 * session's middleware holds until `letGo()`: meanwhile Fastify refuses requests, and the node
 * answers those of the endpoints itself (see last-words.ts), sending on those of other nodes'
 * sessions. The caller stops the node, and lets go first.
 */
export async function startH2NodeHeldAtClose(
  options: ParleyServerOptions,
  logger?: H2Logger,
): Promise<HeldH2Node> {
  let letGo: () => void = () => {}
  const held = new Promise<void>((resolve) => {
    letGo = resolve
  })
  let inMiddleware = false
  const node = await startH2Node(
    { ...options, handoff: false },
    (app) => {
      app.parley.on('connection', (socket) =>
        socket.use(async () => {
          inMiddleware = true
          await held
        }),
      )
    },
    logger,
  )
  async function closeHeld(): Promise<{ closing: Promise<unknown>; sid: string }> {
    const text = { 'content-type': 'text/plain' }
    const handshake = await node.send('POST', 'poll?v=1', '[8,{}]', text)
    const open = packetsOf(handshake.text)[0]
    if (open?.type !== PacketType.OPEN) throw new Error(`no OPEN from the h2 node: ${handshake.text}`)
    const event = encodeText({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await node.send('POST', `poll?v=1&sid=${open.sid}`, event, text)
    await until(() => inMiddleware, 3000, "the event in the h2 node's middleware")
    const closing = node.app.close()
    await until(() => node.app.parley.closing, 3000, 'the h2 node closing')
    return { closing, sid: open.sid }
  }
  return { node, letGo: () => letGo(), closeHeld }
}

/**
 * One request over HTTP/1.1 to an h2 node (`allowHTTP1`, what a browser without HTTP/2 sends), on
 * a connection of its own, the fixture's certificate trusted.
 */
export function http1Request(
  port: number,
  path: string,
  {
    method = 'GET',
    headers = {},
    body,
  }: { method?: string; headers?: OutgoingHttpHeaders; body?: string } = {},
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, method, path, ca: selfSigned().cert, agent: false, headers },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}
