// `app.parley.whenClosing()`: the moment a restart in place hands the server's requests to the
// new instance. It resolves once the instance's close reaches Parley, and settles whenever that
// close settles, even one that fails before it reaches Parley's preClose hook (a hook of the
// application's that throws, or that outlasts Fastify's bound on it): a restart that waits for it
// never waits longer than the old instance's close.

import { connect, type Socket } from '@parley/client'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { type Gate, gate } from './gate.js'
import { until, within } from './helpers.js'

/** What each test opened: its instance, its close (begun in the test), its client, its gate. */
let app: FastifyInstance | undefined
let closed: Promise<unknown> | undefined
let client: Socket | undefined
let held: Gate | undefined

afterEach(async () => {
  held?.open()
  client?.disconnect()
  if (app && !closed) closed = app.close()
  await closed?.catch(() => {})
  app = closed = client = held = undefined
})

/**
 * An instance with Parley at `/parley`, listening; `before` adds the application's hooks ahead
 * of Parley's registration, `after` behind it. A polling client connected to it.
 */
async function start(
  before: (instance: FastifyInstance) => void,
  after: (instance: FastifyInstance) => void = () => {},
  pluginTimeout?: number,
): Promise<FastifyInstance> {
  app = Fastify(pluginTimeout === undefined ? {} : { pluginTimeout })
  before(app)
  await app.register(parley, { path: '/parley' })
  after(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const connected = connect(`http://127.0.0.1:${port}/parley`, {
    transports: ['polling'],
    reconnection: false,
  })
  client = connected
  await within(
    new Promise<void>((resolve) => connected.once('connect', () => resolve())),
    5000,
    'the client to connect',
  )
  return app
}

/** Whether `promise` has settled, read once the turn's callbacks have run. */
function settled(promise: Promise<unknown>): () => boolean {
  let done = false
  promise.then(
    () => {
      done = true
    },
    () => {
      done = true
    },
  )
  return () => done
}

describe('app.parley.whenClosing()', () => {
  it("resolves once the close reaches Parley, before the close's later hooks are over", async () => {
    held = gate()
    const instance = await start(
      () => {},
      // Runs after Parley's own preClose hook: the close is held there, Parley's part done.
      (each) => each.addHook('preClose', () => (held as Gate).pass()),
    )
    const begun = settled(instance.parley.whenClosing())
    await new Promise((resolve) => setImmediate(resolve))
    expect(begun()).toBe(false)
    closed = instance.close()
    await until(() => (held as Gate).reached(), 5000, "the close to reach the hook after Parley's")
    await within(instance.parley.whenClosing(), 5000, 'whenClosing() to resolve')
    expect(begun()).toBe(true)
    expect(instance.parley.closing).toBe(true)
    expect(settled(closed)()).toBe(false)
    held.open()
    await within(closed, 5000, 'the close to end')
  })

  it("resolves when a preClose hook of the application's before Parley's throws", async () => {
    const instance = await start((each) =>
      each.addHook('preClose', async () => {
        throw new Error('a hook of the application failed')
      }),
    )
    const begun = instance.parley.whenClosing()
    closed = instance.close()
    await within(begun, 5000, 'whenClosing() to resolve')
    await expect(closed).rejects.toThrow('a hook of the application failed')
    // Fastify skipped Parley's preClose hook; its onClose hook ended the session all the same.
    expect(instance.parley.closed).toBe(true)
    expect(instance.parley.sockets.size).toBe(0)
  })

  it("stays pending while such a hook hangs, and resolves once Fastify's pluginTimeout gives up on it", async () => {
    held = gate()
    const instance = await start(
      (each) => each.addHook('preClose', () => (held as Gate).pass()),
      undefined,
      1000,
    )
    const begun = settled(instance.parley.whenClosing())
    closed = instance.close()
    const over = settled(closed)
    await until(() => (held as Gate).reached(), 5000, "the close to reach the application's hook")
    // Held before Parley's hook: its sessions are still live, the close has not reached it.
    expect(begun()).toBe(false)
    expect(instance.parley.closing).toBe(false)
    expect(instance.parley.sockets.size).toBe(1)
    // The hook is never let go (until the test ends): Fastify's bound ends the close.
    await within(instance.parley.whenClosing(), 5000, 'whenClosing() to resolve past pluginTimeout')
    await expect(closed).rejects.toMatchObject({ code: 'AVV_ERR_READY_TIMEOUT' })
    expect(over()).toBe(true)
    expect(instance.parley.closed).toBe(true)
  })

  it('resolves at once once the instance is closing or closed', async () => {
    const instance = await start(() => {})
    closed = instance.close()
    await closed
    await within(instance.parley.whenClosing(), 1000, 'whenClosing() on a closed instance')
  })
})
