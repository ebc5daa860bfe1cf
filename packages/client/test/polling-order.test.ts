// Against the real server: a polling client asks for the next answer before the application's
// listeners run for the one it just read, with an `ack` that counts it.
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeClients,
  next,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined
afterEach(async () => {
  closeClients()
  await server?.close()
  server = undefined
})

describe('polling', () => {
  it("sends its next GET, acknowledging an answer's packets, before their listeners run", async () => {
    let peer: ServerSocket | undefined
    server = await startServer((app) => parleyOf(app).on('connection', (socket) => (peer = socket)), {
      pingInterval: 30_000,
      pingTimeout: 30_000,
    })
    // What the client does, in order: each GET it sends (with its ack) and each listener call.
    const log: string[] = []
    const socket = client(server.url, {
      transports: ['polling'],
      fetch: (input, init) => {
        const url = new URL(String(input))
        if ((init?.method ?? 'GET') === 'GET' && url.searchParams.has('sid'))
          log.push(`GET ack=${url.searchParams.get('ack')}`)
        return fetch(input, init)
      },
    })
    socket.on('news', (n: number) => log.push(`news ${n}`))
    await next(socket, 'connect')
    await until(() => peer !== undefined)
    // Numbered 1 to 5 by the server: some answers bring one, some several.
    for (let n = 1; n <= 5; n++) {
      peer!.emit('news', n)
      if (n % 2 === 1) await until(() => log.includes(`news ${n}`))
    }
    await until(() => log.includes('news 5'))
    // Each listener ran after a GET that acknowledged its packet had gone out.
    const acked = (i: number) =>
      Math.max(0, ...log.slice(0, i).map((e) => (e.startsWith('GET') ? Number(e.slice(8)) : 0)))
    const heard = log.flatMap((e, i) => (e.startsWith('news') ? [[Number(e.slice(5)), acked(i)]] : []))
    expect(heard.map(([n]) => n)).toEqual([1, 2, 3, 4, 5])
    for (const [n, ack] of heard)
      expect(ack, `ack sent before the listener of ${n}`).toBeGreaterThanOrEqual(n!)
  })
  it('delivers nothing more of an answer once a listener disconnects', async () => {
    let peer: ServerSocket | undefined
    server = await startServer((app) => parleyOf(app).on('connection', (socket) => (peer = socket)), {
      pingInterval: 30_000,
      pingTimeout: 30_000,
    })
    const socket = client(server.url, { transports: ['polling'] })
    const got: number[] = []
    socket.on('news', (n: number) => {
      got.push(n)
      if (n === 2) socket.disconnect()
    })
    await next(socket, 'connect')
    await until(() => peer !== undefined)
    // One answer: the server answers a held GET on its next tick.
    for (let n = 1; n <= 4; n++) peer!.emit('news', n)
    // The listeners of one answer run together: by the time two ran, all that would have had.
    await until(() => got.length >= 2)
    expect(got).toEqual([1, 2])
    expect(socket.connected).toBe(false)
  })
})
