import type { FastifyBaseLogger } from 'fastify'
import { describe, expect, it } from 'vitest'
import type { Adapter } from './adapter/adapter.js'
import type { SessionSnapshot } from './adapter/handoff.js'
import { Drain } from './drain.js'
import { noMetrics } from './metrics.js'
import type { SessionState } from './session.js'
import type { ServerSocket } from './socket.js'

/**
 * A live session's socket as the drain sees it: it records its freeze and its handoff. Past
 * the old node's tail (not `restoring`), a session this node is taking over looks the same.
 */
function liveSocket(sid: string, events: string[]) {
  const session = { sid, state: 'detached' as SessionState, restoring: false }
  return {
    session,
    freeze() {
      events.push(`freeze ${sid}`)
      session.state = 'frozen'
      return { sid } as SessionSnapshot
    },
    handOff() {
      events.push(`hand off ${sid}`)
    },
    claimed: () => [],
  } as unknown as ServerSocket
}

describe('Drain', () => {
  it('hands on no session still being taken over here, its claim not yet confirmed', async () => {
    const events: string[] = []
    const adapter = {
      handOff: async (snapshot: SessionSnapshot) => {
        events.push(`store ${snapshot.sid}`)
        return true
      },
      otherNodes: () => 1,
    } as unknown as Adapter
    const drain = new Drain({
      adapter,
      options: { timeout: 50, batchSize: 10, retrySpread: 0 },
      ttl: 1000,
      log: { info() {}, warn() {} } as unknown as FastifyBaseLogger,
      shutdownRetryAfter: () => 0,
      metrics: noMetrics,
      withdraw: async () => {},
      arriving: (sid) => sid === 'arriving',
    })
    await drain.run(() => [liveSocket('arriving', events), liveSocket('settled', events)])
    // Frozen and handed on now, a confirm that says 'kept' or 'ended' would drop it here while
    // its snapshot stays claimable elsewhere: it ends at close instead, as without handoff.
    expect(events).toEqual(['freeze settled', 'store settled', 'hand off settled'])
  })
})
