// A node whose commands reach Redis while its subscriber does not (down, or back and not
// subscribed again yet) claims no session: it would hear neither its claim marker nor the old
// node's seal, nor the broadcasts after the cut, which its old node stops delivering at the
// marker. Nor does it ask a live node to hand one off: it could not hear the answer, nor claim
// what that node stored. Once its subscriber is back, it claims as ever. With a real Redis.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { allLive, deafen, deafenable } from './deaf-subscriber.js'
import { published } from './ghost-node.js'
import { handOff, open, takeOver } from './handoff-steps.js'
import { handoffScenes } from './handoff-support.js'

const scene = handoffScenes()

const DEAF_CLAIM =
  "@parley/redis: a resume of a session this node does not hold came while this node's subscriber is not subscribed; the client tries again"

describe.skipIf(skipRedisSuites())('a claim at a node whose subscriber is away', () => {
  it('is tried again, and wins once the subscriber is back', async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'b', 5000)
    await allLive([a, b])
    const socket = await open(a, 'sid-1', 's1', ['room'])
    expect(await handOff(a, socket, 'sid-1')).toBe(true)

    await deafen(b, proxy)
    expect(await b.adapter.claimSession('sid-1')).toBe('retry')
    expect(b.warnings).toContain(DEAF_CLAIM)
    // Nor is a live node asked for a session: the request would go out, its answer unheard.
    expect(await b.adapter.requestHandOff(a.adapter.node, 'sid-2')).toBe(false)
    expect(published(b, `${cluster.prefix}:request`)).toEqual([])

    proxy.offline = false
    await until(() => b.warnings.some((w) => w.includes('is up again')), 10_000, "b's subscriber back")
    // Nothing was claimed: the handoff is whole, and b takes it over with a's seal.
    const { done } = takeOver(b, await b.adapter.claimSession('sid-1'))
    expect(await within(done, 5000, 'the takeover')).toMatchObject({ complete: true })
  }, 25_000)
})
