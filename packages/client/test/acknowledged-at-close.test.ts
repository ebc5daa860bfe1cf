// A server closing without handoff keeps the promise of its ACKs: an event it acknowledged that
// still waits in an async socket middleware reaches its handler before the session ends, and
// what the client sends once the close began is not taken, so it goes to the next server. The
// Parley client against the real server, on each transport.
import { Writable } from 'node:stream'
import type { TransportName } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { type WebSocketServer } from 'ws'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

/** The socket middleware and handler the tests use: `use` and `on`, loosely typed. */
interface EventSocket {
  use(fn: (event: unknown[]) => Promise<void>): void
  on(event: string, fn: (...args: unknown[]) => void): void
}

/**
 * The highest ACK the client has read from the server, on any transport, and the answers to its
 * POSTs: a WebSocket constructor and a fetch that let the client work as usual and read along.
 * The tests send only strings, so `[4,N]` in what comes down is an ACK.
 */
function tap() {
  const seen = { ack: 0, postsAnswered: 0 }
  const read = (text: string) => {
    for (const match of text.matchAll(/\[4,(\d+)\]/g)) seen.ack = Math.max(seen.ack, Number(match[1]))
  }
  class TappedWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      this.addEventListener('message', (event) => read(String(event.data)))
    }
  }
  const fetchFn: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    if ((init?.method ?? 'GET') === 'POST') seen.postsAnswered++
    if (!response.body || response.status === 204) return response
    const [mine, theirs] = response.body.tee()
    void (async () => {
      const reader = mine.pipeThrough(new TextDecoderStream()).getReader()
      let carry = ''
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return
          read(carry + value)
          carry = value.slice(-16)
        }
      } catch {
        // The client hung up on it: nothing more to read.
      }
    })()
    return new Response(theirs, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
  }
  return { seen, WebSocket: TappedWebSocket, fetch: fetchFn }
}

/**
 * Each socket's middleware holds every event named `held` until `release()`; `handled` lists
 * what reached the handlers, in order.
 */
function application() {
  const handled: string[] = []
  let entered = 0
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const setup = (app: FastifyInstance) =>
    parleyOf(app).on('connection', (s) => {
      const socket = s as unknown as EventSocket
      socket.use(async ([event]) => {
        if (event !== 'held') return
        entered++
        await released
      })
      for (const name of ['held', 'late']) socket.on(name, (text) => handled.push(String(text)))
    })
  return { handled, setup, entered: () => entered, release: () => release() }
}

/** A logger that keeps the lines of level warn and above. */
function warnings() {
  const lines: { msg: string; events?: number; sessions?: number }[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  return { lines, logger: { level: 'warn', stream } }
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

const closing = (app: FastifyInstance) => (app as unknown as { parley: { closing: boolean } }).parley.closing

/** The server side of the one session of `app`, loosely typed: what these tests reach. */
interface ServerSideSocket {
  timeout(ms: number): { emitWithAck(event: string): Promise<unknown> }
  session: { sid: string }
}

describe('a close without handoff, on websocket', () => {
  it("takes the client's reply a middleware awaits, sent after an event the close refused", async () => {
    const handled: string[] = []
    const asked: ((answer: string) => void)[] = []
    const server = await startServer(
      (app) =>
        parleyOf(app).on('connection', (s) => {
          const socket = s as unknown as EventSocket & ServerSideSocket
          // The middleware asks the client before it lets `held` through.
          socket.use(async ([event]) => {
            if (event === 'held')
              handled.push(`asked: ${String(await socket.timeout(8000).emitWithAck('confirm'))}`)
          })
          for (const name of ['held', 'late']) socket.on(name, (text) => handled.push(String(text)))
        }),
      { shutdown: { retryAfter: 0, retrySpread: 0 }, handoff: { timeout: 4000 } },
    )
    let wsMessagesAtClose = 0
    const wsServer = (server.app as unknown as { websocketServer: WebSocketServer }).websocketServer
    wsServer.on('connection', (ws) => ws.on('message', () => wsMessagesAtClose++))
    const { seen, ...constructors } = tap()
    const socket = client(server.url, { transports: ['websocket'], ...constructors })
    socket.on('confirm', (ack: (answer: string) => void) => asked.push(ack))
    await next(socket, 'connect', 5000)

    socket.emit('held', 'one')
    await until(
      () => asked.length === 1 && seen.ack >= 1,
      3000,
      'the question of the middleware, and the ACK',
    )
    const parley = parleyOf(server.app) as unknown as {
      sockets: Map<string, ServerSideSocket>
      finishing(sid: string): Promise<void> | undefined
    }
    const { sid } = [...parley.sockets.values()][0]!.session
    const disconnected = next<[string]>(socket, 'disconnect', 8000)
    const closed = server.app.close()
    await until(() => parley.finishing(sid) !== undefined, 3000, 'the close waiting for the middleware')
    wsMessagesAtClose = 0
    // Refused (its client keeps it), and then the answer the middleware awaits.
    socket.emit('late', 'two')
    await until(() => wsMessagesAtClose > 0, 3000, 'the late event at the closing server')
    asked[0]!('yes')
    expect((await disconnected)[0]).toBe('server shutdown')
    await within(closed, 6000, 'the close')
    expect(handled).toEqual(['asked: yes', 'one'])
    // The answer is not acknowledged (the refused event before it is the client's still).
    expect(seen.ack).toBe(1)

    const next2: string[] = []
    await startServer(
      (app) =>
        parleyOf(app).on('connection', (s) => {
          for (const name of ['held', 'late'])
            (s as unknown as EventSocket).on(name, (t) => next2.push(String(t)))
        }),
      {},
      server.port,
    )
    await until(() => next2.length > 0, 5000, 'the late event at the next server')
    expect(next2).toEqual(['two'])
  }, 40_000)
})

describe.each<TransportName>(['websocket', 'sse', 'polling'])(
  'a close without handoff, on %s',
  (transport) => {
    // With Fastify's `return503OnClosing` (the default) the plugin answers the closing session's
    // requests itself; without it, its routes go on serving them.
    it.each([{}, { return503OnClosing: false }])(
      'lets an event it acknowledged out of the middleware to its handler, once; what comes after goes to the next server (Fastify options %o)',
      async (fastifyOptions) => {
        const first = application()
        const options = { shutdown: { retryAfter: 0, retrySpread: 0 }, handoff: { timeout: 4000 } }
        const server = await startServer(first.setup, options, 0, fastifyOptions)
        // Raw WebSocket messages reaching the server, counted from the close on.
        let wsMessagesAtClose = 0
        const wsServer = (server.app as unknown as { websocketServer: WebSocketServer }).websocketServer
        wsServer.on('connection', (ws) => ws.on('message', () => wsMessagesAtClose++))
        const { seen, ...constructors } = tap()
        const socket = client(server.url, { transports: [transport], ...constructors })
        await next(socket, 'connect', 5000)

        socket.emit('held', 'one')
        await until(() => first.entered() === 1, 3000, 'the event in the middleware')
        await until(() => seen.ack >= 1, 3000, 'the ACK of the held event')

        const disconnected = next<[string]>(socket, 'disconnect', 8000)
        const closed = server.app.close()
        await until(() => closing(server.app), 3000, 'the server closing')
        wsMessagesAtClose = 0
        const postsAtClose = seen.postsAnswered
        socket.emit('late', 'two')
        // In the server's hands while it waits for the middleware: read from the WebSocket, or its
        // POST answered (by the closing server, which does not read it).
        await until(
          () => (transport === 'websocket' ? wsMessagesAtClose > 0 : seen.postsAnswered > postsAtClose),
          3000,
          'the late event at the closing server',
        )
        expect(first.handled).toEqual([])
        first.release()
        await within(closed, 4000, 'the close')
        // Told so, over polling too, whose GETs came while the server waited.
        expect((await disconnected)[0]).toBe('server shutdown')
        expect(first.handled).toEqual(['one'])
        expect(seen.ack).toBe(1)

        // The next server on the same address gets what the first did not acknowledge, and only that.
        const second = application()
        second.release()
        await startServer(second.setup, {}, server.port)
        await until(() => second.handled.length > 0, 5000, 'the late event at the next server')
        expect(second.handled).toEqual(['two'])
      },
      40_000,
    )

    // Over SSE and polling the closing server still reads the session's POSTs on its transport
    // (its events are refused there, but not its goodbye); a WebSocket's goodbye is read anyway.
    it("hears the client's goodbye while it waits, and the session ends with 'client disconnect'", async () => {
      const app = application()
      const reasons: string[] = []
      const setup = (server: FastifyInstance) => {
        app.setup(server)
        parleyOf(server).on('connection', (s) => {
          const socket = s as unknown as EventSocket
          socket.on('disconnect', (reason) => reasons.push(String(reason)))
        })
      }
      const server = await startServer(setup, { handoff: { timeout: 4000 } })
      const socket = client(server.url, { transports: [transport] })
      await next(socket, 'connect', 5000)
      socket.emit('held', 'one')
      await until(() => app.entered() === 1, 3000, 'the event in the middleware')

      const closed = server.app.close()
      await until(() => closing(server.app), 3000, 'the server closing')
      socket.disconnect()
      await until(() => reasons.length > 0, 3000, 'the session ending')
      expect(reasons).toEqual(['client disconnect'])
      app.release()
      await within(closed, 4000, 'the close')
    })

    it('ends within its wait when the middleware never lets the event go, and says how many it lost', async () => {
      const app = application()
      const { lines, logger } = warnings()
      const server = await startServer(app.setup, { handoff: { timeout: 300 } }, 0, { logger })
      const { seen, ...constructors } = tap()
      const socket = client(server.url, { transports: [transport], reconnection: false, ...constructors })
      await next(socket, 'connect', 5000)
      socket.emit('held', 'one')
      socket.emit('held', 'two')
      await until(() => app.entered() === 1, 3000, 'the event in the middleware')
      await until(() => seen.ack >= 2, 3000, 'the ACK of both events')

      const disconnected = next<[string]>(socket, 'disconnect', 5000)
      // 300 ms for the middleware, then at most 2 s for the last words: well within 4 s.
      await within(server.app.close(), 4000, 'the close')
      expect((await disconnected)[0]).toBe('server shutdown')
      expect(app.handled).toEqual([])
      const lost = lines.filter((line) => line.msg.includes('still in the socket middleware'))
      expect(lost).toHaveLength(1)
      expect(lost[0]).toMatchObject({ events: 2, sessions: 1 })
    }, 25_000)
  },
)
