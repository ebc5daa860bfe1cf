// An upgrade probe whose HELLO the server took, though its answer never reached the client: the
// server moved the session onto the probe's transport, and says MOVED on the transport the client
// still uses (and refuses that transport's POSTs with 400 PARLEY_TRANSPORT_MISMATCH). Real
// client, real server, and a proxy that cuts the answer to that HELLO.
//
// The client resumes at once on the transport it was using: the one it knows works (MOVED or the
// refusal just came over it), where the probe's transport has just lost an answer. It does not
// walk the list past it (from polling, a WebSocket refused again and blamed; from SSE, a step down
// to polling), and it climbs again later, as after any failed probe.
import type { TransportName } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

let proxy: FaultProxy | undefined
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await closeAll()
})

/** The client lands on `from` (`start`), then probes `to`, whose answer `lose` cuts and `mend` lets through. */
interface Case {
  from: TransportName
  to: TransportName
  start(p: FaultProxy): void
  lose(p: FaultProxy): void
  mend(p: FaultProxy): void
  /**
   * When MOVED comes on `from`: held back until the client gave up on the probe (no probe in
   * flight then), or as the server sends it (the probe still waiting for its OPEN).
   */
  moved: 'after the probe failed' | 'while the probe waits'
}

const cases: Case[] = [
  {
    // WebSocket refused throughout, event streams blocked at first: the client lands on polling,
    // and climbs to SSE (after a WebSocket probe refused at once), whose HELLO's answer is cut.
    from: 'polling',
    to: 'sse',
    start: (p) => {
      p.ws = 'reject'
      p.sse = 'block'
    },
    lose: (p) => {
      p.sse = 'pass'
      p.hellos = 'cut'
    },
    mend: (p) => {
      p.hellos = 'pass'
    },
    moved: 'after the probe failed',
  },
  ...(['after the probe failed', 'while the probe waits'] as const).map(
    (moved): Case => ({
      // WebSocket refused at first: the client lands on SSE, then probes a WebSocket that upgrades,
      // takes the HELLO, and brings nothing back.
      from: 'sse',
      to: 'websocket',
      start: (p) => {
        p.ws = 'reject'
      },
      lose: (p) => {
        p.ws = 'mute'
      },
      mend: (p) => {
        p.ws = 'pass'
      },
      moved,
    }),
  ),
]

describe.each(cases)(
  'a $to probe from $from whose answer is lost after the server took it, MOVED $moved',
  (c) => {
    it('resumes at once on the transport it was using, blames no transport, loses or doubles nothing, and climbs later', async () => {
      const sockets: ServerSocket[] = []
      const received: number[] = []
      const server = await startServer(
        (app) => {
          parleyOf(app).on('connection', (socket: ServerSocket) => {
            sockets.push(socket)
            socket.on('count', (n: number) => received.push(n))
          })
        },
        // A heartbeat window longer than MOVED is held back (the WebSocket probe waits up to
        // connectTimeout for its OPEN): the transport in use must not go silent meanwhile.
        { pingInterval: 5000, pingTimeout: 5000 },
      )
      proxy = await startFaultProxy(server.port)
      const p = proxy
      c.start(p)
      // Probes the client gave up on: handshake POSTs (SSE here) that failed on its side, and
      // WebSockets it closed (one refused at once among them).
      const failed = { sse: 0, websocket: 0, polling: 0 }
      const socket = client(p.url, {
        transports: ['websocket', 'sse', 'polling'],
        connectTimeout: 3000,
        upgradeDelay: 300,
        upgradeDelayMax: 60_000,
        // A backoff far longer than the test: a resume that waited for it would never come.
        reconnectionDelay: 60_000,
        reconnectionDelayMax: 60_000,
        randomization: 0,
        fetch: (url, init) =>
          fetch(url, init).catch((error: unknown) => {
            if (init?.method === 'POST' && !String(url).includes('sid=')) failed.sse++
            throw error
          }),
        WebSocket: class extends WebSocket {
          override close(code?: number): void {
            failed.websocket++
            super.close(code)
          }
        },
      })
      const said: string[] = []
      socket.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
      socket.on('transport_error', (name, error) => said.push(`transport_error ${name} ${error.code}`))
      socket.on('connect_error', (error) => said.push(`connect_error ${error.code}`))
      socket.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
      const got: number[] = []
      socket.on('n', (n: number) => got.push(n))
      await next(socket, 'connect')
      expect(socket.transport).toBe(c.from)
      said.length = 0
      // The sessions the first transports opened ended with them; this one is the last.
      const sessions = sockets.length
      const peer = sockets.at(-1)!
      // The probe (after upgradeDelay) reaches the server, which moves the session onto it; its
      // answer is cut.
      const failedBefore = failed[c.to]
      const resumed = next<[string, string, string]>(socket, 'transport', 10_000)
      c.lose(p)
      const release = c.moved === 'after the probe failed' ? p.hold() : () => {}
      for (let n = 0; n < 50; n++) peer.emit('n', n)
      await until(() => failed[c.to] > failedBefore, 5000, 'the probe to fail')
      c.mend(p)
      // Sent on the transport in use, whose POSTs the server now refuses (the session moved), or
      // kept until the resume's OPEN, when that transport is already dropped.
      for (let n = 0; n < 50; n++) socket.emit('count', n)
      release()
      for (let n = 50; n < 100; n++) {
        socket.emit('count', n)
        peer.emit('n', n)
      }
      expect(await resumed).toEqual([c.from, c.from, 'resume'])
      await until(() => got.length >= 100 && received.length >= 100, 5000, 'every message')
      expect(got).toEqual([...Array(100).keys()])
      expect(received).toEqual([...Array(100).keys()])
      // The next probe, after twice upgradeDelay, gets through.
      await until(() => said.length >= 2, 5000, 'the next climb')
      expect(said).toEqual([`${c.from} -> ${c.from} (resume)`, `${c.from} -> ${c.to} (upgrade)`])
      // One session throughout.
      expect(sockets).toHaveLength(sessions)
      expect(socket.recovered).toBe(true)
    }, 35_000)
  },
)
