// A preClose hook the application adds ahead of Parley's registration runs first at
// `app.close()` (Fastify runs them in the order they were added). For as long as it runs, the
// endpoints still get Parley's answers, not Fastify's bare 503: a live session's requests are
// served as on the route (its events taken and acknowledged, its client's goodbye heard), a new
// handshake gets the coded 503 with the endpoints' CORS headers. Parley's own part of the close
// (its drain, the sessions' end, `whenClosing()`) still waits for its turn, with or without a
// bound on the hooks (`pluginTimeout`).

import { connect } from '@parley/client'
import parley from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { type Gate, gate } from './gate.js'
import { beginClose, heldCloseAfterEach, settled, startHeld } from './held-close.js'
import { until, within } from './helpers.js'

const PAGE = 'http://page.test'

const opened = heldCloseAfterEach()

/**
 * An instance whose application adds a preClose hook held at `hold` before it registers Parley,
 * listening, with a polling client connected; `ended` gets each session's reason as it ends.
 */
function start(hold: Gate, ended: string[], pluginTimeout?: number) {
  return startHeld(opened, {
    before: (instance) => instance.addHook('preClose', () => hold.pass()),
    options: { allowedOrigins: [PAGE] },
    after: (instance) =>
      instance.parley.on('connection', (socket) => {
        socket.on('note', (value: unknown, ack?: (reply: unknown) => void) => ack?.(value))
        socket.on('disconnect', (reason) => ended.push(reason))
      }),
    pluginTimeout,
  })
}

describe.each([
  ['with Fastify’s bound on each hook', undefined],
  ['with pluginTimeout: 0 (no bound)', 0],
] as const)("a preClose hook of the application's ahead of Parley's, held (%s)", (_name, pluginTimeout) => {
  it("leaves the endpoints Parley's answers while it runs, then the close goes on", async () => {
    const hold = gate()
    opened.held = hold
    const ended: string[] = []
    const { instance, base, client: connected } = await start(hold, ended, pluginTimeout)
    const begun = settled(instance.parley.whenClosing())
    const closed = beginClose(opened, instance)
    const over = settled(closed)
    await until(() => hold.reached(), 5000, "the close to reach the application's hook")

    // The live session is served as on the route: its event taken, handled, acknowledged.
    expect(await within(connected.emitWithAck('note', 7), 5000, 'the reply to an event')).toBe(7)
    // A new session is refused with Parley's code and the page's CORS headers, which a page on
    // another origin can read: not Fastify's bare 503.
    const refused = await fetch(`${base}/poll?v=1`, {
      method: 'POST',
      headers: { Origin: PAGE },
      body: '[8,{}]',
    })
    expect(refused.status).toBe(503)
    expect(refused.headers.get('access-control-allow-origin')).toBe(PAGE)
    expect(await refused.json()).toEqual({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message: 'the server is shutting down',
    })
    // Parley's own part of the close has not begun: it waits for the hook, however long.
    expect(begun()).toBe(false)
    expect(instance.parley.closing).toBe(false)
    // The client's goodbye is heard: its session ends as its client said, not at the close.
    connected.disconnect()
    await until(() => ended.length > 0, 5000, 'the session to end')
    expect(ended).toEqual(['client disconnect'])

    expect(over()).toBe(false)
    hold.open()
    await within(instance.parley.whenClosing(), 5000, 'whenClosing() once the hook is over')
    await within(closed, 5000, 'the close to end')
    expect(instance.parley.closed).toBe(true)
  }, 30_000)
})

describe("a preClose hook of the application's ahead of Parley's that throws, Parley's skipped", () => {
  it('ends the sessions served meanwhile with the close, which does not wait for their polls and streams', async () => {
    const hold = gate()
    opened.held = hold
    const ended: string[] = []
    const instance = Fastify()
    opened.app = instance
    instance.addHook('preClose', async () => {
      await hold.pass()
      throw new Error('the hook failed')
    })
    await instance.register(parley, { path: '/parley' })
    instance.parley.on('connection', (socket) => {
      socket.on('note', (value: unknown, ack?: (reply: unknown) => void) => ack?.(value))
      socket.on('disconnect', (reason) => ended.push(reason))
    })
    await instance.listen({ port: 0, host: '127.0.0.1' })
    const base = `http://127.0.0.1:${(instance.server.address() as { port: number }).port}/parley`
    /** A client on `transport`, connected; `heard` gets the reason its session ended with. */
    const connected = async (transport: 'sse' | 'polling', heard: string[]) => {
      const each = connect(base, { transports: [transport], reconnection: false })
      each.on('disconnect', (reason) => heard.push(reason))
      await within(
        new Promise<void>((resolve) => each.once('connect', () => resolve())),
        5000,
        `the ${transport} client to connect`,
      )
      return each
    }
    const heard: string[] = []
    const streaming = await connected('sse', heard)
    const polling = await connected('polling', heard)
    const closed = beginClose(opened, instance)
    await until(() => hold.reached(), 5000, "the close to reach the application's hook")
    // Served meanwhile: the polling client's next poll, held as on the route.
    expect(await within(polling.emitWithAck('note', 1), 5000, 'the reply to an event')).toBe(1)
    expect(await within(streaming.emitWithAck('note', 2), 5000, 'the reply to an event')).toBe(2)

    hold.open()
    const outcome = closed.then(
      () => 'closed',
      (err: Error) => err.message,
    )
    expect(await within(outcome, 5000, 'the close to end')).toBe('the hook failed')
    expect(ended).toEqual(['server shutdown', 'server shutdown'])
    await until(() => heard.length === 2, 5000, 'both clients to hear the end of their session')
    expect(heard).toEqual(['server shutdown', 'server shutdown'])
  }, 30_000)
})
