// In Node an application's fetch may give a 200 without a body, which the platform's never does
// for these requests: the client's read of it fails the try with a coded transport error, as a
// body cut short does, rather than a TypeError of its own code.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { client, closeAll, closeClients, startServer, until } from './helpers.js'

afterEach(async () => {
  closeClients()
  await closeAll()
})

it('fails the handshake whose 200 has no body with PARLEY_TRANSPORT_ERROR', async () => {
  const server = await startServer()
  // The server's answer to the HELLO, its body left out.
  const bodiless: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (init?.method !== 'POST') return res
    await res.body?.cancel()
    return new Response(null, { status: res.status, headers: res.headers })
  }
  const socket = client(server.url, { transports: ['polling'], reconnection: false, fetch: bodiless })
  const errors: ParleyError<string>[] = []
  socket.on('connect_error', (error: ParleyError<string>) => errors.push(error))
  await until(() => errors.length > 0, 5000, 'the connect_error')
  expect(errors[0]).toMatchObject({ code: ErrorCode.TRANSPORT_ERROR, message: 'answer without a body' })
})

it('fails the event stream whose 200 has no body with PARLEY_TRANSPORT_ERROR, as one that ended', async () => {
  const server = await startServer()
  // The server's event stream, its body left out.
  const bodiless: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (init?.method === 'POST') return res
    await res.body?.cancel()
    return new Response(null, { status: res.status, headers: res.headers })
  }
  const socket = client(server.url, { transports: ['sse'], reconnection: false, fetch: bodiless })
  const errors: ParleyError<string>[] = []
  socket.on('connect_error', (error: ParleyError<string>) => errors.push(error))
  await until(() => errors.length > 0, 5000, 'the connect_error')
  // As a stream that ends before its first bytes.
  expect(errors[0]).toMatchObject({ code: ErrorCode.TRANSPORT_ERROR, message: 'stream ended' })
})
