// Two robustness rules of the HTTP transports, against the real server: a polling client asks
// for the next answer before the application's listeners run for the one it just read (with an
// `ack` that counts it), and an upstream POST that gets no answer fails the transport after the
// heartbeat window, so that the session resumes and what the POST carried arrives, once.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import {
  client,
  closeClients,
  closeServer,
  next,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined
let proxy: FaultProxy | undefined
afterEach(async () => {
  closeClients()
  await proxy?.close()
  if (server) await closeServer(server)
  server = undefined
  proxy = undefined
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

describe('an upstream POST that gets no answer', () => {
  // The server's heartbeat window, pingInterval + pingTimeout: how long a POST may go unanswered.
  const WINDOW = 600

  it.each(['hang', 'mute'] as const)(
    'fails the transport after the heartbeat window; the session resumes and the emit reaches the server once (proxy: %s)',
    async (mode) => {
      const got: number[] = []
      server = await startServer(
        (app) => parleyOf(app).on('connection', (socket) => socket.on('count', (n: number) => got.push(n))),
        { pingInterval: WINDOW / 2, pingTimeout: WINDOW / 2 },
      )
      const faults = await startFaultProxy(server.port)
      proxy = faults
      const socket = client(faults.url, { transports: ['polling'] })
      const errors: ParleyError<string>[] = []
      const switches: unknown[][] = []
      const downs: unknown[] = []
      // The POST fails within the transport's first 2 s (STABLE_MS): the client says why, with a
      // connect_error, before it resumes. The POSTs of the resumed transport go through.
      socket.on('connect_error', (error) => {
        errors.push(error)
        faults.posts = 'pass'
      })
      socket.on('transport', (...args) => switches.push(args))
      socket.on('disconnect', (reason) => downs.push(reason))
      await next(socket, 'connect')
      const id = socket.id
      // hang: the POST never reaches the server; mute: it does, and its answer never comes back.
      faults.posts = mode
      socket.emit('count', 1)
      await until(() => switches.length > 0, 5000, 'a resume')
      socket.emit('count', 2)
      await until(() => got.includes(2), 3000, 'the emit after the resume')
      // In order: had the first come twice, the second would follow the second copy.
      expect(got).toEqual([1, 2])
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatchObject({ code: ErrorCode.TRANSPORT_ERROR, details: { timeout: WINDOW } })
      expect(errors[0]!.message).toMatch(
        /^POST http:\/\/127.0.0.1:\d+\/parley\/poll: no answer within 600 ms$/,
      )
      expect(switches).toEqual([['polling', 'polling', 'resume']])
      expect(downs).toEqual([])
      expect(socket.id).toBe(id)
      expect(socket.recovered).toBe(true)
    },
  )
})
