// The `handoff` option: what it accepts, what turns the drain off, how it must fit in Fastify's
// pluginTimeout, a drain whose store never answers, and the hint a session gets when its state
// could not be stored.
import { connect, type Socket } from '@parley/client'
import { PacketType } from '@parley/protocol'
import parley, { ParleyOptionError, type ParleyServerOptions } from '@parley/server'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, registrationError, type Started, sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

let started: Started[] = []
const clients: Socket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  await sleep(50)
  await Promise.all(started.map((s) => closeApp(s.app)))
  started = []
})

describe('the handoff option', () => {
  it.each([
    ['a string', { handoff: 'yes' }],
    ['true', { handoff: true }],
    ['a zero timeout', { handoff: { timeout: 0 } }],
    ['a fractional batch size', { handoff: { batchSize: 1.5 } }],
    ['a negative spread', { handoff: { retrySpread: -1 } }],
    ['an unknown key', { handoff: { timeOut: 1000 } }],
    ['a key every object inherits', { handoff: { constructor: 1000 } }],
    ['a bad value with recovery off', { recovery: false, handoff: { timeout: -1 } }],
  ])('refuses %s', async (_what, options) => {
    const err = await registrationError(options)
    expect(err).toBeInstanceOf(ParleyOptionError)
    expect((err as ParleyOptionError).option).toMatch(/^handoff/)
  })

  it('resolves the defaults, and nothing when recovery is off', async () => {
    const app = Fastify()
    await app.register(parley, { handoff: { timeout: 3000 } })
    await app.ready()
    expect(app.parley.options.handoff).toEqual({ timeout: 3000, batchSize: 500, retrySpread: 1000 })
    await app.close()
    const off = Fastify()
    await off.register(parley, { recovery: false, handoff: { timeout: 3000 } })
    await off.ready()
    expect(off.parley.options.handoff).toBe(false)
    await off.close()
  })

  it('refuses a handoff timeout that does not fit in pluginTimeout, with an adapter that drains', async () => {
    const cluster = new Cluster({ handoff: true })
    const err = await registrationError(
      { adapter: cluster.adapter('a'), handoff: { timeout: 2000 } },
      { pluginTimeout: 3000 },
    )
    expect(err).toBeInstanceOf(ParleyOptionError)
    expect(String((err as Error).message)).toMatch(
      /pluginTimeout \(3000 ms\).*raise pluginTimeout or lower handoff.timeout/,
    )
    // It fits with a shorter timeout, or when the adapter cannot store sessions (no drain).
    expect(
      await registrationError(
        { adapter: cluster.adapter('b'), handoff: { timeout: 500 } },
        { pluginTimeout: 3000 },
      ),
    ).toBe(undefined)
    expect(await registrationError({}, { pluginTimeout: 3000 })).toBe(undefined)
    expect(await registrationError({ adapter: new Cluster().adapter('c') }, { pluginTimeout: 3000 })).toBe(
      undefined,
    )
  })
})

describe('a close without handoff', () => {
  async function endedBy(options: ParleyServerOptions, cluster = new Cluster({ handoff: true })) {
    const node = await startServer({ adapter: cluster.adapter('a'), ...options })
    started.push(node)
    const c = connect(node.base, { transports: ['websocket'] })
    clients.push(c)
    const reasons: string[] = []
    c.on('disconnect', (reason: string) => reasons.push(reason))
    await until(() => c.connected, 3000, 'connect')
    await node.app.close()
    started = []
    await until(() => reasons.length > 0, 3000, 'disconnect')
    return { reasons, cluster }
  }

  it("ends sessions with 'server shutdown' with handoff: false", async () => {
    const { reasons, cluster } = await endedBy({ handoff: false })
    expect(reasons).toEqual(['server shutdown'])
    expect(cluster.handoffs.size).toBe(0)
  })

  it("ends sessions with 'server shutdown' with recovery off", async () => {
    const { reasons, cluster } = await endedBy({ recovery: false })
    expect(reasons).toEqual(['server shutdown'])
    expect(cluster.handoffs.size).toBe(0)
  })

  it("ends sessions with 'server shutdown' when the store never answers, within the timeout", async () => {
    const cluster = new Cluster({ handoff: true })
    const factory = cluster.adapter('a')
    const { reasons } = await endedBy(
      {
        adapter: (sockets) => {
          const adapter = factory(sockets)
          adapter.handOff = () => new Promise<boolean>(() => {})
          return adapter
        },
        handoff: { timeout: 300 },
      },
      cluster,
    )
    expect(reasons).toEqual(['server shutdown'])
  })

  it("tells a session its state could not be stored for the shutdown option's retryAfter", async () => {
    const cluster = new Cluster({ handoff: true })
    const factory = cluster.adapter('a')
    const node = await startServer({
      adapter: (sockets) => {
        const adapter = factory(sockets)
        adapter.handOff = () => Promise.resolve(false)
        return adapter
      },
      shutdown: { retryAfter: 4321, retrySpread: 0 },
    })
    started.push(node)
    const c = await rawConnect('websocket', node.base)
    const closing = node.app.close()
    started = []
    const close = await c.next((p) => p.type === PacketType.CLOSE)
    await closing
    c.close()
    expect(close).toMatchObject({ reason: 'server shutdown', retryAfter: 4321 })
    expect(cluster.handoffs.size).toBe(0)
  })
})
