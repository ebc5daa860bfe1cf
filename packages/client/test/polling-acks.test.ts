// Over long-polling the client acknowledges in its GETs (`ack=N`), and answers PINGs with them,
// not with POSTs of their own: checked against the real server, whose slow-consumer limit cuts
// a client that does not acknowledge, and whose heartbeat detaches one that does not answer.
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeAll,
  next,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined
afterEach(closeAll)

describe('polling', () => {
  it('acknowledges in its GETs: no POST for ACKs, and the server forgets what was delivered', async () => {
    const requests: string[] = []
    const reasons: string[] = []
    let peer: ServerSocket | undefined
    server = await startServer(
      (app) => {
        app.addHook('onRequest', async (request) => {
          if (request.url.startsWith('/parley/poll')) requests.push(`${request.method} ${request.url}`)
        })
        parleyOf(app).on('connection', (socket) => {
          peer = socket
          socket.on('disconnect', (reason: string) => reasons.push(reason))
        })
      },
      // A replay buffer far smaller than what is sent: without ACKs the session is cut as a
      // slow consumer.
      { pingInterval: 30_000, pingTimeout: 30_000, maxBufferedBytes: 16 * 1024 },
    )
    const socket = client(server.url, { transports: ['polling'] })
    const got: number[] = []
    socket.on('news', (n: number) => got.push(n))
    await next(socket, 'connect')
    await until(() => peer !== undefined)
    const text = 'x'.repeat(1000)
    for (let n = 1; n <= 60; n++) {
      peer!.emit('news', n, text)
      // A few at a time, as a chat or a feed sends them; some answers hold several.
      if (n % 3 === 0) await until(() => got.length === n)
    }
    await until(() => got.length === 60)
    // A burst: answers of dozens of packets, acknowledged by the GETs after them all the same.
    for (let n = 61; n <= 160; n++) peer!.emit('news', n, 'short')
    await until(() => got.length === 160)
    expect(got).toEqual(Array.from({ length: 160 }, (_, i) => i + 1))
    expect(reasons).toEqual([])
    const afterHandshake = requests.filter((r) => r.includes('sid='))
    expect(afterHandshake.filter((r) => r.startsWith('POST'))).toEqual([])
    const acks = afterHandshake.map((r) =>
      Number(new URL(r.split(' ')[1]!, 'http://x').searchParams.get('ack')),
    )
    // Every ACK is cumulative and they only grow; the last GET acknowledged nearly everything.
    expect(acks.filter((a) => a > 0)).toEqual([...acks.filter((a) => a > 0)].sort((a, b) => a - b))
    expect(Math.max(...acks)).toBeGreaterThanOrEqual(60)
  })

  it('answers PINGs with its GETs: no POST, and the server keeps the transport attached', async () => {
    const requests: string[] = []
    const changes: unknown[] = []
    server = await startServer(
      (app) => {
        app.addHook('onRequest', async (request) => {
          if (request.url.includes('sid=')) requests.push(request.method)
        })
        parleyOf(app).on('connection', (socket) => {
          socket.on('transport', (now: unknown) => changes.push(now))
          socket.on('disconnect', (reason: string) => changes.push(reason))
        })
      },
      // A PING every 300 ms, each PONG due within 300 ms: the client, which gives the server
      // pingInterval + pingTimeout to say something, has 300 ms to spare on a loaded machine.
      { pingInterval: 300, pingTimeout: 300 },
    )
    const socket = client(server.url, { transports: ['polling'] })
    await next(socket, 'connect')
    // Each PING answers the held GET; the GET that follows is the PONG. A PONG that did not count
    // would have cost the transport at the next check.
    await until(() => requests.length >= 6, 10_000, 'six polls')
    expect(requests.filter((method) => method !== 'GET')).toEqual([])
    expect(changes).toEqual([])
    expect(socket.transport).toBe('polling')
  })
})
