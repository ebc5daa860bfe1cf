import { connect } from '@parley/client'
import { type EventPacket, type Packet, PacketType } from '@parley/protocol'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { revoked, trapsThrow, UNSHOWABLE } from '../../../test/support/odd-values.js'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { Closed, rawConnect } from './raw-client.js'

const opened = closedAfterEach()

async function one(
  options: ParleyServerOptions = {},
  transport: 'websocket' | 'sse' | 'polling' = 'websocket',
) {
  const sockets: ServerSocket[] = []
  opened.started = await startServer(options, (app) => {
    app.parley.on('connection', (s) => {
      sockets.push(s)
    })
  })
  const client = await rawConnect(transport, opened.started.base)
  opened.clients.push(client)
  await until(() => sockets.length === 1)
  return { socket: sockets[0]!, client }
}

const isEvent = (name: string) => (p: Packet) => p.type === PacketType.EVENT && p.name === name

describe('the server socket', () => {
  it('sends volatile events unnumbered, and drops them while detached', async () => {
    const { socket, client } = await one()
    expect(socket.volatile.emit('cursor', 10, 20)).toBe(true)
    expect(await client.next(isEvent('cursor'))).toMatchObject({ seq: 0, args: [10, 20] })
    socket.emit('numbered', 1)
    expect(await client.next(isEvent('numbered'))).toMatchObject({ seq: 1 })
    client.close()
    await until(() => socket.transport === null)
    expect(socket.volatile.emit('cursor', 1, 1)).toBe(false)
  })

  it('ends the wait of a dropped volatile emit at once, with PARLEY_ACK_TIMEOUT', async () => {
    const { socket, client } = await one({ highWaterMark: 100 })
    const outcomes: unknown[] = []
    const watch = (reply: Promise<unknown>) =>
      reply.then(
        (value) => outcomes.push(value),
        (e) => outcomes.push(e),
      )
    // Past highWaterMark: the raw client never acknowledges, so this stays kept.
    socket.emit('fill', 'x'.repeat(200))
    void watch(socket.volatile.emitWithAck('q', 1))
    // A reply callback is called only with a reply: never, here.
    let called = false
    expect(socket.volatile.emit('q', 2, () => (called = true))).toBe(false)
    // Detached.
    client.close()
    await until(() => socket.transport === null)
    void watch(socket.volatile.emitWithAck('q', 3))
    // Settled by the microtasks of the emit's own tick, long before any timer or the session's end.
    await new Promise((resolve) => setImmediate(resolve))
    expect(outcomes).toHaveLength(2)
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ code: 'PARLEY_ACK_TIMEOUT', details: { dropped: true } })
    }
    expect(called).toBe(false)
    expect(socket.connected).toBe(true)
  })

  it('chains volatile and timeout(ms) in either order: unnumbered, timed, error-first', async () => {
    const { socket, client } = await one()
    const results: unknown[][] = []
    const keep = (...result: unknown[]) => results.push(result)
    expect(socket.timeout(5000).volatile.emit('q', 1, keep)).toBe(true)
    const asked = (await client.next(isEvent('q'))) as EventPacket
    expect(asked).toMatchObject({ seq: 0, args: [1] })
    expect(asked.ackId).toBeGreaterThan(0)
    await client.send({ type: PacketType.REPLY, seq: 1, ackId: asked.ackId, args: ['yes'] })
    await until(() => results.length === 1)
    // Error-first, as under timeout(ms) alone.
    expect(results[0]).toEqual([null, 'yes'])

    // The other order, unanswered: the timeout ends the wait.
    const unanswered = socket.volatile
      .timeout(50)
      .emitWithAck('q', 2)
      .catch((e: unknown) => e)
    expect(await client.next(isEvent('q'))).toMatchObject({ seq: 0, args: [2] })
    const late = await unanswered
    expect(late).toMatchObject({ code: 'PARLEY_ACK_TIMEOUT' })
    expect((late as { details?: unknown }).details).toBeUndefined()

    // Detached: dropped, and the error-first callback hears so at once.
    client.close()
    await until(() => socket.transport === null)
    expect(socket.volatile.timeout(60_000).emit('q', 3, keep)).toBe(false)
    await new Promise((resolve) => setImmediate(resolve))
    expect(results[1]).toMatchObject([{ code: 'PARLEY_ACK_TIMEOUT', details: { dropped: true } }])
  })

  it('disconnects a consumer whose kept packets pass maxBufferedBytes', async () => {
    const { socket } = await one({ maxBufferedBytes: 4096 })
    const reasons: string[] = []
    socket.on('disconnect', (r) => reasons.push(r))
    // The client never acknowledges, so everything stays kept.
    for (let i = 0; i < 100 && socket.connected; i++) socket.emit('fill', 'x'.repeat(100))
    expect(reasons).toEqual(['slow consumer'])
    expect(socket.emit('after', 1)).toBe(false)
  })

  it('limits pending acks, and rejects them all when the session ends', async () => {
    const { socket } = await one({ maxPendingAcks: 2 })
    const first = socket.emitWithAck('q', 1).catch((e: unknown) => e)
    const second = socket.emitWithAck('q', 2).catch((e: unknown) => e)
    await expect(socket.emitWithAck('q', 3)).rejects.toMatchObject({ code: 'PARLEY_TOO_MANY_PENDING_ACKS' })
    expect(() => socket.emit('q', 4, () => {})).toThrow(
      expect.objectContaining({ code: 'PARLEY_TOO_MANY_PENDING_ACKS' }),
    )
    socket.disconnect()
    expect(await first).toMatchObject({ code: 'PARLEY_DISCONNECTED' })
    expect(await second).toMatchObject({ code: 'PARLEY_DISCONNECTED' })
    await expect(socket.emitWithAck('q', 5)).rejects.toMatchObject({ code: 'PARLEY_DISCONNECTED' })
  })

  it('refuses what cannot travel without using a sequence number', async () => {
    const { socket, client } = await one()
    expect(() => socket.emit('big', 10n as unknown as number)).toThrow(
      expect.objectContaining({ code: 'PARLEY_UNSERIALIZABLE' }),
    )
    expect(() => socket.emit('disconnect' as string)).toThrow(
      expect.objectContaining({ code: 'PARLEY_RESERVED_EVENT_NAME' }),
    )
    expect(() => socket.emit('')).toThrow(expect.objectContaining({ code: 'PARLEY_INVALID_EVENT_NAME' }))
    socket.emit('ok', 1)
    expect(await client.next(isEvent('ok'))).toMatchObject({ seq: 1 })
  })

  it('refuses values that fight being read with its own coded errors, and goes on', async () => {
    const { socket, client } = await one()
    const parley = opened.started!.app.parley
    const unserializable = expect.objectContaining({ code: 'PARLEY_UNSERIALIZABLE' })
    const invalid = (message: RegExp) =>
      expect.objectContaining({
        name: 'TypeError',
        code: 'PARLEY_INVALID_ARGUMENT',
        message: expect.stringMatching(message),
      })
    for (const make of [trapsThrow, revoked]) {
      // Arguments whose walk for binary leaves throws: as a BigInt is, nothing sent.
      expect(() => socket.emit('e', make() as never)).toThrow(unserializable)
      expect(() => socket.emit('e', { nested: [make()] } as never)).toThrow(unserializable)
      expect(() => parley.emit('e', make() as never)).toThrow(unserializable)
      await expect(socket.timeout(100).emitWithAck('e', make() as never)).rejects.toEqual(unserializable)
      // Rooms: as any room that is not a string, whatever reading it threw.
      for (const call of [
        () => socket.join(make() as never),
        () => parley.to(make() as never),
        () => socket.to(make() as never),
      ]) {
        expect(call).toThrow(invalid(/^a room is a string/))
      }
      expect(() => parley.schemas(make() as never)).toThrow(invalid(/^schemas cannot be read/))
    }
    for (const [, make] of UNSHOWABLE) {
      // Names that no template can show, in the messages that name them.
      expect(() => socket.on(make() as never, 42 as never)).toThrow(invalid(/^the listener of "\[object\]"/))
      expect(() => parley.on(make() as never, () => {})).toThrow(
        invalid(/^unknown server event "\[object\]"/),
      )
    }
    socket.emit('ok', 1)
    expect(await client.next(isEvent('ok'))).toMatchObject({ seq: 1 })
  })

  it('refuses a listener that is not a function at once, so that a request still gets an answer', async () => {
    const sockets: ServerSocket[] = []
    opened.started = await startServer({}, (app) => {
      app.parley.on('connection', (s) => {
        sockets.push(s)
      })
    })
    const client = connect(opened.started.base, { transports: ['websocket'], reconnection: false })
    try {
      await until(() => sockets.length === 1 && client.connected)
      const socket = sockets[0]!
      const parley = opened.started.app.parley
      for (const listener of [42, {}, 'abc', null, undefined]) {
        const given = listener as unknown as () => void
        for (const call of [
          () => socket.on('ask', given),
          () => socket.once('ask', given),
          () => parley.on('connection', given),
        ]) {
          expect(call).toThrow(TypeError)
          expect(call).toThrow(expect.objectContaining({ code: 'PARLEY_INVALID_ARGUMENT' }))
          expect(call).toThrow(/^the listener of "(ask|connection)" must be a function, not /)
        }
      }
      // Nothing was added: kept, a number counted as a listener that never answers, so the
      // request waited for its whole timeout instead of getting PARLEY_NO_HANDLER at once.
      await expect(client.timeout(5000).emitWithAck('ask')).rejects.toMatchObject({
        code: 'PARLEY_NO_HANDLER',
      })
    } finally {
      client.disconnect()
    }
  })

  it('waits for a reply past 2^31-1 ms instead of timing out at once', async () => {
    const { socket, client } = await one()
    let settled = false
    const reply = socket.timeout(3e9).emitWithAck('slow', 1)
    reply.then(
      () => (settled = true),
      () => (settled = true),
    )
    const asked = (await client.next(isEvent('slow'))) as EventPacket
    // A timer past 2^31-1 ms fires at once; the wait must still be pending well after that.
    await new Promise((r) => setTimeout(r, 300))
    expect(settled).toBe(false)
    await client.send({ type: PacketType.REPLY, seq: 1, ackId: asked.ackId, args: ['late'] })
    await expect(reply).resolves.toBe('late')
  })

  it('takes timeouts by one rule: a number of ms from 0, past 2^31-1 (Infinity too) without a timer', async () => {
    const { socket, client } = await one()
    const parley = opened.started!.app.parley
    for (const ms of [Number.NaN, -1, '5', undefined]) {
      const given = ms as number
      for (const call of [
        () => socket.timeout(given),
        () => socket.volatile.timeout(given),
        () => socket.timeout(1).volatile.timeout(given),
        () => parley.timeout(given),
        () => parley.to('r').timeout(given),
      ]) {
        // A number out of range is a RangeError, anything else a TypeError; both coded.
        expect(call).toThrow(typeof given === 'number' ? RangeError : TypeError)
        expect(call).toThrow(expect.objectContaining({ code: 'PARLEY_INVALID_ARGUMENT' }))
        expect(call).toThrow(/^timeout must be a number of ms, 0 or more \(Infinity: no timer\), not /)
      }
    }
    let sent = 0
    const answer = async (value: string) => {
      const asked = (await client.next(isEvent('slow'))) as EventPacket
      await client.send({ type: PacketType.REPLY, seq: ++sent, ackId: asked.ackId, args: [value] })
    }
    const forever = socket.timeout(Number.POSITIVE_INFINITY).emitWithAck('slow', 1)
    await answer('socket')
    await expect(forever).resolves.toBe('socket')
    // A broadcast's own timer: one set past 2^31-1 ms would fire at once.
    for (const ms of [3e9, Number.POSITIVE_INFINITY]) {
      const replies = parley.timeout(ms).emitWithAck('slow')
      await answer(String(ms))
      await expect(replies).resolves.toEqual([String(ms)])
    }
  })

  it('ends at once on a client CLOSE, with "client disconnect"', async () => {
    const { socket, client } = await one({}, 'sse')
    const reasons: string[] = []
    socket.on('disconnect', (r) => reasons.push(r))
    await client.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
    await until(() => reasons.length === 1)
    expect(reasons).toEqual(['client disconnect'])
    expect(opened.started!.app.parley.socketsCount).toBe(0)
  })

  it('keeps middleware state across resumes, and refuses a resume it does not like', async () => {
    opened.started = await startServer({}, (app) => {
      app.parley.use((socket) => {
        const token = (socket.handshake.auth as { token?: string } | null)?.token
        if (token === 'revoked') throw Object.assign(new Error('token revoked'), { code: 'AUTH_REVOKED' })
        socket.data.token = token
      })
    })
    const c = await rawConnect('websocket', opened.started.base, { auth: { token: 'a' } })
    opened.clients.push(c)
    const [socket] = [...opened.started.app.parley.sockets.values()]
    expect(socket!.data.token).toBe('a')
    const refused = await rawConnect('sse', opened.started.base, {
      sid: c.sid,
      auth: { token: 'revoked' },
    }).catch((e) => e)
    expect(refused).toMatchObject({ code: 'AUTH_REVOKED', status: 403 })
    expect(socket!.transport).toBe('websocket')
    expect(socket!.handshake.auth).toEqual({ token: 'a' })
    const moved = await rawConnect('sse', opened.started.base, { sid: c.sid, auth: { token: 'b' } })
    opened.clients.push(moved)
    expect(socket!.data.token).toBe('b')
    expect(socket!.handshake.transport).toBe('sse')
  })

  it('updates the handshake at every resume: headers, query, auth, transport and time', async () => {
    opened.started = await startServer({})
    const c = await rawConnect(
      'websocket',
      opened.started.base,
      { auth: { n: 1 } },
      { headers: { 'x-client': 'a' } },
    )
    opened.clients.push(c)
    const [socket] = [...opened.started.app.parley.sockets.values()]
    const first = socket!.handshake
    expect(first.headers['x-client']).toBe('a')
    expect(first.query).toEqual({ v: '1' })
    expect(first.time).toBe(new Date(first.issued).toISOString())
    const moved = await rawConnect(
      'sse',
      opened.started.base,
      { sid: c.sid, auth: { n: 2 } },
      { headers: { 'x-client': 'b' } },
    )
    opened.clients.push(moved)
    const second = socket!.handshake
    expect(second).not.toBe(first)
    expect(second).toMatchObject({ auth: { n: 2 }, transport: 'sse', query: { v: '1' } })
    expect(second.headers['x-client']).toBe('b')
    expect(second.issued).toBeGreaterThanOrEqual(first.issued)
    // The one before is left as it was.
    expect(first).toMatchObject({ auth: { n: 1 }, transport: 'websocket' })
    expect(first.headers['x-client']).toBe('a')
  })

  it('negotiates permessage-deflate when asked to', async () => {
    opened.started = await startServer({ perMessageDeflate: true })
    const ws = new WebSocket(`${opened.started.base.replace('http', 'ws')}/ws?v=1`, 'parley.v1')
    await new Promise((r) => ws.once('open', r))
    expect(ws.extensions).toContain('permessage-deflate')
    ws.close()
  })

  it('types event maps', async () => {
    interface FromClient {
      chat: (msg: { text: string }, ack: (reply: { ok: boolean }) => void) => void
    }
    interface FromServer {
      news: (item: { title: string }) => void
      ask: (q: string, ack: (answer: number) => void) => void
    }
    const { socket, client } = await one()
    const typed = socket as unknown as ServerSocket<FromClient, FromServer>
    typed.on('chat', (msg, ack) => ack({ ok: msg.text.length > 0 }))
    typed.emit('news', { title: 'hi' })
    const answer: Promise<number> = typed.emitWithAck('ask', 'six times seven?')
    const asked = (await client.next(isEvent('ask'))) as EventPacket
    await client.send({ type: PacketType.REPLY, seq: 1, ackId: asked.ackId, args: [42] })
    expect(await answer).toBe(42)
  })
})

describe.each(['websocket', 'sse', 'polling'] as const)('a handshake middleware over %s', (transport) => {
  it('that disconnects the socket refuses the client, and leaves no socket behind', async () => {
    const connections: ServerSocket[] = []
    const ended: string[] = []
    let ranAfterDisconnect = false
    opened.started = await startServer({ maxSessions: 1 }, (app) => {
      app.parley.use((socket) => {
        if ((socket.handshake.auth as { stay?: boolean } | null)?.stay) return
        socket.on('disconnect', (reason) => ended.push(reason))
        socket.disconnect()
      })
      app.parley.use((socket) => {
        if (!socket.connected) ranAfterDisconnect = true
      })
      app.parley.on('connection', (socket) => {
        connections.push(socket)
      })
    })
    const parley = opened.started.app.parley
    for (let i = 0; i < 2; i++) {
      const refused = await rawConnect(transport, opened.started.base).catch((e: unknown) => e)
      expect(refused).toMatchObject({
        code: 'PARLEY_REFUSED',
        message: 'PARLEY_REFUSED: the server disconnected the socket',
        status: transport === 'websocket' ? undefined : 403,
      })
      expect(parley.socketsCount).toBe(0)
    }
    expect(ended).toEqual(['server disconnect', 'server disconnect'])
    expect(ranAfterDisconnect).toBe(false)
    expect(connections).toEqual([])
    // Refused handshakes hold no place: the one session maxSessions allows is still free.
    const client = await rawConnect(transport, opened.started.base, { auth: { stay: true } })
    opened.clients.push(client)
    expect(connections.map((s) => s.id)).toEqual([client.id])
    expect(parley.socketsCount).toBe(1)
    // On a resume it ends the session: the client hears so from its CLOSE.
    const resumed = await rawConnect(transport, opened.started.base, { sid: client.sid }).catch(
      (e: unknown) => e,
    )
    expect(resumed).toBeInstanceOf(Closed)
    expect((resumed as Closed).packet.reason).toBe('server disconnect')
    expect(parley.socketsCount).toBe(0)
  })
})
