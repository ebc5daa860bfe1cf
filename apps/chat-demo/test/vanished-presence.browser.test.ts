// Someone whose page vanished without a goodbye (the network gone, the tab killed) just before
// their node drains: the drain hands the session off, nobody claims it, and the node goes. The
// handoff's `disconnect` announces nothing (the person is usually moving to another node), so
// the people who stay must learn that the person is gone: after a drain that ran its course, a
// live node adopted the session, and it ends there when the person's recovery window does; after
// one cut short by a SIGKILL, where the draining node itself can tell nobody, they get the room's
// list once the node has left the cluster, or they would see the vanished person listed until the
// room next changed.
import type { Browser, Page } from 'playwright-core'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, openContext, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { onFreePort } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { type ChatNode, startNode, stopNode } from './node-process.js'
import { pageBuilt } from './page-build.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites()]

// The drain's wait for claims: short, so that the test does not wait Parley's 5 s.
const HANDOFF_TIMEOUT = 1000
// The drain that is killed half-way waits for claims as long as the demo lets it: it is still
// waiting when the kill comes, whatever the load.
const LONG_HANDOFF_TIMEOUT = 7000
// Every node's heartbeat: a killed node leaves the live set after three missed ones and the others
// see it at their next, so within 2 s rather than the 8 s of the adapter's default 2000.
const HEARTBEAT_INTERVAL = 500
// How long the session of someone whose page vanished stays, listed, on the nodes that stay: the
// shortest the demo takes, so that the first scene does not wait the demo's 30 s for it to end.
const RECOVERY_WINDOW = 7000

describe.skipIf(skips.some(Boolean))('the people list after a drain that nobody claimed, in Chromium', () => {
  let browser: Browser
  let redis: RedisServer
  const proxies: FaultProxy[] = []
  const nodes: ChatNode[] = []

  beforeAll(async () => {
    const built = pageBuilt()
    const launched = launchChromium()
    try {
      redis = await startRedis()
      // One after the other: the second's first heartbeat finds the first, which then hears of it.
      for (const name of ['node-1', 'node-2']) {
        nodes.push(
          await onFreePort((port) =>
            startNode(name, port, redis.url, {
              handoffTimeout: HANDOFF_TIMEOUT,
              heartbeatInterval: HEARTBEAT_INTERVAL,
              recoveryWindow: RECOVERY_WINDOW,
            }),
          ),
        )
      }
    } finally {
      // Held before anything can fail, so that afterAll closes it.
      browser = await launched
      await built
    }
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    for (const proxy of proxies) await proxy.close()
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')))
    await redis?.stop()
  })

  /** Opens the chat at `base` as `name`, in a context of its own, and waits until it is in. */
  async function join(base: string, name: string): Promise<Page> {
    const page = await (await openContext(browser)).newPage()
    await page.goto(`${base}/?transports=polling`)
    await page.fill('#nickname', name)
    await page.click('#join button')
    await page.waitForFunction(() => document.querySelectorAll('#people li').length > 0, null, {
      timeout: 10_000,
    })
    return page
  }

  const listed = (page: Page) =>
    page.$$eval('#people li', (items) => items.map((i) => i.textContent ?? '').sort())

  /** Waits until `page` lists exactly `names`; on timeout, says what it listed instead. */
  async function waitForPeople(page: Page, names: string[], ms: number): Promise<void> {
    try {
      await page.waitForFunction(
        (names) =>
          Array.from(document.querySelectorAll('#people li'), (li) => li.textContent ?? '')
            .sort()
            .join(',') === names.join(','),
        names,
        { timeout: ms },
      )
    } catch (error) {
      throw new Error(`the page never listed ${names.join(', ')} (it listed ${await listed(page)})`, {
        cause: error,
      })
    }
  }

  it('tells the people who stay that the vanished person is gone, once the session adopted for them ends', async () => {
    const [drained, staying] = nodes as [ChatNode, ChatNode]
    // Each page on its own node, without a balancer: ada's session stays where it is (a session
    // that moves gets its room's list from the node that takes it over, which would hide the
    // bug), and bob's is on the node that drains, behind a proxy that can take his network away.
    const ada = await join(`http://127.0.0.1:${staying.port}`, 'ada')
    const proxy = await startFaultProxy(drained.port)
    proxies.push(proxy)
    const bob = await join(proxy.url, 'bob')
    await waitForPeople(ada, ['ada', 'bob'], 10_000)

    // Bob's network goes, then his browser: no goodbye reaches the node, whose session of his
    // waits for him through the recovery window (RECOVERY_WINDOW), still listed.
    proxy.offline = true
    proxy.cut('all')
    await bob.context().close()

    // A deploy: the node drains, hands bob's session off, waits HANDOFF_TIMEOUT for a claim that
    // never comes, and exits. The node that stays adopted the session at the end of that wait:
    // it keeps it for bob through what is left of his recovery window (RECOVERY_WINDOW from when
    // his page vanished), as his own node would have without the deploy, and he is listed
    // meanwhile.
    const code = await stopNode(drained, 'SIGTERM')
    expect(code, drained.errors()).toBe(0)
    expect(drained.output()).not.toContain('sessions were not claimed before the timeout')
    expect(await listed(ada)).toEqual(['ada', 'bob'])

    // His window ends: the session ends on the node that stays, which tells the room.
    await waitForPeople(ada, ['ada'], RECOVERY_WINDOW + 10_000)
    await closeTabs(ada)
  }, 60_000)

  it('tells them too when the draining node is killed before its drain is over', async () => {
    const staying = nodes[1] as ChatNode
    const killed = await onFreePort((port) =>
      startNode('node-3', port, redis.url, {
        handoffTimeout: LONG_HANDOFF_TIMEOUT,
        heartbeatInterval: HEARTBEAT_INTERVAL,
      }),
    )
    nodes.push(killed)
    const cy = await join(`http://127.0.0.1:${staying.port}`, 'cy')
    const proxy = await startFaultProxy(killed.port)
    proxies.push(proxy)
    const dee = await join(proxy.url, 'dee')
    await waitForPeople(cy, ['cy', 'dee'], 10_000)

    proxy.offline = true
    proxy.cut('all')
    await dee.context().close()

    // The deploy begins, and the node dies once it has handed dee's session off (a new handoff
    // record in Redis), while it waits for a claim that never comes: no list after its drain, no
    // adoption, no goodbye.
    const redisClient = createClient({ url: redis.url })
    await redisClient.connect()
    const handoffs = () => redisClient.keys('parley:handoff:*')
    const before = new Set(await handoffs())
    const exited = stopNode(killed, 'SIGTERM')
    try {
      const end = performance.now() + 10_000
      while ((await handoffs()).every((key) => before.has(key))) {
        if (performance.now() > end)
          throw new Error(`node-3 stored no handoff within 10 s: ${killed.errors()}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    } finally {
      await redisClient.close()
    }
    killed.child.kill('SIGKILL')
    await exited
    expect(killed.child.signalCode, killed.errors()).toBe('SIGKILL')
    expect(killed.output()).not.toContain('sessions were not claimed before the timeout')

    // The node leaves the live set once three heartbeats lapsed (1.5 s, noticed within 2 s): the
    // node that stays then tells cy's room who is there. Dee's recovery window (30 s) is far off.
    await waitForPeople(cy, ['cy'], 20_000)
    await closeTabs(cy)
  }, 60_000)
})
