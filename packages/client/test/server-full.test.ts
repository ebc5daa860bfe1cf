// A server at its maxSessions refuses a new session with PARLEY_SERVER_FULL: the client does
// not take it as a refusal of itself, and connects once the server has room again.
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
