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
      { pingInterval: 40, pingTimeout: 200 },
    )
    const socket = client(server.url, { transports: ['polling'] })
    await next(socket, 'connect')
    // Each PING answers the held GET; the GET that follows is the PONG.
    await until(() => requests.length >= 12, 5000, 'a dozen polls')
    expect(requests.filter((method) => method !== 'GET')).toEqual([])
    expect(changes).toEqual([])
    expect(socket.transport).toBe('polling')
  })
})

describe('polling, an answer lost to a GET the client had given up on', () => {
  it('gets the packets again on its next GET, whose ack says it never read them', async () => {
    let peer: ServerSocket | undefined
    const reasons: string[] = []
    server = await startServer(
      (app) => {
        parleyOf(app).on('connection', (socket) => {
          peer = socket
          socket.on('disconnect', (reason: string) => reasons.push(reason))
        })
      },
      // No heartbeat within the test: a PING would end the stall by itself only with a
      // later numbered packet, and this test sends none.
      { pingInterval: 30_000, pingTimeout: 30_000 },
    )
    // The network between client and server, as a proxy makes it: `loseNextAnswer` breaks the
    // connection of the next GET answer that carries packets; the resume that follows then
    // finds a GET of the session, sent earlier and given up on, arriving at the server before
    // the client's own first GET (the stale GET takes whatever waits for the client).
    let loseNextAnswer = false
    let staleGetOf: string | undefined
    const stolen: string[] = []
    const network: typeof fetch = async (input, init) => {
      const url = String(input)
      const res = await fetch(input, init)
      if (init?.method !== 'POST' && loseNextAnswer) {
        const body = await res.text()
        if (body === '') return new Response('', { status: res.status, headers: res.headers })
        loseNextAnswer = false
        staleGetOf = url.replace(/&ack=\d+$/, '')
        throw new TypeError('fetch failed: the connection broke')
      }
      if (init?.method === 'POST' && staleGetOf !== undefined && !url.includes('sid=')) {
        const stale = staleGetOf
        staleGetOf = undefined
        // The late GET: its ack is the client's from before it gave up, and nobody reads it.
        stolen.push(await (await fetch(`${stale}&ack=3`)).text())
      }
      return res
    }
    const socket = client(server.url, { transports: ['polling'], fetch: network })
    const got: number[] = []
    const switches: string[] = []
    socket.on('news', (n: number) => got.push(n))
    socket.on('transport', (now: string, before: string, why: string) =>
      switches.push(`${before} ${why} ${now}`),
    )
    await next(socket, 'connect')
    await until(() => peer !== undefined)
    for (let n = 1; n <= 3; n++) peer!.emit('news', n)
    await until(() => got.length === 3)
    loseNextAnswer = true
    for (let n = 4; n <= 6; n++) peer!.emit('news', n)
    await until(() => switches.length === 1, 3000, 'the resume')
    // The replay went to the stale GET; without a second sending the client would wait for
    // the next message to show it a gap.
    expect(stolen.join('\n')).toContain('"news",[4]')
    await until(() => got.length === 6, 3000, 'the packets the stale GET took')
    expect(got).toEqual([1, 2, 3, 4, 5, 6])
    expect(switches).toEqual(['polling resume polling'])
    expect(socket.recovered).toBe(true)
    expect(reasons).toEqual([])
    peer!.emit('news', 7)
    await until(() => got.length === 7)
  })
})
