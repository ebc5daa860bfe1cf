// A claim marker whose PUBLISH got no answer within requestTimeout may still run: Redis was
// stalled, not gone. Once it runs, it is the cut, and the old node seals the tail behind what it
// read before it. A claimer that joined the socket when it gave the marker up would take live
// what the tail holds too; it waits for the marker instead (within its bound, SEAL_WAIT_MS), and
// the session gets each broadcast once, in order.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import {
  argOf,
  handoffNodes,
  handoffScenes,
  message,
  reachesLive,
  takeOverOn,
  to,
  untilTailHolds,
  untilTailSealed,
  x1HeldFromClaimer,
} from './handoff-support.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover whose claim marker got no answer in time', () => {
  it('waits for the marker Redis runs late: the old node seals at the cut, and each broadcast reaches the session once', async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { redis, proxy, cluster } = await scene()
    // The claimer's wait never runs out by itself here: what ends it is the marker and the seal.
    const spy = vi.spyOn(sealWaits, 'start').mockImplementation(() => () => {})
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, {
        requestTimeout: 300,
        subscriberVia: proxy,
      })

      // a hands session `sid` off to b's claim; b's subscriber stops reading: c's x1 reaches
      // a's socket (into the tail), not b yet.
      const sid = 'sid-marker-late'
      const held = await x1HeldFromClaimer([a, b, c], proxy, sid)
      release = held.release
      const { claim } = held
      await untilTailHolds(cluster, a, 1, 'x1 in the tail')

      // Redis stalls with b's marker unanswered: b gives it up, and Redis runs it once it thaws.
      redis.freeze()
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(
        () => b.commands.some((args) => (args[2] ?? '').includes('"k":"claim"')),
        5000,
        'the marker sent',
      )
      // A broadcast of b's to no socket, sent behind the marker: given up, so is the marker.
      b.adapter.broadcast(message('news', ['probe']), to(['nobody']))
      await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'b gives up on Redis')
      redis.thaw()
      await until(() => a.sockets.claims.includes(sid), 5000, 'the marker at a')
      await untilTailSealed(cluster, a)
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')

      // Later ones reach the socket live.
      await reachesLive(c, 'x2', taken)
      await reachesLive(b, 'x3', taken)

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: false })
    } finally {
      redis.thaw()
      release?.()
      spy.mockRestore()
    }
  }, 25_000)
})
