// A held poll or an event stream is open for as long as its client is idle, and whatever hangs
// on its response lasts as long: the transports share one 'close' listener across all of them
// rather than a closure each (docs/benchmarks.md, the heap per idle client). That listener is
// still how a transport hears that its client left.
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { PacketType, type TransportName } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'

const opened = closedAfterEach()

type HttpTransport = Exclude<TransportName, 'websocket'>
const segment = (transport: HttpTransport) => (transport === 'sse' ? 'sse' : 'poll')

/**
 * A server that hands the test each downstream GET's response (those with a sid) as it comes,
 * and whether the route has taken it over yet (hijacked: from then on a transport holds it).
 */
async function start(transport: HttpTransport, seen: (res: ServerResponse, taken: () => boolean) => void) {
  let socket: ServerSocket | undefined
  opened.started = await startServer({ transports: [transport] }, (app) => {
    app.parley.on('connection', (s) => {
      socket = s
    })
    app.addHook('onRequest', async (request, reply) => {
      if (request.method === 'GET' && (request.query as { sid?: string }).sid)
        seen(reply.raw, () => reply.sent)
    })
  })
  const port = (opened.started.app.server.address() as { port: number }).port
  return { port, socket: () => socket }
}

/** A session's handshake, then a downstream GET of its own on a bare connection. */
async function rawDownstream(transport: HttpTransport, port: number) {
  const answer = await fetch(`${opened.started!.base}/${segment(transport)}?v=1`, {
    method: 'POST',
    body: '[8,{}]',
  })
  const open = JSON.parse(await answer.text()) as [number, { sid: string }]
  const sid = open[1].sid
  const get = async () => {
    const raw = await RawHttp.open(port)
    opened.rawHttp.push(raw)
    raw.write(head('GET', `/parley/${segment(transport)}?v=1&sid=${sid}`))
    return raw
  }
  return { sid, get }
}

/** Resolves once `res` has closed: Parley's listener, added after the test's, has run too. */
function closedOf(res: ServerResponse): () => boolean {
  let closed = false
  res.on('close', () => {
    closed = true
  })
  return () => closed
}

for (const transport of ['polling', 'sse'] as const) {
  it(`${transport}: every held GET's response carries the same 'close' listeners, none made for it`, async () => {
    const held: ServerResponse[] = []
    await start(transport, (res) => held.push(res))
    for (let i = 0; i < 3; i++) opened.clients.push(await rawConnect(transport, opened.started!.base))
    const open = () => held.filter((res) => !res.writableEnded && !res.destroyed)
    await until(() => open().length === 3, 5000, 'three held GETs')
    const [first, second, third] = open()
    const listeners = first!.listeners('close')
    expect(listeners.length).toBeGreaterThan(0)
    // One function for all of them: no closure per transport or per GET.
    expect(second!.listeners('close')).toEqual(listeners)
    expect(third!.listeners('close')).toEqual(listeners)
  })
}

for (const transport of ['polling', 'sse'] as const) {
  it(`${transport}: a held GET's response carries one 'close' listener`, async () => {
    // The connection count's listener, on every response, tells the transport too: a second
    // listener would make the response's list of them an array of its own, kept for as long as
    // the client is idle (docs/benchmarks.md, the heap per idle client).
    const held: ServerResponse[] = []
    await start(transport, (res) => held.push(res))
    opened.clients.push(await rawConnect(transport, opened.started!.base))
    const open = () => held.filter((res) => !res.writableEnded && !res.destroyed)
    await until(() => open().length === 1, 5000, 'a held GET')
    expect(open()[0]!.listenerCount('close')).toBe(1)
  })
}

/**
 * The 'close' listeners Node alone puts on the connection of a response it holds open, read on
 * a bare `http` server: what Parley's held GETs and streams should carry, and no more.
 */
async function nodesOwnCloseListeners(): Promise<number> {
  let count = -1
  const server = createServer((req) => {
    count = req.socket.listenerCount('close')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const raw = await RawHttp.open((server.address() as AddressInfo).port)
    opened.rawHttp.push(raw)
    raw.write(head('GET', '/held'))
    await until(() => count >= 0, 5000, 'the bare server held the GET')
    return count
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
}

for (const transport of ['polling', 'sse'] as const) {
  it(`${transport}: the connection of a held GET carries Node's own 'close' listeners alone`, async () => {
    // Parley's own on the connection would make Node's list of them a larger array, kept for as
    // long as the client is idle (docs/benchmarks.md, the heap per idle client).
    const expected = await nodesOwnCloseListeners()
    const held: ServerResponse[] = []
    let taken = () => false
    const { port } = await start(transport, (res, hijacked) => {
      held.push(res)
      taken = hijacked
    })
    const { get } = await rawDownstream(transport, port)
    await get()
    await until(() => taken(), 5000, 'the GET held')
    expect(held[0]!.socket!.listenerCount('close')).toBe(expected)
  })
}

it('polling: a held GET its client dropped is let go of (nothing keeps its response)', async () => {
  // A full collection on demand, as `--expose-gc` would give.
  setFlagsFromString('--expose-gc')
  const collect = runInNewContext('gc') as () => void
  let held: WeakRef<ServerResponse> | undefined
  let closed = () => false
  let holding = () => false
  const { port } = await start('polling', (res, taken) => {
    held = new WeakRef(res)
    closed = closedOf(res)
    // Parley holds it once the route has taken it over (after the route's hooks).
    holding = taken
  })
  const { get } = await rawDownstream('polling', port)
  const raw = await get()
  await until(() => holding(), 5000, 'the GET held')
  holding = () => false // the test itself keeps nothing of the response
  raw.socket.destroy()
  await until(closed, 5000, 'the held GET closed')
  // Collected once nothing holds it; the socket's own teardown may take a turn or two. A
  // `deref()` keeps its target alive until the end of the turn, so each collection has a turn
  // of its own.
  const turn = () => new Promise((resolve) => setTimeout(resolve, 10))
  let alive = true
  for (let tries = 0; tries < 50 && alive; tries++) {
    await turn()
    collect()
    await turn()
    alive = held!.deref() !== undefined
  }
  expect(alive).toBe(false)
})

it('sse: packets sent after the stream closed wait for the next GET', async () => {
  let closed = () => false
  const { port, socket } = await start('sse', (res) => {
    closed = closedOf(res)
  })
  const { get } = await rawDownstream('sse', port)
  const first = await get()
  await until(() => first.received.includes('\r\n\r\n:'), 5000, 'the first stream open')
  first.socket.destroy()
  await until(closed, 5000, 'the first stream closed at the server')
  // Written to the closed stream, it would be lost: it waits for the client's next GET.
  socket()!.emit('later', 1)
  const second = await get()
  await until(() => second.received.includes(`[${PacketType.EVENT},1,"later",[1]`), 5000, 'the event')
})
