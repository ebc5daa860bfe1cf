// A drain settles a session nobody claimed before its seal (settleHandOff): it waits, up to its
// bound, for an own broadcast given up that Redis may still run. The adapter's close ends that
// wait: nothing it waits for reaches the tail once closed, and the drain's seal would otherwise
// hold the application's close up to the bound, its timer left running after it.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { within } from '../../server/test/helpers.js'
import { fakeClusterSuite, handedOffSession } from './handoff-support.js'
import { givenUpNeverRun } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('the settle before an unclaimed seal, at close', () => {
  const suite = fakeClusterSuite()
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('ends when the adapter closes, before its bound, its timer cleared', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const sid = 'sid-settle-close'
    await handedOffSession(a!, sid)
    // Never run, and every probe that could prove it lost: only the bound, or the close, ends
    // the settle's wait for it.
    await givenUpNeverRun(a!)

    const bound = 60_000
    const timeouts = vi.spyOn(globalThis, 'setTimeout')
    const cleared = vi.spyOn(globalThis, 'clearTimeout')
    let settled = false
    const settling = a!.adapter.settleHandOff(sid, bound).then(() => {
      settled = true
    })
    const timerAt = timeouts.mock.calls.findIndex(([, ms]) => ms === bound)
    expect(timerAt).not.toBe(-1)
    const timer = timeouts.mock.results[timerAt]?.value as unknown
    // Still waiting a turn later: nothing but the bound or the close ends it here.
    await new Promise((resolve) => setImmediate(resolve))
    expect(settled).toBe(false)

    const left = await unheard(async () => {
      const began = performance.now()
      await within(a!.adapter.close(), 10_000, "a's close")
      await within(settling, 10_000, 'the settle')
      // Far below the bound (a wide margin: this is no speed target).
      expect(performance.now() - began).toBeLessThan(bound / 2)
    })
    expect(left).toEqual([])
    expect(cleared.mock.calls.some(([handle]) => handle === timer)).toBe(true)
  })
})
