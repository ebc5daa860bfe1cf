// Two things at nearly the same time in a session's life: a client that gives up on a handshake
// while the server still works on it, two resumes of one session at once. Each test forces its
// interleaving with a middleware or an adapter that waits for the test to let it go.

import { request } from 'node:http'
import type { Socket } from 'node:net'
import { PacketType } from '@parley/protocol'
import { type AdapterFactory, MemoryAdapter, type ServerSocket } from '@parley/server'
import { describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { closedAfterEach } from './closed-after-each.js'
import { sleep, startServer, until, within } from './helpers.js'
import { type RawClient, Refused, rawConnect } from './raw-client.js'
import { resumeOverWebSocket } from './ws-resume.js'

const opened = closedAfterEach()

/** A promise the test resolves, and one that says something waits on it. */
function gate() {
  let open = () => {}
  let reached = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  const waiting = new Promise<void>((resolve) => {
    reached = resolve
  })
  return { open, opened, reached, waiting }
}

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  opened.clients.push(client)
  return client
}

describe.each(['sse', 'polling'] as const)('a handshake POST its client gave up on (%s)', (transport) => {
  it('makes no session when the client left while the middleware ran', async () => {
    const held = gate()
    const connections: ServerSocket[] = []
    let left = false
    opened.started = await startServer({}, (app) => {
      // The server learns that the client left when the POST's response closes unanswered.
      app.addHook('onRequest', async (_request, reply) => {
        reply.raw.once('close', () => {
          left ||= !reply.raw.writableEnded
        })
      })
      app.parley.use(async () => {
        held.reached()
        await held.opened
      })
      app.parley.on('connection', (socket) => connections.push(socket))
    })
    const abort = new AbortController()
    const endpoint = `${opened.started.base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1`
    const post = fetch(endpoint, { method: 'POST', body: '[8,{}]', signal: abort.signal }).catch(() => {})
    await held.waiting
    abort.abort()
    await post
    await until(() => left, 3000, 'the server to see the client leave')
    held.open()
    await sleep(100)
    expect(connections).toHaveLength(0)
    expect(opened.started.app.parley.socketsCount).toBe(0)
  })

  it('resumes on the transport its client went to meanwhile, once the middleware of the left one is done', async () => {
    const held = gate()
    opened.started = await startServer({}, (app) => {
      app.parley.use(async (socket) => {
        if ((socket.handshake.auth as { slow?: boolean } | undefined)?.slow) {
          held.reached()
          await held.opened
        }
      })
    })
    const first = await connect('websocket', opened.started.base)
    first.close()
    const abort = new AbortController()
    const endpoint = `${opened.started.base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1`
    const hello = JSON.stringify([8, { auth: { slow: true }, sid: first.sid, ack: 0 }])
    const post = fetch(endpoint, { method: 'POST', body: hello, signal: abort.signal }).catch(() => {})
    await held.waiting
    abort.abort()
    await post
    // Its HELLO in while the left one's middleware runs: it waits for that one (no two runs of
    // the middleware on one session at once), which then attaches nothing.
    const again = await resumeOverWebSocket(opened.started.base, first.sid, 'again')
    const socket = [...opened.started.app.parley.sockets.values()][0]!
    expect(socket.handshake.auth).toEqual({ slow: true })
    held.open()
    const answer = await within(again.answer(), 5000, 'the answer to the resume')
    expect(answer).toMatchObject({ type: PacketType.OPEN, recovered: true })
    await sleep(100)
    expect(socket.transport).toBe('websocket')
    expect(socket.handshake.transport).toBe('websocket')
    expect(socket.handshake.auth).toEqual({ name: 'again' })
    await again.close()
  })
})

/** A memory adapter whose `sessionOpened` waits for `recording` to open; `more` adds calls. */
function recordsWhenOpened(recording: ReturnType<typeof gate>, more: object = {}): AdapterFactory {
  return (sockets) =>
    Object.assign(new MemoryAdapter(sockets), {
      sessionOpened: async () => {
        recording.reached()
        await recording.opened
      },
      ...more,
    })
}

describe('a WebSocket that closes while the adapter records a new session', () => {
  it('leaves no session behind and fires no connection', async () => {
    const recording = gate()
    const closed: string[] = []
    const factory = recordsWhenOpened(recording, {
      sessionClosed: (sid: string) => {
        closed.push(sid)
      },
    })
    const connections: ServerSocket[] = []
    opened.started = await startServer({ adapter: factory }, (app) => {
      app.parley.on('connection', (socket) => connections.push(socket))
    })
    // The server's end of the WebSocket's connection: its close is how the server learns that the
    // client left.
    let serverEnd: Promise<void> | undefined
    opened.started.app.server.on('upgrade', (_request, socket: Socket) => {
      serverEnd ??= new Promise((resolve) => socket.once('close', () => resolve()))
    })
    const ws = new WebSocket(`${opened.started.base.replace(/^http/, 'ws')}/ws?v=1`, 'parley.v1')
    await within(new Promise((resolve) => ws.once('open', resolve)), 5000, 'the WebSocket to open')
    ws.send('[8,{}]')
    await recording.waiting
    ws.terminate()
    await within(serverEnd!, 5000, 'the server to see the connection close')
    // ws reports that close to its listeners within the same turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve))
    recording.open()
    // The handshake's end: the owner record the adapter made for it is withdrawn.
    await until(() => closed.length > 0, 3000, 'the owner record withdrawn')
    expect(connections).toHaveLength(0)
    expect(opened.started.app.parley.socketsCount).toBe(0)
    expect(closed).toHaveLength(1)
  })
})

describe('a session the application ends while the adapter records it', () => {
  it('leaves no room behind: its own room is not joined after its end', async () => {
    const recording = gate()
    opened.started = await startServer({ adapter: recordsWhenOpened(recording) })
    const answer = connect('websocket', opened.started.base).catch((e: unknown) => e)
    await recording.waiting
    const [socket] = opened.started.app.parley.sockets.values()
    socket!.disconnect()
    recording.open()
    // The client hears the session's end instead of OPEN.
    expect(await answer).toMatchObject({ packet: { reason: 'server disconnect' } })
    expect(opened.started.app.parley.adapter.socketRooms(socket!.id)).toBeUndefined()
  })
})

describe('two resumes of one session at once', () => {
  /**
   * A server whose middleware holds resumes named `a` and `b` until the test lets them go, and
   * notes what `socket.handshake` says before and after the wait; a session attached to polling;
   * `a` resuming it over SSE and held, `b` over WebSocket, its HELLO in.
   */
  async function twoHeld(refused: readonly string[]) {
    const gates = { a: gate(), b: gate() }
    const seen: string[] = []
    const says = (socket: ServerSocket) =>
      `${(socket.handshake.auth as { name?: string } | undefined)?.name} on ${socket.handshake.transport}`
    opened.started = await startServer({}, (app) => {
      app.parley.use(async (socket) => {
        const name = (socket.handshake.auth as { name?: string } | undefined)?.name
        if (name !== 'a' && name !== 'b') return
        seen.push(`${name} before: ${says(socket)}`)
        gates[name].reached()
        await gates[name].opened
        seen.push(`${name} after: ${says(socket)}`)
        if (refused.includes(name)) throw new Error('refused')
      })
    })
    const first = await connect('polling', opened.started.base)
    const socket = [...opened.started.app.parley.sockets.values()][0]!
    const a = connect('sse', opened.started.base, { auth: { name: 'a' }, sid: first.sid, ack: 0 })
    await gates.a.waiting
    const b = await resumeOverWebSocket(opened.started.base, first.sid, 'b')
    return { gates, seen, socket, a: a.catch((e: unknown) => e), b }
  }

  it('each see their own socket.handshake in their middleware, across its awaits', async () => {
    const { gates, seen, socket, a, b } = await twoHeld([])
    // Both let go at once: what `a` reads after its wait is still its own.
    gates.b.open()
    gates.a.open()
    expect(((await a) as RawClient).open.recovered).toBe(true)
    expect((await b.answer()).type).toBe(PacketType.OPEN)
    expect(seen).toEqual([
      'a before: a on sse',
      'a after: a on sse',
      'b before: b on websocket',
      'b after: b on websocket',
    ])
    // The last one that attached is kept.
    await until(() => socket.transport === 'websocket')
    expect(socket.handshake.auth).toEqual({ name: 'b' })
    await b.close()
  })

  it('leave socket.handshake as the attached one said, when the other is refused', async () => {
    const { gates, socket, a, b } = await twoHeld(['a'])
    gates.a.open()
    expect(await a).toBeInstanceOf(Refused)
    gates.b.open()
    expect((await b.answer()).type).toBe(PacketType.OPEN)
    await until(() => socket.transport === 'websocket')
    expect(socket.handshake.auth).toEqual({ name: 'b' })
    expect(socket.handshake.transport).toBe('websocket')
    await b.close()
  })

  it('leave socket.handshake as the session’s last attach said, when both are refused', async () => {
    const { gates, socket, a, b } = await twoHeld(['a', 'b'])
    gates.a.open()
    expect(await a).toBeInstanceOf(Refused)
    gates.b.open()
    expect((await b.answer()).type).toBe(PacketType.ERROR)
    expect(socket.transport).toBe('polling')
    expect(socket.handshake.auth).toBeUndefined()
    expect(socket.handshake.transport).toBe('polling')
    await b.close()
  })
})

describe('an upstream POST whose body is still coming when its client resumes elsewhere', () => {
  it.each(['sse', 'polling'] as const)(
    'is refused with PARLEY_TRANSPORT_MISMATCH and none of its packets is used (%s)',
    async (transport) => {
      const got: number[] = []
      opened.started = await startServer({}, (app) => {
        app.parley.on('connection', (socket) => socket.on('up', (n: number) => got.push(n)))
      })
      const first = await connect(transport, opened.started.base)
      const url = new URL(
        `${opened.started.base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${first.sid}`,
      )
      const post = request(url, { method: 'POST', headers: { 'content-type': 'text/plain' } })
      const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
        post.on('response', (res) => {
          let body = ''
          res.on('data', (chunk: Buffer) => {
            body += chunk
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        })
        post.on('error', reject)
      })
      // Half of the body: the server has taken the POST for the transport attached now.
      post.write('[5,1,"up",[1],0]\n[5,2,"up"')
      await sleep(50)
      const again = await connect('websocket', opened.started.base, { sid: first.sid, ack: 0 })
      expect(again.open.ack).toBe(0)
      post.end(',[2],0]')
      const { status, body } = await answered
      expect(status).toBe(400)
      expect(JSON.parse(body)).toMatchObject({ code: 'PARLEY_TRANSPORT_MISMATCH' })
      expect(got).toEqual([])
      // Not acknowledged, so the client sends them again where it is now: each used once.
      await again.send(
        { type: PacketType.EVENT, seq: 1, name: 'up', args: [1], ackId: 0 },
        { type: PacketType.EVENT, seq: 2, name: 'up', args: [2], ackId: 0 },
      )
      await until(() => got.length === 2)
      await sleep(50)
      expect(got).toEqual([1, 2])
    },
  )
})

describe('app.close() while a WebSocket has not sent its HELLO', () => {
  it('tells it ERROR PARLEY_SERVER_SHUTTING_DOWN, closes it with 1001 and stops its handshake timer', async () => {
    // A delay no other timer uses: the handshake timer is the one set with it.
    const handshakeTimeout = 43_210
    const set = vi.spyOn(globalThis, 'setTimeout')
    const cleared = vi.spyOn(globalThis, 'clearTimeout')
    try {
      opened.started = await startServer({ handshakeTimeout })
      const ws = new WebSocket(`${opened.started.base.replace(/^http/, 'ws')}/ws?v=1`, 'parley.v1')
      ws.on('error', () => {})
      await within(new Promise((resolve) => ws.once('open', resolve)), 5000, 'the WebSocket to open')
      const closed = new Promise<number>((resolve) => ws.once('close', resolve))
      const told: string[] = []
      ws.on('message', (data) => told.push(String(data)))
      await until(() => set.mock.calls.some(([, ms]) => ms === handshakeTimeout))
      const index = set.mock.calls.findIndex(([, ms]) => ms === handshakeTimeout)
      const timer = set.mock.results[index]!.value as NodeJS.Timeout
      await opened.started.app.close()
      opened.started = undefined
      expect(await within(closed, 5000, 'the close the shutdown sends')).toBe(1001)
      expect(told.map((text) => JSON.parse(text).slice(0, 4))).toEqual([
        [7, 0, 0, 'PARLEY_SERVER_SHUTTING_DOWN'],
      ])
      expect(cleared.mock.calls.some(([handle]) => handle === timer)).toBe(true)
    } finally {
      set.mockRestore()
      cleared.mockRestore()
    }
  })
})
