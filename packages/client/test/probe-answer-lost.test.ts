// An upgrade probe whose HELLO the server took, though its answer never reached the client: the
// server moved the session onto the probe's transport, and says MOVED on the transport the client
// still uses. Real client, real server, and a proxy that cuts the answer to that HELLO.
import { afterEach, describe, expect, it } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

let proxy: FaultProxy | undefined
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await closeAll()
})

describe('an upgrade probe whose answer is lost after the server took it', () => {
  it('resumes at once where the server has the session, blames no transport, and loses or doubles nothing', async () => {
    const sockets: ServerSocket[] = []
    const received: number[] = []
    const server = await startServer((app) => {
      parleyOf(app).on('connection', (socket: ServerSocket) => {
        sockets.push(socket)
        socket.on('count', (n: number) => received.push(n))
      })
    })
    proxy = await startFaultProxy(server.port)
    const p = proxy
    // Event streams blocked at first: the client lands on polling, and climbs to SSE later.
    p.sse = 'block'
    // Handshake POSTs that failed on the client's side, the HELLO having reached the server.
    let failedHellos = 0
    const socket = client(p.url, {
      transports: ['sse', 'polling'],
      connectTimeout: 3000,
      upgradeDelay: 300,
      upgradeDelayMax: 60_000,
      // A backoff far longer than the test: a resume that waited for it would never come.
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
      fetch: (url, init) =>
        fetch(url, init).catch((error: unknown) => {
          if (init?.method === 'POST' && !String(url).includes('sid=')) failedHellos++
          throw error
        }),
    })
    const said: string[] = []
    socket.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
    socket.on('transport_error', (name, error) => said.push(`transport_error ${name} ${error.code}`))
    socket.on('connect_error', (error) => said.push(`connect_error ${error.code}`))
    socket.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
    const got: number[] = []
    socket.on('n', (n: number) => got.push(n))
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    said.length = 0
    // The first session, opened on SSE, ended when its stream was blocked; this is the second.
    const sessions = sockets.length
    const peer = sockets.at(-1)!
    // The probe (after upgradeDelay) reaches the server, which moves the session onto SSE; its
    // answer is cut. What the server sends on polling, MOVED included, is held until the client
    // has given up on the probe, so that it hears MOVED with no probe in flight.
    const failedBefore = failedHellos
    p.sse = 'pass'
    p.hellos = 'cut'
    const release = p.hold()
    for (let n = 0; n < 50; n++) peer.emit('n', n)
    await until(() => failedHellos > failedBefore, 5000, 'the probe to fail')
    p.hellos = 'pass'
    // Sent on polling, whose POSTs the server now refuses (the session is on SSE).
    for (let n = 0; n < 50; n++) socket.emit('count', n)
    const resumed = next<[string, string, string]>(socket, 'transport', 5000)
    release()
    for (let n = 50; n < 100; n++) {
      socket.emit('count', n)
      peer.emit('n', n)
    }
    expect(await resumed).toEqual(['sse', 'polling', 'resume'])
    await until(() => got.length >= 100 && received.length >= 100, 5000, 'every message')
    expect(got).toEqual([...Array(100).keys()])
    expect(received).toEqual([...Array(100).keys()])
    expect(said).toEqual(['polling -> sse (resume)'])
    expect(p.cutHellos).toBe(1)
    // One session throughout, resumed on SSE where the server had it.
    expect(sockets).toHaveLength(sessions)
    expect(socket.recovered).toBe(true)
  })
})
