// A GET the client gave up on (aborted as its transport failed) can reach the server late,
// held up in a proxy or a forwarding node, after the client resumed: it takes what the server
// sends (the replay) into a connection nobody reads. The client's next GET carries its ACK, and
// the server sends those packets again (docs/protocol.md, Delivery). Real client, real server;
// the network between them (`fetch`) loses packets and delivers the stale GET.
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

/** The network between client and server, as a proxy makes it. */
interface Network {
  fetch: typeof fetch
  /** Loses the next packets on their way down, breaking the connection that carried them. */
  loseNext(): void
  /** What the stale GET took. */
  stolen(): string
}

/**
 * Connects over `transport` through `network`, has the server send 1 to 3, then 4 to 6 while
 * the network loses them; the client resumes (the stale GET arriving first and taking the
 * replay) and must still get every packet, in order, once.
 */
async function loseAndResume(transport: 'polling' | 'sse', network: Network): Promise<void> {
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
  const socket = client(server.url, { transports: [transport], fetch: network.fetch })
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
  network.loseNext()
  for (let n = 4; n <= 6; n++) peer!.emit('news', n)
  await until(() => switches.length === 1, 3000, 'the resume')
  // The replay went to the stale GET; without a second sending the client would wait for the
  // next message to show it a gap.
  expect(network.stolen()).toContain('"news",[4]')
  await until(() => got.length === 6, 3000, 'the packets the stale GET took')
  expect(got).toEqual([1, 2, 3, 4, 5, 6])
  expect(switches).toEqual([`${transport} resume ${transport}`])
  expect(socket.recovered).toBe(true)
  expect(reasons).toEqual([])
  peer!.emit('news', 7)
  await until(() => got.length === 7)
}

/** True for the handshake POST (the resume's), whose URL names no session. */
const isHandshake = (url: string, init?: RequestInit) => init?.method === 'POST' && !url.includes('sid=')

describe('a GET the client had given up on, arriving after its resume', () => {
  it('polling: the packets its answer took come again on the next GET, whose ack says so', async () => {
    let lose = false
    let staleGetOf: string | undefined
    let stolen = ''
    await loseAndResume('polling', {
      loseNext: () => {
        lose = true
      },
      stolen: () => stolen,
      fetch: async (input, init) => {
        const url = String(input)
        const res = await fetch(input, init)
        if (init?.method !== 'POST' && lose) {
          const body = await res.text()
          if (body === '') return new Response('', { status: res.status, headers: res.headers })
          lose = false
          staleGetOf = url.replace(/&ack=\d+$/, '')
          throw new TypeError('fetch failed: the connection broke')
        }
        if (isHandshake(url, init) && staleGetOf !== undefined) {
          // The late GET: its ack is the client's from before it gave up, and nobody reads it.
          stolen = await (await fetch(`${staleGetOf}&ack=3`)).text()
          staleGetOf = undefined
        }
        return res
      },
    })
  })

  it('SSE: the packets written to the stream it took come again on the own stream', async () => {
    let lose = false
    let staleGetOf: string | undefined
    let stale: ReadableStreamDefaultReader<Uint8Array> | undefined
    let stolen = ''
    await loseAndResume('sse', {
      loseNext: () => {
        lose = true
      },
      stolen: () => stolen,
      fetch: async (input, init) => {
        const url = String(input)
        const res = await fetch(input, init)
        if (isHandshake(url, init) && staleGetOf !== undefined) {
          // The late GET takes the new transport's stream, and the replay with it; it stays
          // open, unread, until the client's own GET takes the stream over.
          stale = (await fetch(`${staleGetOf}&ack=3`)).body!.getReader()
          staleGetOf = undefined
          const decoder = new TextDecoder()
          while (!stolen.includes('"news",[6]')) {
            const { value, done } = await stale.read()
            if (done) break
            stolen += decoder.decode(value, { stream: true })
          }
          return res
        }
        if (init?.method === 'POST' || !url.includes('sid=')) return res
        // The client's stream, broken at the first events that come while `lose` is set.
        const reader = res.body!.getReader()
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { value, done } = await reader.read()
            if (done) return controller.close()
            if (lose && new TextDecoder().decode(value).includes('data:')) {
              lose = false
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
      },
    })
    await stale?.cancel()
  })
})
