// A server at its maxSessions refuses a new session with PARLEY_SERVER_FULL: the client does
// not take it as a refusal of itself, and connects once the server has room again.
// An attempt that met it (or PARLEY_SERVER_SHUTTING_DOWN) on one transport reports it in its
// connect_error, though a transport tried after it could not get through.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer } from './helpers.js'

afterEach(closeAll)

describe.each([
  ['websocket', ['websocket']],
  ['sse', ['sse']],
  ['polling', ['polling']],
  ['every transport in turn', ['websocket', 'sse', 'polling']],
] as const)('over %s', (_name, transports) => {
  it('tries again after its backoff, and connects once a session has ended', async () => {
    const held: ServerSocket[] = []
    const server = await startServer((app) => parleyOf(app).on('connection', (s) => held.push(s)), {
      maxSessions: 1,
    })
    const first = client(server.url, { transports: [...transports] })
    await next(first, 'connect')

    const second = client(server.url, { transports: [...transports], reconnectionDelayMax: 100 })
    const tried: string[] = []
    second.on('transport_error', (name: string, error: ParleyError<string>) =>
      tried.push(`${name} ${error.code}`),
    )
    const [error, willRetry] = (await next(second, 'connect_error')) as [ParleyError<string>, boolean]
    expect(error.code).toBe(ErrorCode.SERVER_FULL)
    expect(willRetry).toBe(true)
    // Each transport was tried once, and each met the same answer.
    expect(tried).toEqual(transports.map((t) => `${t} ${ErrorCode.SERVER_FULL}`))
    // It keeps trying while the server is full.
    await next(second, 'connect_error')
    expect(second.active).toBe(true)

    held[0]?.disconnect()
    await next(second, 'connect', 3000)
    expect(second.transport).toBe(transports[0])
    expect(held).toHaveLength(2)
  })
})

it('says PARLEY_SERVER_FULL in its connect_error when a transport the server leaves out is tried after', async () => {
  const server = await startServer(() => {}, { maxSessions: 1, transports: ['polling'] })
  const first = client(server.url, { transports: ['polling'] })
  await next(first, 'connect')
  // The server's answer on polling says why the attempt failed; the 404 of a transport it does
  // not offer, tried last, says nothing about that.
  const second = client(server.url, { transports: ['polling', 'websocket'] })
  const tried: string[] = []
  second.on('transport_error', (name: string, error: ParleyError<string>) =>
    tried.push(`${name} ${error.code}`),
  )
  const [error, willRetry] = (await next(second, 'connect_error')) as [ParleyError<string>, boolean]
  expect(tried).toEqual([`polling ${ErrorCode.SERVER_FULL}`, `websocket ${ErrorCode.TRANSPORT_DISABLED}`])
  expect([error.code, willRetry]).toEqual([ErrorCode.SERVER_FULL, true])
})

/**
 * A WebSocket as a browser's behaves when the server refuses the upgrade with an HTTP status: it
 * shows nothing of the answer, only a close 1006.
 */
class BlindWebSocket {
  binaryType = 'blob'
  protocol = ''
  onopen: (() => void) | null = null
  onmessage: ((ev: unknown) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  constructor() {
    setTimeout(() => {
      this.onerror?.({})
      this.onclose?.({ code: 1006, reason: '' })
    }, 0)
  }
  send(): void {}
  close(): void {}
}

it('says PARLEY_SERVER_SHUTTING_DOWN in its connect_error when a WebSocket that shows nothing is tried after', async () => {
  const server = await startServer()
  // One node: a drain hands nothing off and refuses new sessions until the close.
  await server.app.parley.drain()
  const socket = client(server.url, {
    transports: ['sse', 'websocket'],
    WebSocket: BlindWebSocket as unknown as typeof WebSocket,
  })
  const tried: string[] = []
  socket.on('transport_error', (name: string, error: ParleyError<string>) =>
    tried.push(`${name} ${error.code}`),
  )
  const [error, willRetry] = (await next(socket, 'connect_error')) as [ParleyError<string>, boolean]
  // SSE is tried once more (a balancer would send the try to another node), then WebSocket.
  expect(tried).toEqual([
    `sse ${ErrorCode.SERVER_SHUTTING_DOWN}`,
    `sse ${ErrorCode.SERVER_SHUTTING_DOWN}`,
    `websocket ${ErrorCode.TRANSPORT_ERROR}`,
  ])
  expect([error.code, willRetry]).toEqual([ErrorCode.SERVER_SHUTTING_DOWN, true])
})
