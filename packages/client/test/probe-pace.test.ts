// upgradeDelay 0 probes at once, but a probe that keeps failing must not be tried again the
// moment it fails: the wait doubles from a floor (UPGRADE_FLOOR_MS) after the first failure.
import { expect, it } from 'vitest'
import { client, next, proxiedServers, until } from './helpers.js'

const proxied = proxiedServers()

it('backs off between failed upgrade probes with upgradeDelay 0', async () => {
  const { proxy } = await proxied()
  // Every upgrade refused with 400: each probe fails at once.
  proxy.ws = 'reject'
  const socket = client(proxy.url, { upgradeDelay: 0 })
  await next(socket, 'connect')
  expect(socket.transport).toBe('sse')
  // The connect attempt's upgrade, then the first probe, at once (upgradeDelay 0).
  await until(() => proxy.upgrades >= 2, 2000, 'the first probe')
  // Then 1 s, 2 s, 4 s... between probes: within this second and a half, one more at most.
  // Without the floor, every probe followed the one before the moment it failed: hundreds here.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  expect(proxy.upgrades).toBeLessThanOrEqual(3)
  expect(socket.transport).toBe('sse')
})

it('backs off between failed upgrade probes with upgradeDelayMax 0', async () => {
  const { proxy } = await proxied()
  proxy.ws = 'reject'
  const socket = client(proxy.url, { upgradeDelay: 0, upgradeDelayMax: 0 })
  await next(socket, 'connect')
  expect(socket.transport).toBe('sse')
  await until(() => proxy.upgrades >= 2, 2000, 'the first probe')
  const before = proxy.upgrades
  // The cap is raised to its floor (WAIT_FLOOR_MS, 100 ms): some fifteen probes in this second
  // and a half at most. With a cap of 0, each probe followed the one before the moment it
  // failed: hundreds here.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  expect(proxy.upgrades - before).toBeLessThanOrEqual(20)
  expect(socket.transport).toBe('sse')
})
