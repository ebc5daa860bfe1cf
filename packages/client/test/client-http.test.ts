// The HTTP transports against a scripted loopback peer: event-stream parsing, upstream batching
// under maxPayload, one POST at a time, 409 retries, buffered streams.
import { getEventListeners } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  decodeBatch,
  ErrorCode,
  encodeText,
  type Packet,
  PacketType,
  type ParleyError,
} from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { openPacket } from './fake-ws.js'
import { client, closeClients, next, until } from './helpers.js'

const SID = 'CCCCCCCCCCCCCCCCCCCCC'

interface Peer {
  url: string
  posts: { body: string; overlapping: boolean }[]
  /** POSTs answered 409 so far. */
  refused: number
  /** True while the POST of `failFirstPost` hangs. */
  failing: boolean
  /** Writes to the open event stream (SSE) or answers the held GET (polling). */
  push(packets: Packet[]): void
  close(): Promise<void>
}

let peer: Peer | undefined
afterEach(async () => {
  closeClients()
  await peer?.close()
  peer = undefined
})

async function startPeer(
  options: {
    maxPayload?: number
    answer409?: number
    prelude?: boolean
    split?: boolean
    /** The first upstream POST hangs until the client drops its downstream, then breaks. */
    failFirstPost?: boolean
  } = {},
): Promise<Peer> {
  const posts: Peer['posts'] = []
  let stream: http.ServerResponse | undefined
  let held: http.ServerResponse | undefined
  const queued: string[] = []
  let inFlight = 0
  let refusals = options.answer409 ?? 0
  let refused = 0
  let failNext = options.failFirstPost ?? false
  let failing: http.ServerResponse | undefined
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const sid = url.searchParams.get('sid')
    if (req.method === 'POST') {
      let body = ''
      inFlight++
      req.on('data', (c) => {
        body += c
      })
      req.on('end', () => {
        if (!sid) {
          inFlight--
          res.writeHead(200).end(encodeText(openPacket(SID, { maxPayload: options.maxPayload ?? 1_000_000 })))
          return
        }
        if (failNext) {
          failNext = false
          inFlight--
          failing = res
          return
        }
        if (refusals > 0) {
          refusals--
          refused++
          inFlight--
          res
            .writeHead(409, { 'content-type': 'application/json' })
            .end('{"code":"PARLEY_REQUEST_IN_PROGRESS"}')
          return
        }
        posts.push({ body, overlapping: inFlight > 1 })
        // Hold each POST a little, so that overlapping ones would show.
        setTimeout(() => {
          inFlight--
          res.writeHead(204).end()
        }, 20)
      })
      return
    }
    // A client that drops its downstream is going away: the hanging POST breaks then.
    res.on('close', () => {
      failing?.socket?.destroy()
      failing = undefined
    })
    if (url.pathname.endsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      if (options.prelude !== false) res.write(`:${' '.repeat(2048)}\n\n`)
      stream = res
      return
    }
    if (queued.length > 0) res.writeHead(200).end(queued.splice(0).join('\n'))
    else held = res
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/parley`,
    posts,
    get refused() {
      return refused
    },
    get failing() {
      return failing !== undefined
    },
    push(packets) {
      const lines = packets.map((p) => encodeText(p))
      if (stream) {
        const text = lines.map((l) => `data: ${l}\n\n`).join('')
        if (options.split) for (const ch of text) stream.write(ch)
        else stream.write(text)
      } else if (held) {
        held.writeHead(200).end(lines.join('\n'))
        held = undefined
      } else queued.push(...lines)
    },
    close() {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

const ev = (seq: number, n: number): Packet => ({
  type: PacketType.EVENT,
  seq,
  name: 'n',
  args: [n],
  ackId: 0,
})

describe.each(['sse', 'polling'] as const)('%s against a scripted peer', (transport) => {
  it('delivers pushed packets in order', async () => {
    peer = await startPeer({ split: true })
    const socket = client(peer.url, { transports: [transport] })
    const got: number[] = []
    socket.on('n', (n: number) => got.push(n))
    await next(socket, 'connect')
    await new Promise((r) => setTimeout(r, 50))
    peer.push([ev(1, 1), ev(2, 2)])
    await until(() => got.length === 2, 2000, 'pushed packets')
    peer.push([ev(3, 3)])
    await until(() => got.length === 3, 2000, 'third packet')
    expect(got).toEqual([1, 2, 3])
  })

  it('batches the upstream under maxPayload, one POST at a time', async () => {
    peer = await startPeer({ maxPayload: 200 })
    const socket = client(peer.url, { transports: [transport] })
    await next(socket, 'connect')
    for (let i = 0; i < 30; i++) socket.emit('count', i)
    await until(
      () => peer!.posts.reduce((n, p) => n + p.body.split('\n').length, 0) >= 30,
      3000,
      'every line',
    )
    const seqs: number[] = []
    for (const post of peer.posts) {
      expect(Buffer.byteLength(post.body)).toBeLessThanOrEqual(200)
      expect(post.overlapping).toBe(false)
      const decoded = decodeBatch(post.body)
      if (!decoded.ok) throw decoded.error
      for (const p of decoded.packets) if (p.type === PacketType.EVENT) seqs.push(p.seq)
    }
    expect(peer.posts.length).toBeGreaterThan(1)
    expect(seqs).toEqual([...Array(30).keys()].map((i) => i + 1))
  })

  it('sends a body again after a 409', async () => {
    peer = await startPeer({ answer409: 2 })
    const socket = client(peer.url, { transports: [transport] })
    await next(socket, 'connect')
    socket.emit('count', 1)
    await until(() => peer!.posts.length === 1, 2000, 'the POST')
    expect(peer.posts[0]!.body).toBe('[5,1,"count",[1],0]')
  })

  it('still says CLOSE when disconnect() comes while a POST waits to be sent again after a 409', async () => {
    peer = await startPeer({ answer409: 1 })
    const socket = client(peer.url, { transports: [transport] })
    await next(socket, 'connect')
    socket.emit('count', 1)
    // The 409 answer arrives, the lines wait to be sent again: the session ends meanwhile.
    await until(() => peer!.refused === 1, 2000, 'the 409')
    socket.disconnect()
    await until(() => peer!.posts.some((p) => p.body.includes('"client disconnect"')), 2000, 'the CLOSE')
  })

  it('still says CLOSE when the POST in flight at disconnect() fails', async () => {
    peer = await startPeer({ failFirstPost: true })
    const socket = client(peer.url, { transports: [transport], reconnection: false })
    await next(socket, 'connect')
    socket.emit('count', 1)
    await until(() => peer!.failing, 2000, 'the POST in flight')
    socket.disconnect()
    await until(() => peer!.posts.some((p) => p.body.includes('"client disconnect"')), 2000, 'the CLOSE')
  })
})

it('does not gather abort listeners on one signal as polls go by (a long session would leak)', async () => {
  peer = await startPeer()
  const signals: AbortSignal[] = []
  const fetchFn: typeof fetch = (input, init) => {
    if (init?.signal) signals.push(init.signal)
    return fetch(input, init)
  }
  const socket = client(peer.url, { transports: ['polling'], fetch: fetchFn })
  const got: number[] = []
  socket.on('n', (n: number) => got.push(n))
  await next(socket, 'connect')
  for (let i = 1; i <= 30; i++) {
    peer.push([ev(i, i)])
    await until(() => got.length === i, 2000, `packet ${i}`)
  }
  const most = Math.max(...signals.map((s) => getEventListeners(s, 'abort').length))
  expect(most).toBeLessThanOrEqual(2)
})

it('gives up on an event stream whose first bytes do not come in time', async () => {
  peer = await startPeer({ prelude: false })
  const socket = client(peer.url, { transports: ['sse'], connectTimeout: 300, reconnection: false })
  const [error] = (await next(socket, 'connect_error')) as [ParleyError<string>]
  expect(error.code).toBe(ErrorCode.HANDSHAKE_TIMEOUT)
})

it('hears what it refuses in the lines before a CLOSE that answers its handshake, then that CLOSE', async () => {
  // The answer a resume of an ended session gets (an ACK line, then the CLOSE), with lines no
  // Parley server writes: an ACK past what the client sent, and one that does not decode.
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () =>
      res.writeHead(200).end('[4,5]\n[4,-1]\n[1,"server disconnect","the server ended it"]'),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  peer = {
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  } as Peer
  const { port } = server.address() as AddressInfo
  const socket = client(`http://127.0.0.1:${port}/parley`, { transports: ['polling'] })
  const heard: string[] = []
  socket.on('error', (error) => heard.push(`error ${(error as ParleyError).code} ${error.message}`))
  socket.on('connect_error', (error) => heard.push(`connect_error ${error.message}`))
  await until(() => heard.length === 3, 2000, 'two errors and the CLOSE')
  expect(heard).toEqual([
    'error PARLEY_INVALID_SEQ ACK 5 > 0',
    'error PARLEY_INVALID_SEQ type 4: bad ack',
    'connect_error session ended: server disconnect: the server ended it',
  ])
})
