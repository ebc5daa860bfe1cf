// After a stall of the client's thread (a tab frozen and resumed, a laptop waking, a long
// synchronous task), expired timers run before the input that came meanwhile is read. The
// server runs in a thread of its own (stall-server-worker.ts) and answers while this one is
// blocked: its answer, waiting in the socket, must win over the wait that ran out, and the
// client stay on its transport. A wait that no answer ends still ends.
import {
  createServer,
  type NetConnectOpts,
  connect as netConnect,
  type Server,
  type Socket as TcpSocket,
} from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { within } from '../../server/test/helpers.js'
import { connect } from '../src/index.js'
import type { Socket } from '../src/socket.js'
import type { WebSocketConstructor } from '../src/transports/websocket.js'
import { stallOnceAsked, stallUntil, startWorker } from './stall-thread.js'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/** What the client said until it connected or gave up. */
async function outcome(socket: Socket): Promise<{ connected: boolean; errors: string[] }> {
  const errors: string[] = []
  socket.on('transport_error', (name, error) => void errors.push(`${name}: ${error.message}`))
  socket.on('connect_error', (error) => void errors.push(`${error.code}: ${error.message}`))
  const connected = await within(
    new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true))
      socket.once('connect_error', () => resolve(false))
    }),
    15_000,
    'the connect or its error',
  )
  return { connected, errors }
}

/**
 * The client connected on `transport` (when named) and said nothing, though the thread stalled
 * past its bound with the server's answer on its way (`answered`, read once it connected).
 */
async function expectConnectedThroughStall(
  socket: Socket,
  answered: () => boolean | undefined,
  transport?: string,
): Promise<void> {
  const { connected, errors } = await outcome(socket)
  expect(answered()).toBe(true)
  expect(errors).toEqual([])
  expect(connected).toBe(true)
  if (transport !== undefined) expect(socket.transport).toBe(transport)
}

function client(url: string, WebSocketClass: WebSocketConstructor, connectTimeout: number): Socket {
  const socket = connect(url, {
    transports: ['websocket', 'polling'],
    WebSocket: WebSocketClass,
    connectTimeout,
    reconnection: false,
  })
  closers.push(async () => socket.disconnect())
  return socket
}

it('stays on WebSocket when the upgrade was answered while the thread stalled past its wait', async () => {
  const { url, writes } = await startWorker(closers)
  let answered: boolean | undefined
  // Blocked once the upgrade request went (the connection's `connect`, whose listeners write it),
  // for 1.5 s: past the upgrade's wait of 1 s (a third of connectTimeout, at least 1 s).
  class Stalling extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, {
        createConnection: ((options: NetConnectOpts) => {
          const tcp = netConnect(options)
          tcp.once('connect', () =>
            setImmediate(() => {
              answered = stallUntil(performance.now() + 1500, writes, 1)
            }),
          )
          return tcp
        }) as typeof netConnect,
      })
    }
  }
  const socket = client(url, Stalling, 3000)
  await expectConnectedThroughStall(socket, () => answered, 'websocket')
})

it('stays on WebSocket when the OPEN came while the thread stalled past connectTimeout', async () => {
  // The server's middleware holds the HELLO 1.5 s: the upgrade's wait (1 s) passed with the
  // upgrade through, and the OPEN's (the rest of connectTimeout, 3 s from the try) runs out
  // while this thread is blocked, from 1.1 s after the HELLO to 3.3 s after the try.
  const { url, writes } = await startWorker(closers, { helloDelay: 1500 })
  let answered: boolean | undefined
  class Stalling extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols)
      const began = performance.now()
      // Heard before the client's own `open` listener, which sends the HELLO at once.
      this.once('open', () =>
        // From a timer, blocked in the check phase: blocked in the timers phase itself, Node
        // would go on with the loop time read before the stall, and read the input before the
        // timers that expired meanwhile.
        setTimeout(
          () =>
            setImmediate(() => {
              answered = stallUntil(began + 3300, writes, 2)
            }),
          1100,
        ),
      )
    }
  }
  const socket = client(url, Stalling, 3000)
  await expectConnectedThroughStall(socket, () => answered, 'websocket')
})

it("connects when its auth's own request was answered while the thread stalled past connectTimeout", async () => {
  // The auth fetches a token, which the server gives 300 ms after the request reached it; this
  // thread is blocked from then for 1.4 s, past connectTimeout (1 s from the fetch), the token
  // waiting to be read. From then rather than from a fixed time after the fetch: on a busy
  // machine the request may take longer to go out, and its answer would come after the stall.
  const { url, writes, asked } = await startWorker(closers)
  let stall: { answered?: boolean } | undefined
  const socket = connect(url, {
    transports: ['websocket'],
    connectTimeout: 1000,
    reconnection: false,
    auth: async () => {
      stall = stallOnceAsked(asked, writes, 'the token asked for', () => performance.now() + 1400)
      const res = await fetch(new URL('/token', url))
      return (await res.json()) as { token: string }
    },
  })
  closers.push(async () => socket.disconnect())
  await expectConnectedThroughStall(socket, () => stall?.answered)
})

it('still times out when no answer came, stall or not', async () => {
  // A server that takes the connection and never answers the upgrade.
  const held = new Set<TcpSocket>()
  const server: Server = createServer((tcp) => void held.add(tcp))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(async () => {
    for (const tcp of held) tcp.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  let stalled = 0
  class Stalling extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols)
      // Blocked past the upgrade's wait, with nothing to read after it.
      setImmediate(() => {
        const began = performance.now()
        stallUntil(began + 1500, new Int32Array(new SharedArrayBuffer(4)), 1)
        stalled = performance.now() - began
      })
    }
  }
  const socket = connect(`http://127.0.0.1:${port}/parley`, {
    transports: ['websocket'],
    WebSocket: Stalling,
    connectTimeout: 3000,
    reconnection: false,
  })
  closers.push(async () => socket.disconnect())
  const { connected, errors } = await outcome(socket)
  expect(stalled).toBeGreaterThanOrEqual(1500)
  expect(connected).toBe(false)
  expect(errors).toEqual([
    `websocket: no upgrade from ws://127.0.0.1:${port}/parley/ws within 1000 ms (its share of connectTimeout)`,
    expect.stringMatching(/^PARLEY_HANDSHAKE_TIMEOUT: no upgrade from .* within 1000 ms/),
  ])
})

it.each(['polling', 'sse'] as const)(
  'stays on %s when the OPEN came while the thread stalled past connectTimeout',
  async (transport) => {
    // The server's middleware holds the HELLO 300 ms; this thread is blocked once the HELLO
    // reached it (blocked before, the POST would never leave), until 1.5 s after the POST began,
    // past connectTimeout (1 s), with the OPEN waiting to be read.
    const { url, writes, asked } = await startWorker(closers, { helloDelay: 300 })
    let stall: { answered?: boolean } | undefined
    const stalling: typeof fetch = (input, init) => {
      if (stall === undefined) {
        const start = performance.now()
        stall = stallOnceAsked(asked, writes, 'the HELLO held', () => start + 1500)
      }
      return fetch(input, init)
    }
    const socket = connect(url, {
      transports: [transport],
      fetch: stalling,
      connectTimeout: 1000,
      reconnection: false,
    })
    closers.push(async () => socket.disconnect())
    await expectConnectedThroughStall(socket, () => stall?.answered, transport)
  },
)

it("stays on sse when the stream's first bytes came while the thread stalled past their wait", async () => {
  // The server holds the stream's GET 300 ms; this thread is blocked once the GET reached it, for
  // 1.5 s, past the wait for the stream's first bytes (connectTimeout, 1 s from the GET), with
  // those bytes waiting to be read.
  const { url, writes, asked } = await startWorker(closers, { streamDelay: 300 })
  let stall: { answered?: boolean } | undefined
  const stalling: typeof fetch = (input, init) => {
    if ((init?.method ?? 'GET') === 'GET' && stall === undefined)
      stall = stallOnceAsked(
        asked,
        writes,
        'the GET held',
        () => performance.now() + 1500,
        () => Atomics.load(writes, 0) + 1,
      )
    return fetch(input, init)
  }
  const socket = connect(url, {
    transports: ['sse'],
    fetch: stalling,
    connectTimeout: 1000,
    reconnection: false,
  })
  closers.push(async () => socket.disconnect())
  await expectConnectedThroughStall(socket, () => stall?.answered, 'sse')
})
