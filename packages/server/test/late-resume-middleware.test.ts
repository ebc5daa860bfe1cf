// A resume whose handshake middleware ran past handshakeTimeout (its client answered
// PARLEY_HANDSHAKE_TIMEOUT) while that middleware still runs: its turn is over, so the next resume
// of the session runs its own middleware and attaches, rather than wait for one that may never
// settle; what the late middleware decides once it settles is ignored.
import { PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { Refused, rawConnect } from './raw-client.js'
import { resumeOverWebSocket } from './ws-resume.js'

/** The server's handshakeTimeout: the late run outlives it, the test's steps fit well inside it. */
const BOUND = 1000

const opened = closedAfterEach()

interface LogLine {
  msg: string
  count?: number
  total?: number
}

describe('a resume behind a handshake middleware that ran past handshakeTimeout', () => {
  it('runs its own middleware and attaches, and the late run changes nothing once it settles', async () => {
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const seen: string[] = []
    const says = (socket: ServerSocket) =>
      `${(socket.handshake.auth as { name?: string } | undefined)?.name} on ${socket.handshake.transport}`
    const logs: LogLine[] = []
    const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
    opened.started = await startServer(
      { handshakeTimeout: BOUND },
      (app) => {
        app.parley.use(async (socket) => {
          const name = (socket.handshake.auth as { name?: string } | undefined)?.name
          if (name === undefined) return
          seen.push(`${name} before: ${says(socket)}`)
          if (name === 'a') {
            await held
            seen.push(`${name} after: ${says(socket)}`)
            // Too late to refuse anything: neither a refusal nor a line of its own.
            throw new Error('refused late')
          }
          await new Promise((resolve) => setImmediate(resolve))
          seen.push(`${name} after: ${says(socket)}`)
        })
      },
      { logger },
    )
    const first = await rawConnect('polling', opened.started.base)
    opened.clients.push(first)
    const socket = [...opened.started.app.parley.sockets.values()][0]!
    const a = await rawConnect('sse', opened.started.base, {
      auth: { name: 'a' },
      sid: first.sid,
      ack: 0,
    }).catch((e: unknown) => e)
    expect(a).toBeInstanceOf(Refused)
    expect(a).toMatchObject({ code: 'PARLEY_HANDSHAKE_TIMEOUT' })
    // The late run still waits: `b` runs its own middleware beside it, and attaches.
    const b = await resumeOverWebSocket(opened.started.base, first.sid, 'b')
    expect(await within(b.answer(), 5000, 'the answer to b')).toMatchObject({
      type: PacketType.OPEN,
      recovered: true,
    })
    expect(seen).toEqual(['a before: a on sse', 'b before: b on websocket', 'b after: b on websocket'])
    await until(() => socket.transport === 'websocket', 2000, 'the session on the WebSocket')
    expect(socket.handshake.auth).toEqual({ name: 'b' })
    release()
    await until(() => seen.length === 4, 2000, 'the late middleware to settle')
    // It read the handshake of the resume that attached since.
    expect(seen[3]).toBe('a after: b on websocket')
    await new Promise((resolve) => setImmediate(resolve))
    // Its throw refused nothing: the session stays, on `b`'s transport and handshake.
    expect(opened.started.app.parley.socketsCount).toBe(1)
    expect(socket.transport).toBe('websocket')
    expect(socket.handshake.auth).toEqual({ name: 'b' })
    const own = opened.started
    opened.started = undefined
    await within(closeApp(own.app), 5000, 'the close')
    // Counted once, at its bound; the close says no more of it, and its late throw nothing.
    expect(logs.filter(({ msg }) => msg.includes('did not settle'))).toMatchObject([{ count: 1, total: 1 }])
    expect(logs.filter(({ msg }) => msg.includes('handshake middleware failed'))).toEqual([])
    await b.close()
  })
})

describe('a resume waiting behind the middleware of one whose client left', () => {
  it('is answered PARLEY_SERVER_SHUTTING_DOWN at once when the server closes', async () => {
    let reached = () => {}
    const held = new Promise<void>((resolve) => {
      reached = resolve
    })
    let handled = 0
    // A bound past the test's waits: only the close can answer the waiting resume in time.
    opened.started = await startServer({ handshakeTimeout: 10_000 }, (app) => {
      // Past the body's parsing: the handshake itself comes next, without a wait.
      app.addHook('preHandler', async () => {
        handled++
      })
      app.parley.use(async (socket) => {
        if ((socket.handshake.auth as { name?: string } | undefined)?.name !== 'a') return
        reached()
        await new Promise(() => {})
      })
    })
    const first = await rawConnect('polling', opened.started.base)
    opened.clients.push(first)
    const base = opened.started.base
    const hello = (name: string) => JSON.stringify([8, { auth: { name }, sid: first.sid, ack: 0 }])
    const abort = new AbortController()
    const a = fetch(`${base}/sse?v=1`, { method: 'POST', body: hello('a'), signal: abort.signal }).catch(
      () => {},
    )
    await within(held, 5000, 'the middleware of a')
    abort.abort()
    await a
    const counted = handled
    // Over HTTP: a WebSocket is told at close whatever its handshake waits for.
    const b = fetch(`${base}/poll?v=1`, { method: 'POST', body: hello('b') }).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as unknown,
    }))
    await until(() => handled > counted, 5000, 'the resume of b')
    await new Promise((resolve) => setImmediate(resolve))
    const own = opened.started
    opened.started = undefined
    await within(closeApp(own.app), 5000, 'the close')
    expect(await within(b, 1000, 'the answer to b')).toMatchObject({
      status: 503,
      body: { code: 'PARLEY_SERVER_SHUTTING_DOWN' },
    })
  })
})
