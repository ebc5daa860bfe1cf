// Client behaviours against a scripted WebSocket peer, for what the real server cannot be made to
// do on cue: send a duplicate or skip a number, acknowledge part of a burst, go silent on an
// open socket, never answer HELLO, hand a specific retryAfter, answer a request twice. Resumes,
// refusals and replies against the real server, over every transport, are in session.test.ts,
// transports.test.ts and server-features.test.ts.
import { ErrorCode, type EventPacket, type HelloPacket, PacketType, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type FakeServer, openPacket, startFakeWs } from './fake-ws.js'
import { client, closeClients, next, until } from './helpers.js'

let fake: FakeServer | undefined

afterEach(async () => {
  closeClients()
  await fake?.close()
  fake = undefined
})

const SID = 'AAAAAAAAAAAAAAAAAAAAA'
const SID2 = 'BBBBBBBBBBBBBBBBBBBBB'
const isType = (type: number) => (p: { type: number }) => p.type === type
const ev = (seq: number, name: string, args: EventPacket['args'] = [], ackId = 0): EventPacket => ({
  type: PacketType.EVENT,
  seq,
  name,
  args,
  ackId,
})

type Opened = Awaited<ReturnType<typeof opened>>

async function opened(options = {}) {
  fake = await startFakeWs()
  const conn = fake.nextConn()
  const socket = client(fake.url, { transports: ['websocket'], ...options })
  const c = await conn
  const hello = (await c.next(isType(PacketType.HELLO))) as HelloPacket
  c.send(openPacket(SID))
  await next(socket, 'connect')
  return { socket, c, hello }
}

/** Emits `a` 1 and 2; resolves once the second is on the wire (neither acknowledged). */
async function emittedTwo({ socket, c }: Pick<Opened, 'socket' | 'c'>): Promise<void> {
  socket.emit('a', 1)
  socket.emit('a', 2)
  await c.next((p) => p.type === PacketType.EVENT && p.seq === 2)
}

/** Cuts `c` as a network would; resolves with the client's next connection. */
function cutThenNext(c: Opened['c']) {
  const next = fake!.nextConn()
  c.ws.terminate()
  return next
}

describe('client against a scripted server: what a real one never does on cue', () => {
  it('says HELLO with auth first and nothing else', async () => {
    const { hello } = await opened({ auth: { token: 't' } })
    // `closeAck`: it reads an ACK before the CLOSE that may answer a resume.
    expect(hello).toEqual({ type: PacketType.HELLO, auth: { token: 't' }, closeAck: true })
  })

  it('answers PING with PONG at once', async () => {
    const { c } = await opened()
    c.send({ type: PacketType.PING })
    await c.next(isType(PacketType.PONG), 200)
  })

  it('drops duplicates, acknowledges within 1000 ms, and at once when 32 wait', async () => {
    const { socket, c } = await opened()
    const got: unknown[] = []
    socket.on('e', (n: unknown) => got.push(n))
    c.send(ev(1, 'e', [1]))
    c.send(ev(1, 'e', [1]))
    c.send(ev(2, 'e', [2]))
    const ack = await c.next(isType(PacketType.ACK), 1500)
    expect(ack).toEqual({ type: PacketType.ACK, ack: 2 })
    expect(got).toEqual([1, 2])
    for (let n = 3; n <= 34; n++) c.send(ev(n, 'e', [n]))
    // 32 waiting: no timer, the ACK comes well before the 1000 ms one would.
    expect(await c.next(isType(PacketType.ACK), 500)).toEqual({ type: PacketType.ACK, ack: 34 })
  })

  it('resumes on a gap, says so, with its sid and ack, and gets the rest replayed', async () => {
    const { socket, c } = await opened()
    const got: unknown[] = []
    socket.on('e', (n: unknown) => got.push(n))
    const lost: string[] = []
    socket.on('transport_error', (transport, error) =>
      lost.push(`${transport} ${error.code} ${error.message}`),
    )
    c.send(ev(1, 'e', [1]))
    const second = fake!.nextConn()
    c.send(ev(3, 'e', [3]))
    const c2 = await second
    const hello = (await c2.next(isType(PacketType.HELLO))) as HelloPacket
    expect(hello).toMatchObject({ sid: SID, ack: 1 })
    c2.send(openPacket(SID, { recovered: true, ack: 0 }))
    c2.send(ev(2, 'e', [2]))
    c2.send(ev(3, 'e', [3]))
    await until(() => got.length === 3, 2000, 'replay')
    expect(got).toEqual([1, 2, 3])
    expect(socket.recovered).toBe(true)
    expect(lost).toEqual(['websocket PARLEY_TRANSPORT_ERROR packets missing before 3'])
  })

  it('resends what the server did not acknowledge after OPEN, in order', async () => {
    const { socket, c } = await opened()
    socket.emit('a', 1)
    socket.emit('a', 2)
    socket.emit('a', 3)
    await c.next((p) => p.type === PacketType.EVENT && p.seq === 3)
    c.send({ type: PacketType.ACK, ack: 1 })
    await new Promise((r) => setTimeout(r, 20))
    const c2 = await cutThenNext(c)
    expect(await c2.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID, ack: 0 })
    c2.send(openPacket(SID, { recovered: true, ack: 2 }))
    const resent = (await c2.next(isType(PacketType.EVENT))) as EventPacket
    expect(resent).toMatchObject({ seq: 3, args: [3] })
  })

  it('refuses an ACK past what it sent with PARLEY_INVALID_SEQ, and keeps what waits for an ACK', async () => {
    const { socket, c } = await opened()
    const errors: ParleyError[] = []
    socket.on('error', (error) => errors.push(error as ParleyError))
    await emittedTwo({ socket, c })
    // A broken proxy, or a server of another implementation: no Parley server acknowledges more.
    c.send({ type: PacketType.ACK, ack: 5 })
    await until(() => errors.length === 1, 2000, 'the error')
    expect(errors[0]).toMatchObject({ code: ErrorCode.INVALID_SEQ, details: { seq: 0 } })
    expect(errors[0]!.message).toBe('ACK 5 > 2')
    // The server lacked both after all: the resume sends them again.
    const c2 = await cutThenNext(c)
    expect(await c2.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID })
    c2.send(openPacket(SID, { recovered: true, ack: 0 }))
    expect(await c2.next(isType(PacketType.EVENT))).toMatchObject({ seq: 1, args: [1] })
    expect(await c2.next(isType(PacketType.EVENT))).toMatchObject({ seq: 2, args: [2] })
  })

  it('refuses an OPEN whose ack is past what it sent: drops that transport, resumes, and resends what it kept', async () => {
    const { socket, c } = await opened({ reconnectionDelay: 50 })
    const heard: string[] = []
    socket.on('transport_error', (transport, error) =>
      heard.push(`${transport} ${error.code} ${error.message}`),
    )
    socket.on('connect_error', (error) => heard.push(`connect_error ${error.code} ${error.message}`))
    socket.on('disconnect', (reason) => heard.push(`disconnect ${reason}`))
    await emittedTwo({ socket, c })
    const c2 = await cutThenNext(c)
    expect(await c2.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID, ack: 0 })
    // The first transport's loss was heard; from here on, the OPEN's refusal.
    heard.length = 0
    const third = fake!.nextConn()
    const dropped = new Promise((resolve) => c2.ws.once('close', resolve))
    // A broken proxy, or a server of another implementation: no Parley server acknowledges more.
    c2.send(openPacket(SID, { recovered: true, ack: 5 }))
    // Dropped as a transport it cannot trust; the only transport allowed, so the session is down
    // and the next attempt resumes it (the HELLO still names it).
    expect(await dropped).toBe(4000)
    const c3 = await third
    expect(await c3.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID, ack: 0 })
    expect(heard).toEqual([
      'websocket PARLEY_INVALID_SEQ ACK 5 > 2',
      'disconnect transport close',
      'connect_error PARLEY_INVALID_SEQ ACK 5 > 2',
    ])
    // Nothing was forgotten: both go again, under their numbers.
    c3.send(openPacket(SID, { recovered: true, ack: 0 }))
    expect(await c3.next(isType(PacketType.EVENT))).toMatchObject({ seq: 1, args: [1] })
    expect(await c3.next(isType(PacketType.EVENT))).toMatchObject({ seq: 2, args: [2] })
    expect(socket.recovered).toBe(true)
  })

  it('refuses an OPEN of a new session whose ack is not 0, even within what it sent before: nothing of the new session was sent yet', async () => {
    const { socket, c } = await opened({ reconnectionDelay: 50 })
    const heard: string[] = []
    socket.on('transport_error', (transport, error) =>
      heard.push(`${transport} ${error.code} ${error.message}`),
    )
    await emittedTwo({ socket, c })
    const c2 = await cutThenNext(c)
    expect(await c2.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID })
    heard.length = 0
    const third = fake!.nextConn()
    const dropped = new Promise((resolve) => c2.ws.once('close', resolve))
    // The session could not be resumed, and a new one is opened in its place, whose ack claims the
    // first two packets of its numbering: what the client kept is numbered again from 1 into it,
    // and a server that believes its ack would drop both as duplicates.
    c2.send(openPacket(SID2, { recovered: false, ack: 2 }))
    expect(await dropped).toBe(4000)
    expect(heard).toEqual(['websocket PARLEY_INVALID_SEQ ACK 2 > 0'])
    // Nothing of that OPEN applied: the next attempt still asks to resume the old session.
    const c3 = await third
    expect(await c3.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID, ack: 0 })
    c3.send(openPacket(SID2))
    expect(await c3.next(isType(PacketType.EVENT))).toMatchObject({ seq: 1, args: [1] })
    expect(await c3.next(isType(PacketType.EVENT))).toMatchObject({ seq: 2, args: [2] })
    expect(socket.recovered).toBe(false)
  })

  it('refuses an ACK past what it sent before the CLOSE that answers its resume, then renumbers what it kept into the next session', async () => {
    const { socket, c } = await opened({ reconnectionDelay: 50 })
    const heard: string[] = []
    socket.on('error', (error) => heard.push(`error ${(error as ParleyError).code} ${error.message}`))
    socket.on('disconnect', (reason) => heard.push(`disconnect ${reason}`))
    await emittedTwo({ socket, c })
    const c2 = await cutThenNext(c)
    expect(await c2.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID, closeAck: true })
    const third = fake!.nextConn()
    // The ended session's last ACK, then its CLOSE (HELLO `closeAck`); that ACK past what was sent.
    c2.send({ type: PacketType.ACK, ack: 5 })
    c2.send({ type: PacketType.CLOSE, reason: 'slow consumer', message: 'too slow' })
    const c3 = await third
    expect(await c3.next(isType(PacketType.HELLO))).toEqual({ type: PacketType.HELLO, closeAck: true })
    expect(heard).toEqual(['error PARLEY_INVALID_SEQ ACK 5 > 2', 'disconnect slow consumer'])
    c3.send(openPacket(SID2))
    expect(await c3.next(isType(PacketType.EVENT))).toMatchObject({ seq: 1, args: [1] })
    expect(await c3.next(isType(PacketType.EVENT))).toMatchObject({ seq: 2, args: [2] })
  })

  it('ends there, without the CLOSE or a new session, when that error’s listener calls disconnect()', async () => {
    const { socket, c } = await opened({ reconnectionDelay: 50 })
    const heard: string[] = []
    socket.on('error', () => socket.disconnect())
    socket.on('disconnect', (reason) => heard.push(`disconnect ${reason}`))
    socket.on('connect_error', (error) => heard.push(`connect_error ${error.message}`))
    socket.emit('a', 1)
    await c.next(isType(PacketType.EVENT))
    const c2 = await cutThenNext(c)
    await c2.next(isType(PacketType.HELLO))
    // The loss of the first transport, so soon after it opened, was a connect_error of its own.
    heard.length = 0
    c2.send({ type: PacketType.ACK, ack: 5 })
    c2.send({ type: PacketType.CLOSE, reason: 'slow consumer', message: 'too slow' })
    await until(() => heard.length > 0, 2000, 'the disconnect')
    // A new session would come within the backoff (50 ms, doubled at most a few times).
    await expect(fake!.nextConn(500)).rejects.toThrow()
    expect(heard).toEqual(['disconnect client disconnect'])
  })

  it('renumbers unacknowledged messages into a new session when the old one is gone', async () => {
    const { socket, c } = await opened()
    const connects: boolean[] = []
    socket.on('connect', () => connects.push(socket.recovered))
    socket.emit('a', 'x')
    await c.next(isType(PacketType.EVENT))
    const c2 = await cutThenNext(c)
    await c2.next(isType(PacketType.HELLO))
    const down = next(socket, 'disconnect')
    c2.send(openPacket(SID2, { recovered: false, ack: 0 }))
    expect(await down).toEqual(['session expired'])
    expect(await c2.next(isType(PacketType.EVENT))).toMatchObject({ seq: 1, args: ['x'] })
    expect(connects).toEqual([false])
    expect(socket.id).toBe(openPacket(SID2).id)
  })

  it('renumbers from 1 what it kept, binary frames too, as it was encoded when emitted', async () => {
    const { socket, c } = await opened()
    const bytes = new Uint8Array([7, 8])
    socket.emit('a', 1)
    socket.emit('a', 2)
    socket.emit('a', { bytes })
    await c.next((p) => p.type === PacketType.EVENT && p.seq === 3)
    c.send({ type: PacketType.ACK, ack: 1 })
    await new Promise((r) => setTimeout(r, 20))
    bytes[0] = 0
    const c2 = await cutThenNext(c)
    await c2.next(isType(PacketType.HELLO))
    c2.send(openPacket(SID2, { recovered: false, ack: 0 }))
    expect(await c2.next(isType(PacketType.EVENT))).toMatchObject({ seq: 1, args: [2] })
    expect(await c2.next(isType(PacketType.EVENT))).toMatchObject({
      seq: 2,
      args: [{ bytes: new Uint8Array([7, 8]) }],
    })
  })

  it('declares the transport dead after pingInterval + pingTimeout of silence', async () => {
    fake = await startFakeWs()
    const conn = fake.nextConn()
    const socket = client(fake.url, { transports: ['websocket'] })
    const c = await conn
    await c.next(isType(PacketType.HELLO))
    c.send(openPacket(SID, { pingInterval: 100, pingTimeout: 100 }))
    await next(socket, 'connect')
    const started = performance.now()
    const second = await fake.nextConn(2000)
    expect(performance.now() - started).toBeGreaterThanOrEqual(180)
    expect(await second.next(isType(PacketType.HELLO))).toMatchObject({ sid: SID })
  })

  it('fails an attempt whose WebSocket never answers HELLO, within connectTimeout', async () => {
    fake = await startFakeWs()
    const socket = client(fake.url, { transports: ['websocket'], connectTimeout: 300, reconnection: false })
    const started = performance.now()
    const [error] = (await next(socket, 'connect_error')) as [ParleyError<string>]
    expect(error.code).toBe(ErrorCode.HANDSHAKE_TIMEOUT)
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it('waits retryAfter after CLOSE "server shutdown", then starts a new session', async () => {
    const { socket, c } = await opened()
    const down = next(socket, 'disconnect')
    const started = performance.now()
    c.send({ type: PacketType.CLOSE, reason: 'server shutdown', message: 'bye', retryAfter: 300 })
    expect(await down).toEqual(['server shutdown', { message: 'bye' }])
    const c2 = await fake!.nextConn()
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    const hello = await c2.next(isType(PacketType.HELLO))
    expect(hello).toEqual({ type: PacketType.HELLO, closeAck: true })
  })

  it('answers a server request with a numbered REPLY', async () => {
    const { socket, c } = await opened()
    socket.on('q', (n: number, ack: (r: number) => void) => {
      ack(n + 1)
      ack(n + 2)
    })
    c.send(ev(1, 'q', [1], 5))
    expect(await c.next(isType(PacketType.REPLY))).toEqual({
      type: PacketType.REPLY,
      seq: 1,
      ackId: 5,
      args: [2],
    })
    await expect(c.next(isType(PacketType.REPLY), 100)).rejects.toThrow()
  })
})

describe('browser network hints', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it('waits while offline and hurries when the browser says it is online again', async () => {
    const win = new EventTarget()
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    const nav = { onLine: true }
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win))
    vi.stubGlobal('document', doc)
    vi.stubGlobal('navigator', nav)
    const { socket, c } = await opened({ reconnectionDelay: 50, reconnectionDelayMax: 50 })
    nav.onLine = false
    const down = next(socket, 'disconnect')
    c.send({ type: PacketType.CLOSE, reason: 'server shutdown', message: 'bye' })
    await down
    // Offline: no attempt, however long the backoff has passed.
    await new Promise((r) => setTimeout(r, 300))
    expect(fake!.conns.length).toBe(1)
    nav.onLine = true
    const again = fake!.nextConn(200)
    win.dispatchEvent(new Event('online'))
    await again
  })

  it('hurries when the page becomes visible', async () => {
    const win = new EventTarget()
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win))
    vi.stubGlobal('document', doc)
    const { socket, c } = await opened({
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    const down = next(socket, 'disconnect')
    c.send({ type: PacketType.CLOSE, reason: 'server shutdown', message: 'bye' })
    await down
    const again = fake!.nextConn(500)
    doc.dispatchEvent(new Event('visibilitychange'))
    await again
  })
})
