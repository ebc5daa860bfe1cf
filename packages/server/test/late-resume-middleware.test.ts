// A resume whose handshake middleware ran past handshakeTimeout (its client answered
// PARLEY_HANDSHAKE_TIMEOUT) while that middleware still runs: the next resume of the session
// waits for it, within its own bound, so that the late middleware reads its own
// `socket.handshake` to the end and the session keeps the handshake of the resume that attached.
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

/**
 * A session attached to polling, with no `auth`; a resume `a` over SSE whose middleware waits for
 * the test past the bound (answered PARLEY_HANDSHAKE_TIMEOUT); then a resume `b` over WebSocket,
 * its HELLO in. The middleware notes what `socket.handshake` says before and after its wait.
 */
async function lateRunThenResume() {
  let release = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const seen: string[] = []
  const says = (socket: ServerSocket) =>
    `${(socket.handshake.auth as { name?: string } | undefined)?.name} on ${socket.handshake.transport}`
  opened.started = await startServer({ handshakeTimeout: BOUND }, (app) => {
    app.parley.use(async (socket) => {
      const name = (socket.handshake.auth as { name?: string } | undefined)?.name
      if (name === undefined) return
      seen.push(`${name} before: ${says(socket)}`)
      if (name === 'a') await held
      else await new Promise((resolve) => setImmediate(resolve))
      seen.push(`${name} after: ${says(socket)}`)
    })
  })
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
  const b = await resumeOverWebSocket(opened.started.base, first.sid, 'b')
  return { release, seen, socket, first, b }
}

describe('a resume behind a handshake middleware that ran past handshakeTimeout', () => {
  it('waits for that middleware to settle, which reads its own handshake to the end, then attaches', async () => {
    const { release, seen, socket, b } = await lateRunThenResume()
    // `b` waits: its middleware has not begun, and the late one still reads `a`.
    expect(seen).toEqual(['a before: a on sse'])
    expect(socket.handshake.auth).toEqual({ name: 'a' })
    release()
    expect((await within(b.answer(), 5000, 'the answer to b')).type).toBe(PacketType.OPEN)
    expect(seen).toEqual([
      'a before: a on sse',
      'a after: a on sse',
      'b before: b on websocket',
      'b after: b on websocket',
    ])
    await until(() => socket.transport === 'websocket', 2000, 'the session on the WebSocket')
    expect(socket.handshake.auth).toEqual({ name: 'b' })
    expect(socket.handshake.transport).toBe('websocket')
    await b.close()
  })

  it('is answered PARLEY_HANDSHAKE_TIMEOUT when that middleware outlives its own bound too, the session as it was', async () => {
    const { release, seen, socket, first, b } = await lateRunThenResume()
    const answer = await within(b.answer(), 5000, 'the answer to b')
    expect(answer).toMatchObject({ type: PacketType.ERROR, code: 'PARLEY_HANDSHAKE_TIMEOUT' })
    // `b`'s middleware never ran: the late one read `a` throughout.
    release()
    await until(() => seen.length === 2, 2000, 'the late middleware to settle')
    expect(seen).toEqual(['a before: a on sse', 'a after: a on sse'])
    // Neither attached: the session keeps the transport and handshake of its last attach.
    expect(socket.transport).toBe('polling')
    expect(socket.handshake.auth).toBeUndefined()
    expect(socket.handshake.transport).toBe('polling')
    // With nothing left running, the next resume goes through at once.
    const c = await rawConnect('websocket', opened.started!.base, {
      auth: { name: 'c' },
      sid: first.sid,
      ack: 0,
    })
    opened.clients.push(c)
    expect(c.open).toMatchObject({ sid: first.sid, recovered: true })
    expect(socket.handshake.auth).toEqual({ name: 'c' })
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
