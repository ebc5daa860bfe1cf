// In Node a body with no end (a broken proxy, a hostile server) must not take the memory of the
// whole process: the client reads an HTTP answer or an SSE event only up to the maxPayload the
// server stated, then gives up on the transport with PARLEY_PAYLOAD_TOO_LARGE. The body of a
// refused WebSocket upgrade likewise, and that of an error answer (a 500) up to the protocol's
// default maxPayload: the error then has its status alone. The real server never sends such a
// body, so a stand-in pours one; it stops at CAP should the client keep reading, and counts what
// it wrote.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import type { ClientOptions } from '../src/options.js'
import { client, closeClients, next } from './helpers.js'

/** Where the stand-in stops pouring, whatever the client does. */
const CAP = 64 * 1024 * 1024
/** What the OPEN states: an answer or an event may hold this many bytes. */
const MAX_PAYLOAD = 1000
/** The protocol's default maxPayload, what the client knows before an OPEN. */
const DEFAULT_MAX_PAYLOAD = 1_000_000
/** What the stand-in may have written before the client's close reached it (socket buffers). */
const WRITTEN_AT_MOST = 16 * 1024 * 1024

type Mode =
  | 'handshake'
  | 'poll'
  | 'sse line'
  | 'sse lines'
  | 'refused upgrade'
  | 'failed handshake'
  | 'failed poll'
  | 'multibyte refusal'
  | 'multibyte sse line'

let server: Server | undefined
afterEach(async () => {
  closeClients()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

/** Writes `head`, then `piece` over and over until the client goes or CAP is reached. */
function pour(res: ServerResponse, head: string, piece: string, written: { bytes: number }): void {
  const chunk = piece.repeat(Math.ceil(16_384 / piece.length))
  res.write(head)
  const more = () => {
    while (!res.destroyed && written.bytes < CAP) {
      written.bytes += chunk.length
      if (!res.write(chunk)) {
        res.once('drain', more)
        return
      }
    }
    if (!res.destroyed) res.end()
  }
  more()
}

async function standIn(mode: Mode) {
  const written = { bytes: 0 }
  const open = JSON.stringify([
    0,
    {
      sid: 'endless-session-00001',
      id: 'endless-socket-000001',
      pingInterval: 20_000,
      pingTimeout: 20_000,
      maxPayload: MAX_PAYLOAD,
      transports: ['sse', 'polling'],
      recovered: false,
      ack: 0,
    },
  ])
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    res.on('error', () => {})
    const handshake = req.method === 'POST' && !req.url?.includes('sid=')
    if (mode === 'refused upgrade') {
      // (Without an 'upgrade' listener, Node hands an upgrade request to this one.)
      res.writeHead(403, { 'content-type': 'application/json' })
      pour(res, '{"code":"PARLEY_REFUSED","message":"', 'x', written)
    } else if (mode === 'multibyte refusal') {
      // A whole body, under the default maxPayload in characters but three times over it in bytes.
      res.writeHead(403, { 'content-type': 'application/json' })
      res.end(`{"code":"PARLEY_REFUSED","message":"${'界'.repeat(DEFAULT_MAX_PAYLOAD / 2)}"}`)
    } else if (mode === 'failed handshake' || (mode === 'failed poll' && req.method === 'GET')) {
      res.writeHead(500, { 'content-type': 'application/json' })
      pour(res, '{"code":"PARLEY_BAD_REQUEST","message":"', 'x', written)
    } else if (req.method === 'POST' && !handshake) {
      res.writeHead(204).end()
    } else if (handshake && mode !== 'handshake') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(open)
    } else if (handshake) {
      // Before OPEN the client knows no maxPayload but the protocol's default.
      res.writeHead(200, { 'content-type': 'text/plain' })
      pour(res, '[0,{"sid":"', 'x', written)
    } else if (mode === 'poll') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      pour(res, '[2,1,"news",[', '"x",', written)
    } else {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const prelude = `:${' '.repeat(2048)}\n\n`
      // One line under maxPayload + 4 KiB in characters, over it in bytes; its event never ends.
      if (mode === 'multibyte sse line')
        res.write(`${prelude}data: [2,1,"news",["${'界'.repeat(2 * MAX_PAYLOAD)}"]]\n`)
      else if (mode === 'sse line') pour(res, `${prelude}data: [2,1,"news",[`, '"x",', written)
      else pour(res, prelude, 'data: [2]\n', written)
    }
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, written }
}

/**
 * The first `connect_error` of a client (`options`) against a stand-in in `mode`, once it is
 * checked that the client stopped reading: the stand-in wrote something, and far from all.
 */
async function firstFailure(mode: Mode, options: ClientOptions) {
  const { url, written } = await standIn(mode)
  const socket = client(url, { connectTimeout: 10_000, ...options })
  const [error, willRetry] = (await next(socket, 'connect_error', 10_000)) as [ParleyError<string>, boolean]
  socket.disconnect()
  expect(written.bytes).toBeGreaterThan(0)
  expect(written.bytes).toBeLessThan(WRITTEN_AT_MOST)
  return { error, willRetry }
}

describe.each([
  ['the handshake answer', 'handshake', 'polling'],
  ['a poll answer', 'poll', 'polling'],
  ['an SSE line', 'sse line', 'sse'],
  ['an SSE event of endless data lines', 'sse lines', 'sse'],
] as const)('%s with no end', (_name, mode, transport) => {
  it('is read up to maxPayload, then the transport gives up with PARLEY_PAYLOAD_TOO_LARGE', async () => {
    const { error, willRetry } = await firstFailure(mode, { transports: [transport] })
    expect(error.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE)
    expect(willRetry).toBe(true)
  })
})

describe.each([
  ['the handshake', 'polling', 'failed handshake'],
  ['the handshake', 'sse', 'failed handshake'],
  ['a poll', 'polling', 'failed poll'],
] as const)('an error answer to %s with no end, over %s', (_name, transport, mode) => {
  it("is read up to the protocol's default maxPayload, then the error has its status alone", async () => {
    const { error } = await firstFailure(mode, { transports: [transport], reconnection: false })
    expect(error).toMatchObject({ code: ErrorCode.TRANSPORT_ERROR, details: { status: 500, refused: false } })
    expect(error.message).toMatch(/^HTTP 500 from http:/)
  })
})

describe('the body of a refused WebSocket upgrade with no end', () => {
  it('is read up to maxPayload, then the refusal has its status alone', async () => {
    const { error, willRetry } = await firstFailure('refused upgrade', { transports: ['websocket'] })
    // Its code unread, a 403 at the upgrade is no refusal of the client (most often a proxy that
    // lets no WebSocket through): the client tries again.
    expect(error).toMatchObject({ code: ErrorCode.TRANSPORT_ERROR, details: { status: 403 } })
    expect(error.details?.refused).not.toBe(true)
    expect(willRetry).toBe(true)
  })
})

// maxPayload counts UTF-8 bytes everywhere: text of few characters but many bytes is past it too.
describe('a body within maxPayload in characters but past it in bytes', () => {
  it('is not taken from a refused WebSocket upgrade: the refusal has its status alone', async () => {
    const { url } = await standIn('multibyte refusal')
    const socket = client(url, { transports: ['websocket'] })
    const [error, willRetry] = (await next(socket, 'connect_error', 10_000)) as [ParleyError<string>, boolean]
    socket.disconnect()
    expect(error).toMatchObject({ code: ErrorCode.TRANSPORT_ERROR, details: { status: 403 } })
    expect(willRetry).toBe(true)
  })

  it('ends an SSE line past maxPayload and its slack with PARLEY_PAYLOAD_TOO_LARGE', async () => {
    const { url } = await standIn('multibyte sse line')
    const socket = client(url, { transports: ['sse'] })
    const [error] = (await next(socket, 'connect_error', 10_000)) as [ParleyError<string>, boolean]
    socket.disconnect()
    expect(error).toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message: `event over ${MAX_PAYLOAD} bytes`,
    })
  })
})
