// Someone whose page vanished without a goodbye (the network gone, the tab killed) just before
// their node drains: the drain hands the session off, nobody claims it, and the node goes. The
// handoff's `disconnect` announces nothing (the person is usually moving to another node), so
// the people who stay must get the room's list once the drain is over, or they would see the
// vanished person listed until the room next changed.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium, skipBrowserSuites } from '../../../test/support/chromium.js'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { onFreePort } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { closeTabs } from '../../../test/support/tabs.js'
import { type ChatNode, startNode, stopNode } from './node-process.js'

// Every check runs, so that a required one fails even when another is missing too.
const skips = [skipBrowserSuites(), skipRedisSuites()]

// The drain's wait for claims: short, so that the test does not wait Parley's 5 s.
const HANDOFF_TIMEOUT = 1000

describe.skipIf(skips.some(Boolean))('the people list after a drain that nobody claimed, in Chromium', () => {
  let browser: Browser
  let redis: RedisServer
  let proxy: FaultProxy | undefined
  const nodes: ChatNode[] = []

  beforeAll(async () => {
    const built = promisify(execFile)(process.execPath, [
      fileURLToPath(new URL('../build.mjs', import.meta.url)),
    ])
    const launched = launchChromium()
    try {
      redis = await startRedis()
      // One after the other: the second's first heartbeat finds the first, which then hears of it.
      for (const name of ['node-1', 'node-2']) {
        nodes.push(
          await onFreePort((port) => startNode(name, port, redis.url, { handoffTimeout: HANDOFF_TIMEOUT })),
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
    await proxy?.close()
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')))
    await redis?.stop()
  })

  /** Opens the chat at `base` as `name`, in a context of its own, and waits until it is in. */
  async function join(base: string, name: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage()
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

  it('tells the people who stay that the vanished person is gone, once the drain is over', async () => {
    const [drained, staying] = nodes as [ChatNode, ChatNode]
    // Each page on its own node, without a balancer: ada's session stays where it is (a session
    // that moves gets its room's list from the node that takes it over, which would hide the
    // bug), and bob's is on the node that drains, behind a proxy that can take his network away.
    const ada = await join(`http://127.0.0.1:${staying.port}`, 'ada')
    proxy = await startFaultProxy(drained.port)
    const bob = await join(proxy.url, 'bob')
    await waitForPeople(ada, ['ada', 'bob'], 10_000)

    // Bob's network goes, then his browser: no goodbye reaches the node, whose session of his
    // waits for him through the recovery window (30 s), still listed.
    proxy.offline = true
    proxy.cut('all')
    await bob.context().close()

    // A deploy: the node drains, hands bob's session off, waits HANDOFF_TIMEOUT for a claim that
    // never comes, and exits.
    const code = await stopNode(drained, 'SIGTERM')
    expect(code, drained.errors()).toBe(0)
    expect(drained.output()).toContain('sessions were not claimed before the timeout')

    // Well within the recovery window: nothing but the list sent after the drain removes bob.
    await waitForPeople(ada, ['ada'], 5000)
    await closeTabs(ada)
  }, 60_000)
})
