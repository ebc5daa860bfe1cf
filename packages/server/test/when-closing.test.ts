// `app.parley.whenClosing()`: the moment a restart in place hands the server's requests to the
// new instance. It resolves once the instance's close reaches Parley, and settles whenever that
// close settles, even one that fails before it reaches Parley's preClose hook (a hook of the
// application's that throws, or that outlasts Fastify's bound on it): a restart that waits for it
// never waits longer than the old instance's close.

import { describe, expect, it } from 'vitest'
import { gate } from './gate.js'
import { beginClose, heldCloseAfterEach, settled, startHeld } from './held-close.js'
import { until, within } from './helpers.js'

const opened = heldCloseAfterEach()

describe('app.parley.whenClosing()', () => {
  it("resolves once the close reaches Parley, before the close's later hooks are over", async () => {
    const held = gate()
    opened.held = held
    const { instance } = await startHeld(opened, {
      // Runs after Parley's own preClose hook: the close is held there, Parley's part done.
      after: (each) => each.addHook('preClose', () => held.pass()),
    })
    const begun = settled(instance.parley.whenClosing())
    await new Promise((resolve) => setImmediate(resolve))
    expect(begun()).toBe(false)
    const closed = beginClose(opened, instance)
    await until(() => held.reached(), 5000, "the close to reach the hook after Parley's")
    await within(instance.parley.whenClosing(), 5000, 'whenClosing() to resolve')
    expect(begun()).toBe(true)
    expect(instance.parley.closing).toBe(true)
    expect(settled(closed)()).toBe(false)
    held.open()
    await within(closed, 5000, 'the close to end')
  })

  it("resolves when a preClose hook of the application's before Parley's throws", async () => {
    const { instance } = await startHeld(opened, {
      before: (each) =>
        each.addHook('preClose', async () => {
          throw new Error('a hook of the application failed')
        }),
    })
    const begun = instance.parley.whenClosing()
    const closed = beginClose(opened, instance)
    await within(begun, 5000, 'whenClosing() to resolve')
    await expect(closed).rejects.toThrow('a hook of the application failed')
    // Fastify skipped Parley's preClose hook; its onClose hook ended the session all the same.
    expect(instance.parley.closed).toBe(true)
    expect(instance.parley.sockets.size).toBe(0)
  })

  it("stays pending while such a hook hangs, and resolves once Fastify's pluginTimeout gives up on it", async () => {
    const held = gate()
    opened.held = held
    const { instance } = await startHeld(opened, {
      before: (each) => each.addHook('preClose', () => held.pass()),
      pluginTimeout: 1000,
    })
    const begun = settled(instance.parley.whenClosing())
    const closed = beginClose(opened, instance)
    const over = settled(closed)
    await until(() => held.reached(), 5000, "the close to reach the application's hook")
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
    const { instance } = await startHeld(opened)
    const closed = beginClose(opened, instance)
    await closed
    await within(instance.parley.whenClosing(), 1000, 'whenClosing() on a closed instance')
  })
})
