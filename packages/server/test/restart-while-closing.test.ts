// An instance restarted on a long-lived HTTP server (serverFactory) at the path of one still
// closing: the new one is accepted and takes the new clients, over every transport, while the old
// one's sessions end there with their own last words.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import parley, { type ServerSocket } from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { holding } from './held-events.js'
import { closeApp, until, within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { Closed, Refused, rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'
import { beginHeldClose, restartableServer, TRANSPORTS } from './restartable-server.js'
import { upgradeStatus } from './upgrade-status.js'

type Restartable = Awaited<ReturnType<typeof restartableServer>>

/**
 * What a resume was answered: its refusal (the error it failed with), or, when it opened a session
 * (closed at once), `a new session <sid>`.
 */
function answerToResume(resumed: ReturnType<typeof rawConnect>): Promise<unknown> {
  return within(
    resumed.then(
      (client) => {
        client.close()
        return `a new session ${client.sid}`
      },
      (err: unknown) => err,
    ),
    5000,
    'the answer to the resume',
  )
}

/**
 * An old instance on `shared`, closed while its application's answer to a GET on a kept-alive
 * connection is under way; `answer()` lets that answer out.
 */
async function closedUnderSlowAnswer(shared: Restartable) {
  let answer = () => {}
  const answered = new Promise<void>((resolve) => {
    answer = resolve
  })
  let heard = false
  const old = await shared.make('old', undefined, (app) =>
    app.get('/slow', async () => {
      heard = true
      await answered
      return 'slow'
    }),
  )
  shared.serve(old)
  const connection = await RawHttp.open(shared.port)
  onTestFinished(() => connection.destroy())
  connection.write(head('GET', '/slow'))
  await until(() => heard, 5000, 'the old instance to hear the request')
  await within(old.close(), 5000, 'the old instance to close')
  return { connection, answer }
}

/**
 * A restart on `server` whose registration of Parley at `/a` fails, a route of the application's
 * being where Parley's go; the instance is closed only when the test ends.
 */
async function failToRegister(server: Restartable['server']) {
  const failed = Fastify({ serverFactory: () => server })
  onTestFinished(async () => {
    await failed.close().catch(() => {})
  })
  failed.get('/a/poll', async () => 'mine')
  await expect(failed.register(parley, { path: '/a' }).ready()).rejects.toThrow()
}

describe('an instance restarted at the path of one still closing on the same HTTP server', () => {
  it.each([
    ['', true],
    // Fastify lets the requests through while it closes: nothing of the old one's own stands in
    // front of the new one's routes, which know nothing of the old sessions, but its last words.
    [', Fastify letting requests through while it closes', false],
  ])(
    "takes the new clients over every transport, while the old one's clients get its last words%s",
    async (_, return503OnClosing) => {
      const shared = await restartableServer(return503OnClosing)
      // An event of the old instance's client waits in its middleware: its close waits for it
      // (see "Events acknowledged before the shutdown"), and the new instance comes meanwhile.
      const hold = holding()
      const old = await shared.make('old', hold.onConnection)
      shared.serve(old)
      const olds = new Map<TransportName, Socket>()
      const reasons = new Map<TransportName, string>()
      for (const transport of TRANSPORTS) {
        const { client, where } = await shared.connect(transport)
        expect(where).toBe('old')
        olds.set(transport, client)
        client.on('disconnect', (reason: string) => reasons.set(transport, reason))
      }
      // The sids of the old instance's sessions, and the POSTs that name one from now on.
      const oldSids = new Set<string>()
      let posted = 0
      shared.server.on('request', (req: IncomingMessage) => {
        const sid = new URL(req.url ?? '/', 'http://x').searchParams.get('sid')
        if (sid === null) return
        if (!shared.restarted) oldSids.add(sid)
        else if (req.method === 'POST' && oldSids.has(sid)) posted++
      })
      const { closing } = await beginHeldClose(old, hold, olds.get('polling')!, 'the old instance')

      const restarted = await shared.make('new')
      shared.serve(restarted)
      for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('new')
      // An upgrade no mount point names is the new one's router's to answer, not the closing one's.
      expect(await upgradeStatus(`ws://127.0.0.1:${shared.port}/elsewhere/ws?v=1`)).toBe(404)
      // The old one's polling client sends meanwhile: its POST is the old instance's to hear.
      olds.get('polling')!.emit('late' as never)
      await until(() => posted >= 1, 5000, "the old instance's client to send")
      expect(old.parley.closed).toBe(false)

      hold.release()
      await within(closing, 5000, 'the old instance to close')
      // Each of the old one's clients heard its CLOSE: the old instance answered its own sessions'
      // requests until it closed, though the server hands the path's requests to the new one.
      await until(() => reasons.size === TRANSPORTS.length, 5000, "the old instance's clients to end")
      expect(Object.fromEntries(reasons)).toEqual({
        websocket: 'server shutdown',
        sse: 'server shutdown',
        polling: 'server shutdown',
      })
      // And the new one goes on taking clients once the old one has gone.
      for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('new')
      expect(restarted.parley.sockets.size).toBe(6)
    },
  )
})

/**
 * An old instance closing with an SSE and a polling client (the polling one's event holding its
 * close), and its successor serving the path; the sid of each of its sessions by transport, and
 * of each session of the successor's that sent a request since.
 */
async function closingWithSuccessor(return503OnClosing: boolean) {
  const shared = await restartableServer(return503OnClosing)
  const hold = holding()
  const old = await shared.make('old', hold.onConnection)
  shared.serve(old)
  const oldSids = new Map<TransportName, string>()
  const newSids = new Map<TransportName, string>()
  shared.server.on('request', (req: IncomingMessage) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const sid = url.searchParams.get('sid')
    const kind = ({ '/a/sse': 'sse', '/a/poll': 'polling' } as const)[url.pathname]
    if (sid === null || kind === undefined) return
    const sids = shared.restarted ? newSids : oldSids
    if (![...oldSids.values()].includes(sid)) sids.set(kind, sid)
  })
  const olds = new Map<TransportName, Socket>()
  for (const transport of ['sse', 'polling'] as const)
    olds.set(transport, (await shared.connect(transport)).client)
  const { closing } = await beginHeldClose(old, hold, olds.get('polling')!, 'the old instance')
  const restarted = await shared.make('new')
  shared.serve(restarted)
  return { shared, old, restarted, oldSids, newSids, closing, release: hold.release }
}

describe('a resume of a session the closing instance ended, while its successor serves the path', () => {
  it.each(['websocket', 'polling'] as const)(
    "gets that session's CLOSE from the successor, not a new session (over %s)",
    async (transport) => {
      const shared = await restartableServer(true)
      const hold = holding()
      let newest: ServerSocket | undefined
      const old = await shared.make('old', (socket) => {
        hold.onConnection(socket)
        newest = socket
      })
      shared.serve(old)
      const base = `http://127.0.0.1:${shared.port}/a`
      // Sent away by the application (a kicked user): its client is not to come back by itself.
      const kicked = await rawConnect('polling', base)
      onTestFinished(() => kicked.close())
      await until(() => newest !== undefined, 5000, 'the session to connect')
      newest!.disconnect()
      const { client } = await shared.connect('polling')
      await beginHeldClose(old, hold, client, 'the old instance')
      const restarted = await shared.make('new')
      shared.serve(restarted)
      // Its client resumes (its CLOSE lost with a cut): the resume reaches the successor.
      const answer = await answerToResume(rawConnect(transport, base, { sid: kicked.sid }))
      expect(answer instanceof Closed ? answer.packet.reason : answer).toBe('server disconnect')
      expect(restarted.parley.sockets.size).toBe(0)
    },
  )
})

describe('an instance closing while its successor serves the path', () => {
  it.each([true, false])(
    'answers a GET of one of its sessions on another transport itself (return503OnClosing: %s)',
    async (return503OnClosing) => {
      const { shared, old, oldSids } = await closingWithSuccessor(return503OnClosing)
      // The SSE session ended at the close (its stream had the CLOSE): a GET of it on the
      // polling endpoint, where nothing of it waits, as a client stepping down would send it.
      const sid = oldSids.get('sse')
      expect(sid).toBeDefined()
      const answer = await exchange(`http://127.0.0.1:${shared.port}/a/poll?v=1&sid=${sid}`, 'GET', {})
      // The old instance's "try again elsewhere", not the new one's "no such session".
      expect({ status: answer.status, code: answer.body.code }).toEqual({
        status: 503,
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
      })
      expect(old.parley.closed).toBe(false)
    },
  )

  it.each([true, false])(
    "leaves a goodbye sent on for a session of the successor's to the successor (return503OnClosing: %s)",
    async (return503OnClosing) => {
      const { shared, restarted, newSids } = await closingWithSuccessor(return503OnClosing)
      const ended = new Promise<string>((resolve) =>
        restarted.parley.on('connection', (socket) => socket.on('disconnect', resolve)),
      )
      await shared.connect('polling')
      await until(() => newSids.has('polling'), 5000, "the successor's client to poll")
      // Another node's goodbye for a session it found here (see GOODBYE_ON in routing.ts).
      const answer = await exchange(
        `http://127.0.0.1:${shared.port}/a/poll?v=1&sid=${newSids.get('polling')}`,
        'POST',
        { 'x-parley-routed': 'goodbye-on', 'content-type': 'text/plain' },
        '[1,"client disconnect",""]',
      )
      expect(answer.status).toBe(204)
      expect(await within(ended, 5000, "the successor's session to end")).toBe('client disconnect')
    },
  )
})

describe('a resume of a session the closing instance still holds, while its successor serves the path', () => {
  it.each(['websocket', 'polling'] as const)(
    "is that instance's to refuse, not a new session of the successor's (over %s)",
    async (transport) => {
      const { shared, old, restarted, oldSids } = await closingWithSuccessor(true)
      // The polling session is live, its event in the middleware: its client's resume (an upgrade
      // probe, say) reaches the successor, which takes the path's new WebSockets and handshakes.
      const sid = oldSids.get('polling')
      expect(sid).toBeDefined()
      expect(old.parley.sockets.size).toBeGreaterThan(0)
      const refused = await answerToResume(
        rawConnect(transport, `http://127.0.0.1:${shared.port}/a`, { sid }),
      )
      // The closing one's answer, as before the restart: the client keeps its session, whose
      // last words still come, and tries again later. A new session would leave them behind.
      expect(refused).toBeInstanceOf(Refused)
      expect((refused as Refused).code).toBe('PARLEY_SERVER_SHUTTING_DOWN')
      expect(restarted.parley.sockets.size).toBe(0)
    },
  )
})

describe('restarts one after another while the first still closes', () => {
  it("serve each new instance's clients and leave no listener once every instance has closed", async () => {
    const shared = await restartableServer(true)
    // Every event's listeners but Fastify's own `clientError`, one per instance made on the
    // server (a serverFactory's), which Fastify never takes off.
    const listening = () =>
      Object.fromEntries(
        shared.server
          .eventNames()
          .filter((name) => name !== 'clientError')
          .map((name) => [String(name), shared.server.listenerCount(name)]),
      )
    const before = listening()
    const hold = holding()
    const first = await shared.make('first', hold.onConnection)
    shared.serve(first)
    const held = await shared.connect('polling')
    const { closing: firstClosing } = await beginHeldClose(first, hold, held.client, 'the first instance')

    const second = await shared.make('second')
    shared.serve(second)
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('second')
    // The second closes whole while the first still closes.
    for (const socket of [...second.parley.sockets.values()]) socket.disconnect()
    const secondClosing = second.close()
    await until(() => second.parley.closing, 5000, 'the second instance to begin its close')

    // A third, restarted during the second's close, takes the path.
    const third = await shared.make('third')
    shared.serve(third)
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('third')
    await within(secondClosing, 5000, 'the second instance to close')
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('third')

    hold.release()
    await within(firstClosing, 5000, 'the first instance to close')
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('third')
    for (const client of shared.clients.splice(0)) client.disconnect()
    await closeApp(third)
    expect(listening()).toEqual(before)
  })
})

describe('a successor that begins to close while the instance before it still closes', () => {
  it.each([true, false])(
    "leaves the older one's sessions to it: a POST of one is its to hear (return503OnClosing: %s)",
    async (return503OnClosing) => {
      const shared = await restartableServer(return503OnClosing)
      const olds = holding()
      const old = await shared.make('old', olds.onConnection)
      shared.serve(old)
      const { client: polling } = await shared.connect('polling')
      let reason: string | undefined
      polling.on('disconnect', (why: string) => {
        reason = why
      })
      const sid = [...old.parley.sockets.values()][0]!.session.sid
      const { closing } = await beginHeldClose(old, olds, polling, 'the old instance')

      // Its successor, whose own client's event holds its close in turn.
      const news = holding()
      const restarted = await shared.make('new', news.onConnection)
      shared.serve(restarted)
      const { client } = await shared.connect('polling')
      const { closing: successorClosing } = await beginHeldClose(restarted, news, client, 'the successor')

      // The old one's polling client sends now: answered by the successor, which never held its
      // session, the POST would be refused, or fail its client's transport before the old one's
      // CLOSE.
      const answered: number[] = []
      shared.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const named = new URL(req.url ?? '/', 'http://x').searchParams.get('sid')
        if (req.method === 'POST' && named === sid) res.once('close', () => answered.push(res.statusCode))
      })
      polling.emit('late' as never)
      await until(() => answered.length >= 1, 5000, "the old instance's client's POST to be answered")
      expect(answered[0]).toBeLessThan(300)
      olds.release()
      await within(closing, 5000, 'the old instance to close')
      await until(() => reason !== undefined, 5000, "the old instance's client to end")
      expect(reason).toBe('server shutdown')
      news.release()
      await within(successorClosing, 5000, 'the successor to close')
    },
    25_000,
  )
})

describe('a restart whose registration fails while the old instance closes', () => {
  it("leaves the old one answering the path's new clients itself", async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection)
    shared.serve(old)
    const { client } = await shared.connect('polling')
    await beginHeldClose(old, olds, client, 'the old instance')
    // A route of the application's where Parley's go: its registration fails after it claimed
    // the path, and gives the path back.
    await failToRegister(shared.server)
    // The server's handler still gives the path to the old one: a new client there gets its
    // coded answer, not Fastify's bare 503.
    const answer = await exchange(
      `http://127.0.0.1:${shared.port}/a/poll?v=1`,
      'POST',
      { 'content-type': 'text/plain' },
      '[8,{}]',
    )
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
  })
})

describe('an instance restarted on the server once the old one has closed', () => {
  it("keeps open a kept-alive connection whose answer of the old one's was under way at its close", async () => {
    const shared = await restartableServer(true)
    // A request of the old instance's application, answered only once the new one serves.
    const { connection, answer } = await closedUnderSlowAnswer(shared)
    const restarted = await shared.make('new')
    shared.serve(restarted)
    answer()
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 200,
      connection: 'keep-alive',
    })
    // Kept alive, the connection is the new instance's to serve: a handshake on it is answered.
    connection.received = ''
    const hello = '[8,{}]'
    connection.write(
      head('POST', '/a/poll?v=1', { 'Content-Type': 'text/plain', 'Content-Length': String(hello.length) }) +
        hello,
    )
    const second = await connection.answer()
    expect(second.status).toBe(200)
    expect(restarted.parley.sockets.size).toBe(1)
    // And the new instance's close ends it, as any connection of its own.
    await closeApp(restarted)
    await within(connection.closed, 5000, 'the connection to end with the new instance')
  })
})

describe('a restart whose registration failed, never closed', () => {
  it('leaves the old one to end a kept-alive connection once its answer under way at its close is out', async () => {
    const shared = await restartableServer(true)
    // A request of the old instance's application, answered only once the restart has failed.
    const { connection, answer } = await closedUnderSlowAnswer(shared)
    // A route of the application's where Parley's go: the registration fails, and the
    // application never closes that instance (until the test ends).
    await failToRegister(shared.server)
    answer()
    const first = await connection.answer()
    expect(first.status).toBe(200)
    // No instance serves on the server: the connection goes with the old one's answer, not at
    // Node's keep-alive timeout.
    await within(connection.closed, 3000, 'the connection to end after the answer')
  })

  it('leaves the old one, closing, to end its idle kept-alive connections as the last on the server', async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection, (app) => app.get('/quick', async () => 'quick'))
    shared.serve(old)
    // An idle kept-alive connection of the old instance's.
    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    connection.write(head('GET', '/quick'))
    expect((await connection.answer()).status).toBe(200)
    const { client } = await shared.connect('polling')
    const { closing } = await beginHeldClose(old, olds, client, 'the old instance')
    await failToRegister(shared.server)
    olds.release()
    await within(closing, 5000, 'the old instance to close')
    await within(connection.closed, 3000, "the idle connection to end with the old instance's close")
  })
})
