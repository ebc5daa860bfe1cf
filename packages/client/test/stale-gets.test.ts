// A GET the client gave up on (aborted as its transport failed) can reach the server late,
// held up in a proxy or a forwarding node, after the client resumed: it takes what the server
// sends (the replay) into a connection nobody reads. The client's next GET carries its ACK, and
// the server sends those packets again (docs/protocol.md, Delivery). Real client, real server;
// the network between them (`fetch`) loses an answer and delivers the stale GET.
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
      // No PING within the test: nothing but the client's own GETs can bring the packets.
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

describe('SSE, a stream taken by a GET the client had given up on', () => {
  it('gets the packets again on its own stream, whose GET says what it has', async () => {
    let peer: ServerSocket | undefined
    const reasons: string[] = []
    server = await startServer(
      (app) => {
        parleyOf(app).on('connection', (socket) => {
          peer = socket
          socket.on('disconnect', (reason: string) => reasons.push(reason))
        })
      },
      { pingInterval: 30_000, pingTimeout: 30_000 },
    )
    // `breakNextEvents` breaks the stream at the next events it brings (they are lost); the
    // resume that follows finds an earlier GET of the session arriving first, which takes the
    // new transport's stream, and the replay with it, and is never read.
    let breakNextEvents = false
    let staleGetOf: string | undefined
    const stale: { body?: ReadableStreamDefaultReader<Uint8Array>; text: string } = { text: '' }
    const network: typeof fetch = async (input, init) => {
      const url = String(input)
      if (init?.method === 'POST' && staleGetOf !== undefined && !url.includes('sid=')) {
        const res = await fetch(input, init)
        const late = staleGetOf
        staleGetOf = undefined
        stale.body = (await fetch(`${late}&ack=3`)).body!.getReader()
        const decoder = new TextDecoder()
        while (!stale.text.includes('"news",[6]')) {
          const { value, done } = await stale.body.read()
          if (done) break
          stale.text += decoder.decode(value, { stream: true })
        }
        return res
      }
      const res = await fetch(input, init)
      if (init?.method === 'POST' || !url.includes('sid=')) return res
      const reader = res.body!.getReader()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read()
          if (done) return controller.close()
          if (breakNextEvents && new TextDecoder().decode(value).includes('data:')) {
            breakNextEvents = false
            staleGetOf = url.replace(/&ack=\d+$/, '')
            await reader.cancel()
            controller.error(new TypeError('terminated: the connection broke'))
            return
          }
          controller.enqueue(value)
        },
        cancel: () => reader.cancel(),
      })
      return new Response(body, { status: res.status, headers: res.headers })
    }
    const socket = client(server.url, { transports: ['sse'], fetch: network })
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
    breakNextEvents = true
    for (let n = 4; n <= 6; n++) peer!.emit('news', n)
    await until(() => switches.length === 1, 3000, 'the resume')
    expect(stale.text).toContain('"news",[4]')
    await until(() => got.length === 6, 3000, 'the packets the stale GET took')
    expect(got).toEqual([1, 2, 3, 4, 5, 6])
    expect(switches).toEqual(['sse resume sse'])
    expect(socket.recovered).toBe(true)
    expect(reasons).toEqual([])
    peer!.emit('news', 7)
    await until(() => got.length === 7)
    await stale.body?.cancel()
  })
})
