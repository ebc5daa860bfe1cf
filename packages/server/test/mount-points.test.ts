// Parley is one server per Fastify context: a second registration where one is seen already
// fails with a coded error that says what to do, and two mount points, each in a context of its
// own, serve their clients apart over every transport.

import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import { connect as connectSocket } from 'node:net'
import websocket from '@fastify/websocket'
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import parley, { ParleyOptionError } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { gate } from './gate.js'
import { heardOn } from './heard.js'
import { holding } from './held-events.js'
import { closeApp, sleep, until, within } from './helpers.js'

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']

let app: FastifyInstance | undefined
const clients: Socket[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect()
  await closeApp(app)
  app = undefined
})

/** Fastify's `logger` option at warn, the message of each line at warn and above pushed to `warned`. */
function keepWarnings(warned: string[]) {
  const stream = {
    write: (line: string) => {
      const { level, msg } = JSON.parse(line) as { level: number; msg: string }
      if (level >= 40) warned.push(msg)
    },
  }
  return { level: 'warn', stream }
}

/** Parley at '/a' and at '/b' of `app`, each in a context of its own, answering `where` with its path. */
async function mountBoth(app: FastifyInstance): Promise<Map<string, FastifyInstance['parley']>> {
  const servers = new Map<string, FastifyInstance['parley']>()
  for (const path of ['/a', '/b']) {
    await app.register(async (child) => {
      await child.register(parley, { path })
      servers.set(path, child.parley)
      child.parley.on('connection', (socket) => {
        socket.on('where', (ack: (path: string) => void) => ack(path))
      })
    })
  }
  return servers
}

/** A client of the mount point at `path`, connected over `transport` and answered by that one. */
async function connectTo(port: number, path: string, transport: TransportName): Promise<void> {
  const client = connect(`http://127.0.0.1:${port}${path}`, {
    transports: [transport],
    reconnection: false,
  })
  clients.push(client)
  await within(
    new Promise<void>((resolve) => client.once('connect', () => resolve())),
    5000,
    `the client of ${path} to connect`,
  )
  expect(client.transport).toBe(transport)
  expect(await within(client.emitWithAck('where' as never), 5000, `the answer of ${path}`)).toBe(path)
}

/**
 * Lets the clients go and ends each mount point's sessions: `closeApp` ends those of the app's
 * own context, which has none.
 */
function endSessions(servers: Map<string, FastifyInstance['parley']>): void {
  for (const client of clients.splice(0)) client.disconnect()
  for (const server of servers.values())
    for (const socket of [...server.sockets.values()]) socket.disconnect()
}

describe('a second registration of Parley', () => {
  it('in the same context fails with PARLEY_INVALID_OPTION, before it makes anything', async () => {
    app = Fastify()
    await app.register(parley, { path: '/a' })
    const registry = new Registry()
    const error = await app.register(parley, { path: '/b', metrics: { registry } }).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(ParleyOptionError)
    expect(error).toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
      option: 'path',
      message: `@parley/server: option "path" is "/b", but Parley is registered already in this context or a parent of it (at "/a"), and a context holds one: register each mount point in a context of its own, siblings of each other (app.register(async (child) => { await child.register(parley, { path: '/b' }) })), each with its own child.parley`,
    })
    expect(await registry.getMetricsAsJSON()).toEqual([])
  })

  it('in a child of a context that has one fails the same way', async () => {
    app = Fastify()
    await app.register(parley, { path: '/a' })
    const error = await app
      .register(async (child) => {
        await child.register(parley, { path: '/b' })
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      )
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
  })
})

describe('Parley under a Fastify prefix written with a percent escape', () => {
  // Fastify's router keeps the routes as written and decodes each request's path: no client
  // could reach the endpoints under `/b%61` (its `/b%61/parley/poll` is read `/ba/parley/poll`).
  it('fails to register with PARLEY_INVALID_OPTION, before it makes anything', async () => {
    app = Fastify()
    const registry = new Registry()
    const error = await app
      .register(
        async (child) => {
          await child.register(parley, { metrics: { registry } })
        },
        { prefix: '/b%61' },
      )
      .then(
        () => undefined,
        (err: unknown) => err,
      )
    expect(error).toBeInstanceOf(ParleyOptionError)
    expect(error).toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
      option: 'path',
      message: `@parley/server: option "path" is "/parley" under the prefix "/b%61", whose percent escape ("%61") the router keeps as written in its routes but decodes in every request's path: no client would reach Parley's endpoints there; write the prefix with the characters themselves ("/ba")`,
    })
    expect(await registry.getMetricsAsJSON()).toEqual([])
  })

  it('is registered under a prefix whose `%` is no escape, and serves a client at its `%25`', async () => {
    app = Fastify({ forceCloseConnections: true })
    await app.register(
      async (child) => {
        await child.register(parley)
        child.parley.on('connection', (socket) => {
          socket.on('where', (ack: (path: string) => void) => ack('/100%25/parley'))
        })
      },
      { prefix: '/100%' },
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    await connectTo(port, '/100%25/parley', 'polling')
  })
})

describe.each(TRANSPORTS)('two mount points in sibling contexts, over %s', (transport) => {
  it('each serves its own clients, with its own app.parley, and logs nothing at warn', async () => {
    // As the README sets them up: @fastify/websocket once, in the application's context. One
    // registration per mount point would listen for every upgrade twice, and warn at each.
    const warned: string[] = []
    app = Fastify({ forceCloseConnections: true, logger: keepWarnings(warned) })
    await app.register(websocket)
    const servers = await mountBoth(app)
    // The application's own context sees neither.
    expect(app.hasDecorator('parley')).toBe(false)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    for (const path of ['/a', '/b']) await connectTo(port, path, transport)
    expect(servers.get('/a')!.sockets.size).toBe(1)
    expect(servers.get('/b')!.sockets.size).toBe(1)
    expect(warned).toEqual([])
    endSessions(servers)
  })
})

describe('two mount points in sibling contexts, closing', () => {
  it("leave the server's connections to the one still draining when the first is done", async () => {
    app = Fastify({ forceCloseConnections: true })
    const servers = await mountBoth(app)
    // An event of the second one's client waits in its middleware: its drain waits for it, after
    // the first one's close hook has run (Fastify runs them one after the other).
    const hold = holding()
    servers.get('/b')!.on('connection', hold.onConnection)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    await connectTo(port, '/b', 'polling')
    clients[0]!.emit('hold' as never)
    await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
    const closing = app.close()
    await until(() => servers.get('/a')!.closed, 5000, 'the first mount point to close')
    expect(servers.get('/b')!.closed).toBe(false)
    // A new connection while the second one drains is answered, not reset.
    expect(await within(answerOnNewConnection(port, '/b/polling?v=1'), 5000, 'an answer')).toMatch(/^HTTP /)
    hold.release()
    await within(closing, 5000, 'the close')
    app = undefined
  }, 25_000)
})

/** What a request on a connection of its own gets: its status line, or its error's code. */
function answerOnNewConnection(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume()
      resolve(`HTTP ${res.statusCode}`)
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`))
    req.end()
  })
}

/** Probes `path` (see `probe`) until it answers `answer`: a bounded number of times. */
async function probeUntil(port: number, path: string, answer: string): Promise<void> {
  let last = ''
  for (let round = 0; round < 200 && last !== answer; round++) {
    last = await probe(port, path)
    if (last !== answer) await sleep(20)
  }
  expect(last).toBe(answer)
}

/** How many listeners of each event `server` has. */
function listenerCounts(server: Server): Record<string, number> {
  const events = ['request', 'upgrade', 'connection']
  return Object.fromEntries(events.map((event) => [event, server.listenerCount(event)]))
}

/** `counts` with `n` more listeners of each event: those of `n` instances' connection tracking. */
function more(counts: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([event, count]) => [event, count + n]))
}

/**
 * What a GET of the WebSocket endpoint at `path`, without an upgrade, gets on a connection of
 * its own: its status and its code ('none' when it has none).
 */
function probe(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `${path}/ws?v=1`, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        let code = 'none'
        try {
          const parsed = JSON.parse(body) as { code?: unknown }
          if (typeof parsed.code === 'string') code = parsed.code
        } catch {}
        resolve(`${res.statusCode} ${code}`)
      })
    })
    req.on('error', reject)
    req.end()
  })
}

describe('two mount points that each register their own @fastify/websocket', () => {
  it('serve their WebSockets, with one warning at registration rather than one per WebSocket', async () => {
    const warned: string[] = []
    app = Fastify({ forceCloseConnections: true, logger: keepWarnings(warned) })
    const servers = await mountBoth(app)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    // A few WebSockets each: a warning per WebSocket would show as many lines.
    for (let round = 0; round < 3; round++) {
      for (const path of ['/a', '/b']) await connectTo(port, path, 'websocket')
    }
    expect(servers.get('/a')!.sockets.size).toBe(3)
    expect(servers.get('/b')!.sockets.size).toBe(3)
    expect(warned).toEqual([
      expect.stringMatching(/^parley: another mount point on this server registered @fastify\/websocket/),
    ])
    endSessions(servers)
  })
})

describe('two Fastify instances on one HTTP server (serverFactory)', () => {
  /**
   * Fastify instances whose `serverFactory` hands each the same `node:http` server, its requests
   * sent to the instance whose prefix their path starts with; closed, then the server, when the
   * test ends. `caseSensitive`: each instance's router option, by position (Fastify's default
   * where none is given).
   */
  async function sharedServer(prefixes: string[], caseSensitive: (boolean | undefined)[] = []) {
    const server = createServer()
    const handlers: [string, (req: IncomingMessage, res: ServerResponse) => void][] = []
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const found = handlers.find(([prefix]) => req.url?.startsWith(prefix))
      if (found) found[1](req, res)
      else res.writeHead(404).end()
    })
    const apps = prefixes.map((prefix, i) =>
      Fastify({
        forceCloseConnections: true,
        ...(caseSensitive[i] !== undefined && { routerOptions: { caseSensitive: caseSensitive[i] } }),
        serverFactory: (handler) => {
          handlers.push([prefix, handler])
          return server
        },
      }),
    )
    onTestFinished(async () => {
      for (const client of clients.splice(0)) client.disconnect()
      for (const each of apps) await closeApp(each)
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })
    return { server, apps }
  }

  /**
   * Two instances on one server: the first at /a, its close begun and held (see the hook's
   * comment), then the second registered at /b, with a route /b/hello, while it closes.
   */
  async function restartedWhileClosing() {
    const { server, apps } = await sharedServer(['/a', '/b'])
    const [first, restarted] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    const hold = gate()
    // After Parley's own: it runs first, and holds the close after Parley let the connections go,
    // its tracking still on the server.
    first.addHook('onClose', hold.pass)
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const closing = first.close()
    onTestFinished(async () => {
      hold.open()
      await closing
    })
    await until(hold.reached, 5000, 'the first instance to close')
    await restarted.register(parley, { path: '/b' })
    restarted.get('/b/hello', async () => 'hello')
    await restarted.ready()
    return { port, hold, closing }
  }

  it("route each WebSocket upgrade to the instance whose mount point's path it names", async () => {
    const { server, apps } = await sharedServer(['/a', '/b'])
    for (const [i, path] of ['/a', '/b'].entries()) {
      const each = apps[i]!
      await each.register(parley, { path })
      each.parley.on('connection', (socket) => {
        socket.on('where', (ack: (path: string) => void) => ack(path))
      })
      await each.ready()
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    for (const path of ['/a', '/b', '/a', '/b']) await connectTo(port, path, 'websocket')
    expect(apps.map((each) => each.parley.sockets.size)).toEqual([2, 2])
  })

  it.each([
    ['', '/a', '/b'],
    [' that ends in a slash, as Fastify joins it to the routes', '/a/', '/b/'],
  ])(
    'route each upgrade by the whole path, the prefix of a Fastify context%s included',
    async (_, ...prefixes) => {
      const { server, apps } = await sharedServer(prefixes)
      const servers = new Map<string, FastifyInstance['parley']>()
      for (const [i, prefix] of prefixes.entries()) {
        const each = apps[i]!
        // Each at the default path, under a prefix of its own: /a/parley and /b/parley.
        await each.register(
          async (child) => {
            await child.register(parley)
            servers.set(prefix, child.parley)
            child.parley.on('connection', (socket) => {
              socket.on('where', (ack: (path: string) => void) => ack(`${prefix.replace(/\/$/, '')}/parley`))
            })
          },
          { prefix },
        )
        await each.ready()
      }
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const { port } = server.address() as { port: number }
      for (const path of ['/a/parley', '/b/parley']) await connectTo(port, path, 'websocket')
      expect([...servers.values()].map((each) => each.sockets.size)).toEqual([1, 1])
      endSessions(servers)
    },
  )

  it('route an upgrade in other letter case to the instance whose router ignores case', async () => {
    // The first instance takes the upgrades no mount point claims: its 404 would answer '/B/ws'.
    const { server, apps } = await sharedServer(['/a', '/b'], [undefined, false])
    for (const [i, path] of ['/a', '/b'].entries()) {
      await apps[i]!.register(parley, { path })
      await apps[i]!.ready()
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const client = connect(`http://127.0.0.1:${port}/B`, { transports: ['websocket'], reconnection: false })
    clients.push(client)
    await within(
      new Promise<void>((resolve) => client.once('connect', () => resolve())),
      5000,
      'the client of /B to connect',
    )
    expect(apps.map((each) => each.parley.sockets.size)).toEqual([0, 1])
  })

  it('refuse a second instance at the path of one whose router ignores case, in other letters', async () => {
    const { apps } = await sharedServer(['/a', '/A'], [false, undefined])
    await apps[0]!.register(parley, { path: '/a' })
    await apps[0]!.ready()
    const err = await apps[1]!
      .register(parley, { path: '/A' })
      .ready()
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
  })

  it("serve the other instance's clients, over every transport, while and after one instance closes", async () => {
    const { server, apps } = await sharedServer(['/a', '/b'])
    const hold = holding()
    for (const [i, path] of ['/a', '/b'].entries()) {
      const each = apps[i]!
      await each.register(parley, { path })
      each.parley.on('connection', (socket) => {
        // An event of the first instance's client waits in its middleware: its close waits for
        // it, as it waits for every event its sessions acknowledged (see "Events acknowledged
        // before the shutdown"), and the second instance's clients come meanwhile.
        hold.onConnection(socket)
        socket.on('where', (ack: (path: string) => void) => ack(path))
      })
      await each.ready()
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await connectTo(port, '/a', 'websocket')
    clients[0]!.emit('hold' as never)
    await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
    let closed = false
    const closing = apps[0]!.close().then(() => {
      closed = true
    })
    // While it closes: its last words have taken the server's listeners over.
    for (const transport of TRANSPORTS) await connectTo(port, '/b', transport)
    expect(closed).toBe(false)
    hold.release()
    await within(closing, 5000, 'the first instance to close')
    // Closed: the server's connections, new ones included, are still the second instance's.
    for (const transport of TRANSPORTS) await connectTo(port, '/b', transport)
    expect(apps[1]!.parley.sockets.size).toBe(6)
  })

  it('take the listeners of an instance that closed off the server the other still serves on', async () => {
    const { server, apps } = await sharedServer(['/a', '/b'])
    const [first, second] = [apps[0]!, apps[1]!]
    await second.register(parley, { path: '/b' })
    second.parley.on('connection', (socket) => {
      socket.on('where', (ack: (path: string) => void) => ack('/b'))
    })
    await second.ready()
    const alone = server.listenerCount('connection')
    await first.register(parley, { path: '/a' })
    await first.ready()
    expect(server.listenerCount('connection')).toBeGreaterThan(alone)
    await within(first.close(), 5000, 'the first instance to close')
    // Left on, each instance closed on the server would go on counting its connections.
    expect(server.listenerCount('connection')).toBe(alone)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    for (const transport of TRANSPORTS) await connectTo(port, '/b', transport)
    expect(second.parley.sockets.size).toBe(3)
  })

  it.each([
    ['/a', '/b', '/c'],
    ['/c', '/b', '/a'],
    ['/b', '/c', '/a'],
    ['/a', '/c', '/b'],
  ])(
    "leave each instance's connection tracking in place, and take its last words off once closed, in any order (%s, %s, %s)",
    async (...order) => {
      // '/d' stays open throughout; the other three begin to close one after the other, each
      // held by an event in its middleware, so that each one's last words stand in front of the
      // listeners the one before took the place of, then end in the order given.
      const prefixes = ['/d', '/a', '/b', '/c']
      const { server, apps } = await sharedServer(prefixes)
      const byPath = new Map(prefixes.map((path, i) => [path, apps[i]!]))
      const holds = new Map(prefixes.map((path) => [path, holding()]))
      const mount = async (path: string) => {
        const each = byPath.get(path)!
        await each.register(parley, { path })
        each.parley.on('connection', (socket) => {
          holds.get(path)!.onConnection(socket)
          socket.on('where', (ack: (path: string) => void) => ack(path))
        })
        await each.ready()
      }
      await mount('/d')
      const alone = listenerCounts(server)
      for (const path of ['/a', '/b', '/c']) await mount(path)
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const { port } = server.address() as { port: number }
      for (const path of ['/a', '/b', '/c']) {
        await connectTo(port, path, 'polling')
        clients.at(-1)!.emit('hold' as never)
        await until(() => holds.get(path)!.held === 1, 5000, `the event of ${path} to wait in the middleware`)
      }
      const closing = new Map<string, Promise<void>>()
      for (const path of ['/a', '/b', '/c']) {
        closing.set(path, byPath.get(path)!.close())
        // Its last words answer its endpoints now: a GET of its WebSocket endpoint without an
        // upgrade gets their coded 400, where Fastify would answer its bare 503.
        await probeUntil(port, path, '400 PARLEY_BAD_REQUEST')
      }
      const open = new Set(['/a', '/b', '/c'])
      // Each instance's connection tracking stays on the server, in front of which no takeover
      // stands: it sees every request, those another's last words answer too. One pair of
      // listeners stands for the takeovers, where the listeners they took off were.
      expect(listenerCounts(server)).toEqual(more(alone, open.size))
      for (const path of order) {
        holds.get(path)!.release()
        await within(closing.get(path)!, 5000, `${path} to close`)
        open.delete(path)
        expect(listenerCounts(server)).toEqual(more(alone, open.size))
        // Closed, its answers are gone; those of the others still closing stand.
        expect(await probe(port, path)).toBe('503 none')
        for (const other of open) expect(await probe(port, other)).toBe('400 PARLEY_BAD_REQUEST')
        for (const transport of TRANSPORTS) await connectTo(port, '/d', transport)
      }
      // Nothing of the three is left on the server: as many listeners as with '/d' alone.
      expect(listenerCounts(server)).toEqual(alone)
    },
  )

  it('let the last instance to close end the connections opened before it was registered', async () => {
    const { server, apps } = await sharedServer(['/a', '/b'])
    const [first, second] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    // Opened while the first instance is alone on the server, and never used: Node's close of
    // idle connections does not know it.
    const unused = connectSocket({ host: '127.0.0.1', port })
    unused.on('error', () => {})
    onTestFinished(() => void unused.destroy())
    await within(new Promise((resolve) => unused.once('connect', resolve)), 5000, 'the connection')
    await second.register(parley, { path: '/b' })
    second.parley.on('connection', (socket) => {
      socket.on('where', (ack: (path: string) => void) => ack('/b'))
    })
    await second.ready()
    await connectTo(port, '/b', 'polling')
    for (const client of clients.splice(0)) client.disconnect()
    for (const each of [first, second]) await within(closeApp(each), 5000, 'an instance to close')
    // The last one has ended it: the server's close waits for nothing.
    await within(new Promise((resolve) => server.close(resolve)), 5000, "the server's close")
  }, 25_000)

  it('let the last instance to close end a connection whose request began before it was registered', async () => {
    const { server, apps } = await sharedServer(['/a', '/b'])
    // Node ends no kept-alive connection at a close: left to its timeout, the server's close
    // would wait that long.
    server.keepAliveTimeout = 60_000
    const [first, second] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    const slow = gate()
    first.get('/a/slow', async () => {
      await slow.pass()
      return 'done'
    })
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const raw = connectSocket({ host: '127.0.0.1', port })
    const heard = heardOn(raw)
    onTestFinished(() => void raw.destroy())
    const ended = new Promise((resolve) => raw.once('close', resolve))
    // Under way while the first instance is alone on the server (pipelined: one waits behind it).
    raw.write('GET /a/slow HTTP/1.1\r\nHost: x\r\n\r\nGET /a/slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(slow.reached, 5000, 'the slow route')
    await second.register(parley, { path: '/b' })
    await second.ready()
    for (const each of [first, second]) await within(closeApp(each), 5000, 'an instance to close')
    slow.open()
    // Both answered, then the connection ended by the last instance, closed by now.
    await within(ended, 5000, 'the connection to end')
    expect(heard.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2)
    await within(new Promise((resolve) => server.close(resolve)), 5000, "the server's close")
  }, 30_000)

  it('serve the clients of an instance registered on the server after the last one closed', async () => {
    // One instance restarted on a server that stays up: the first is the last on it to close.
    // The server's requests go to the restarted one (the first one's prefix is none of theirs).
    const { server, apps } = await sharedServer(['/before', '/a'])
    const [first, restarted] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    await first.ready()
    const alone = listenerCounts(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await within(first.close(), 5000, 'the first instance to close')
    await restarted.register(parley, { path: '/a' })
    restarted.parley.on('connection', (socket) => {
      socket.on('where', (ack: (path: string) => void) => ack('/a'))
    })
    await restarted.ready()
    // Nothing of the closed one is left to refuse the connections that come now.
    expect(listenerCounts(server)).toEqual(alone)
    for (const transport of TRANSPORTS) await connectTo(port, '/a', transport)
    expect(restarted.parley.sockets.size).toBe(3)
  })

  it('keep alive the connections of an instance registered on the server while the last one closed', async () => {
    // Another path: at the closing one's, the new one would be its successor (see
    // restart-while-closing.test.ts); here, only the server's connections are at stake.
    const { port, hold, closing } = await restartedWhileClosing()
    hold.open()
    await within(closing, 5000, 'the first instance to close')
    // Two requests one after the other on one kept-alive connection: the second is answered too.
    const raw = connectSocket({ host: '127.0.0.1', port })
    const heard = heardOn(raw)
    onTestFinished(() => void raw.destroy())
    raw.write('GET /b/hello HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => heard.text.includes('\r\n\r\nhello') || heard.ended, 5000, 'the first answer')
    raw.write('GET /b/hello HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(
      () => (heard.text.match(/HTTP\/1\.1 200/g) ?? []).length === 2 || heard.ended,
      5000,
      'the second answer',
    )
    expect(heard.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2)
    raw.destroy()
  })

  it("serve an instance registered on the server while the last one's close is still under way", async () => {
    const { port, hold, closing } = await restartedWhileClosing()
    // A new connection, and two requests one after the other on it: the closing instance lets
    // them be, the restarted one's to serve and keep alive.
    const raw = connectSocket({ host: '127.0.0.1', port })
    const heard = heardOn(raw)
    onTestFinished(() => void raw.destroy())
    const answers = () => (heard.text.match(/HTTP\/1\.1 200/g) ?? []).length
    raw.write('GET /b/hello HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => answers() === 1 || heard.closed, 5000, 'the first answer')
    raw.write('GET /b/hello HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => answers() === 2 || heard.closed, 5000, 'the second answer')
    expect(answers()).toBe(2)
    hold.open()
    await within(closing, 5000, 'the first instance to close')
    raw.destroy()
  })

  it('answer a request pipelined behind one under way at the close, after the server outlived that close', async () => {
    const { server, apps } = await sharedServer(['/a', '/b'])
    const [first, restarted] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    const slow = gate()
    first.get('/a/slow', async () => {
      await slow.pass()
      return 'done'
    })
    const hold = gate()
    first.addHook('onClose', hold.pass)
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const raw = connectSocket({ host: '127.0.0.1', port })
    const heard = heardOn(raw)
    onTestFinished(() => void raw.destroy())
    raw.write('GET /a/slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(slow.reached, 5000, 'the slow route')
    const closing = first.close()
    onTestFinished(async () => {
      slow.open()
      hold.open()
      await closing
    })
    await until(hold.reached, 5000, 'the first instance to close')
    await restarted.register(parley, { path: '/b' })
    const later = gate()
    restarted.get('/b/later', async () => {
      await later.pass()
      return 'later'
    })
    await restarted.ready()
    onTestFinished(later.open)
    // Behind the slow answer, which the closing instance counted: the restarted one's to serve,
    // and to answer once the slow one is out.
    raw.write('GET /b/later HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(later.reached, 5000, 'the pipelined request')
    slow.open()
    const answers = () => (heard.text.match(/HTTP\/1\.1 200/g) ?? []).length
    await until(() => answers() === 1 || heard.closed, 5000, 'the slow answer')
    later.open()
    await until(() => answers() === 2 || heard.closed, 5000, 'the pipelined answer')
    expect(answers()).toBe(2)
    hold.open()
    await within(closing, 5000, 'the first instance to close')
  }, 35_000)

  it('refuse a second instance that mounts Parley at the same path, before it makes anything', async () => {
    const { apps } = await sharedServer(['/a', '/a'])
    const first = apps[0]!
    const second = apps[1]!
    await first.register(parley, { path: '/a' })
    await first.ready()
    const registry = new Registry()
    const err = await second
      .register(parley, { path: '/a', metrics: { registry } })
      .ready()
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(ParleyOptionError)
    expect(err).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
    expect((err as Error).message).toMatch(/another Fastify instance on the same HTTP server mounts Parley/)
    expect(await registry.getMetricsAsJSON()).toEqual([])
  })

  it('fail the boot of a second instance at the same path registered while the first had yet to boot', async () => {
    // A registration is refused only by an instance ready, or on its way to: one whose boot
    // failed may never say so (see restart-after-failed-boot.test.ts). The second one's boot
    // finds the first one ready since.
    const { server, apps } = await sharedServer(['/a', '/a'])
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const first = apps[0]!
    const second = apps[1]!
    await first.register(parley, { path: '/a' })
    await second.register(parley, { path: '/a' })
    await first.ready()
    const err = await second.ready().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ParleyOptionError)
    expect(err).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
    expect((err as Error).message).toMatch(/another Fastify instance on the same HTTP server mounts Parley/)
    // The first one keeps the path: its WebSocket upgrades are its own.
    const client = connect(`http://127.0.0.1:${(server.address() as { port: number }).port}/a`, {
      transports: ['websocket'],
      reconnection: false,
    })
    clients.push(client)
    await until(() => client.connected, 5000, 'a WebSocket client of the first instance to connect')
    expect(first.parley.sockets.size).toBe(1)
  })
})
