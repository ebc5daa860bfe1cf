// The Node client over TLS to an HTTP/2 Fastify with `allowHTTP1` (what browsers need: see the
// server README's "HTTP/2"), whose certificate is the test fixture's, self-signed: no default CA
// vouches for it, as for a private CA. Each transport on its own: WebSocket over an HTTP/1.1
// upgrade (`ws`), SSE and polling over Node's fetch (HTTP/1.1 too: Node's fetch speaks no h2
// unless told). Events and acks both ways.
//
// Trusted by NODE_EXTRA_CA_CERTS, in a process of its own (Node reads it at its start), with no
// option given; or in code, as the client README shows: a `WebSocket` that passes `ca` to `ws`,
// and a `fetch` that gives Node's an undici `Agent` trusting it.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import parley from '@parley/server'
import Fastify from 'fastify'
// undici is a dev dependency of the client's tests only (the client needs none). Its `Agent`
// is what Node's own fetch takes as `dispatcher`, with the CA to trust.
import { Agent } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { closeApp, within } from '../../server/test/helpers.js'
import { selfSigned } from '../../server/test/self-signed.js'
import { connect, type Socket } from '../src/index.js'
import { childResult } from './child-process.js'

const child = fileURLToPath(new URL('./tls-client-child.ts', import.meta.url))
const certificate = fileURLToPath(new URL('../../server/test/fixtures/node-tls.crt', import.meta.url))

const closes: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of closes.splice(0)) await close()
})

/**
 * The server, on 127.0.0.1: it answers 'echo' with an ack, and on each connection sends 'news',
 * then asks 'ask' with an ack and sends the answer back as 'thanks'.
 */
async function tlsServer(): Promise<string> {
  const app = Fastify({ http2: true, https: { ...selfSigned(), allowHTTP1: true } })
  closes.push(() => closeApp(app))
  await app.register(parley)
  app.parley.on('connection', (socket) => {
    socket.on('echo', (text: unknown, ack) => ack?.(`echo ${String(text)}`))
    socket.emit('news', 'fresh')
    void socket.emitWithAck('ask', 'q').then((answer: unknown) => socket.emit('thanks', answer))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return `https://127.0.0.1:${port}/parley`
}

const transports = ['websocket', 'sse', 'polling'] as const

describe('trusted by NODE_EXTRA_CA_CERTS', () => {
  it.each(transports)('connects over %s, events and acks both ways', async (transport) => {
    const url = await tlsServer()
    const env = { NODE_EXTRA_CA_CERTS: certificate }
    expect(await childResult(child, [url, transport], { env })).toEqual({
      transport,
      reply: 'echo hi',
      news: 'fresh',
      thanks: 'answer q',
    })
  })

  it.each(transports)('cannot connect over %s without it', async (transport) => {
    const url = await tlsServer()
    expect(await childResult(child, [url, transport])).toEqual({
      failed: 'PARLEY_TRANSPORT_ERROR',
      message: expect.stringContaining('DEPTH_ZERO_SELF_SIGNED_CERT'),
    })
  })
})

describe('trusted in code: the WebSocket and fetch options', () => {
  it.each(transports)(
    'connects over %s, events and acks both ways',
    async (transport) => {
      const url = await tlsServer()
      const ca = readFileSync(certificate)
      class TrustingWebSocket extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { ca })
        }
      }
      const dispatcher = new Agent({ connect: { ca } })
      const socket: Socket = connect(url, {
        transports: [transport],
        reconnection: false,
        WebSocket: TrustingWebSocket,
        fetch: (input, init) => fetch(input, { ...init, dispatcher } as RequestInit),
      })
      closes.push(async () => {
        socket.disconnect()
        await dispatcher.close()
      })
      socket.on('ask', (question: string, ack: (answer: string) => void) => ack(`answer ${question}`))
      const news = new Promise<unknown>((resolve) => socket.once('news', resolve))
      const thanks = new Promise<unknown>((resolve) => socket.once('thanks', resolve))
      const errors: string[] = []
      socket.on('transport_error', (_name: string, error: Error) => errors.push(error.message))
      await within(new Promise<void>((resolve) => socket.once('connect', () => resolve())), 5000, 'connected')
      const reply = await within(socket.emitWithAck('echo', 'hi'), 5000, 'the reply')
      expect({
        transport: socket.transport,
        reply,
        news: await within(news, 5000, 'the news'),
        thanks: await within(thanks, 5000, 'the thanks'),
        errors,
      }).toEqual({ transport, reply: 'echo hi', news: 'fresh', thanks: 'answer q', errors: [] })
    },
    25_000,
  )
})

describe('an h2c server (HTTP/2 in clear, no HTTP/1.1 beside)', () => {
  it.each(transports)(
    'takes nothing of the Node client over %s, whose transports speak HTTP/1.1',
    async (transport) => {
      const app = Fastify({ http2: true })
      closes.push(() => closeApp(app))
      await app.register(parley)
      await app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = app.server.address() as { port: number }
      const socket = connect(`http://127.0.0.1:${port}/parley`, {
        transports: [transport],
        reconnection: false,
        WebSocket,
      })
      closes.push(async () => void socket.disconnect())
      const failed = new Promise<string | undefined>((resolve) => {
        socket.once('connect', () => resolve(undefined))
        socket.once('transport_error', (_name: string, error: { code?: string }) => resolve(error.code))
      })
      expect(await within(failed, 5000, 'the outcome')).toBe('PARLEY_TRANSPORT_ERROR')
    },
  )
})
