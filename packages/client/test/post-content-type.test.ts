// The HTTP transports' POSTs (the handshake and the upstream) reach the server as
// `text/plain;charset=UTF-8`, a type that keeps them simple requests (no CORS preflight). The
// client sets no Content-Type of its own: fetch gives a string body that one. Checked on the
// real server, through the platform's fetch, as a page's would send it.
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

describe.each(['polling', 'sse'] as const)('over %s', (transport) => {
  it('sends the handshake and the upstream as text/plain;charset=UTF-8', async () => {
    const types: { upstream: boolean; type: string | undefined }[] = []
    let heard = 0
    const server = await startServer((app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method === 'POST') {
          types.push({ upstream: request.url.includes('sid='), type: request.headers['content-type'] })
        }
      })
      parleyOf(app).on('connection', (socket: ServerSocket) => {
        socket.on('hi', () => heard++)
      })
    })
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    socket.emit('hi')
    await until(() => heard === 1, 3000, 'the emit')
    expect(types.some((t) => !t.upstream)).toBe(true)
    expect(types.some((t) => t.upstream)).toBe(true)
    for (const t of types) expect(t.type).toBe('text/plain;charset=UTF-8')
  })
})
