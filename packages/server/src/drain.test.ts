import type { FastifyBaseLogger } from 'fastify'
import { describe, expect, it } from 'vitest'
import type { Adapter } from './adapter/adapter.js'
import type { SessionSnapshot } from './adapter/handoff.js'
import { Drain, handOffTtl } from './drain.js'
import { noMetrics } from './metrics.js'
import type { SessionState } from './session.js'
import type { ServerSocket } from './socket.js'

/**
 * A live session's socket as the drain sees it: it records its freeze and its handoff. Past
 * the old node's tail (not `restoring`), a session this node is taking over looks the same.
 */
function liveSocket(sid: string, events: string[], windowSpent = false) {
  // Its whole window: the drain's `ttl` below; or none left, its client away.
  const session = {
    sid,
    state: 'detached' as SessionState,
    restoring: false,
    recoveryLeft: () => (windowSpent ? 0 : 1000),
    endIfWindowSpent() {
      if (!windowSpent) return false
      events.push(`end ${sid}`)
      session.state = 'closed'
      return true
    },
  }
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

/**
 * A drain whose store records each snapshot in `events` (running `onStore` first), one other
 * node alive, and whose warnings are kept with their fields.
 */
function storingDrain(
  events: string[],
  timeout: number,
  arriving: (sid: string) => boolean,
  onStore: (sid: string) => void = () => {},
) {
  const warnings: { arriving?: number; msg: string }[] = []
  const adapter = {
    handOff: async (snapshot: SessionSnapshot) => {
      onStore(snapshot.sid)
      events.push(`store ${snapshot.sid}`)
      return true
    },
    otherNodes: () => 1,
  } as unknown as Adapter
  const drain = new Drain({
    adapter,
    options: { timeout, batchSize: 10, retrySpread: 0 },
    ttl: 1000,
    log: {
      info() {},
      warn(fields: { arriving?: number }, msg: string) {
        warnings.push({ ...fields, msg })
      },
    } as unknown as FastifyBaseLogger,
    shutdownRetryAfter: () => 0,
    metrics: noMetrics,
    withdraw: async () => {},
    arriving,
  })
  return { drain, warnings }
}

/**
 * A drain of node `own`'s sessions, beside one it is still taking over (`arriving`): its
 * takeover is over once the test calls `arrive()` (its session then live here, as any other).
 */
function drainBesideArrival(events: string[], onStore?: (sid: string) => void) {
  let arrive = () => {}
  const takeover = new Promise<void>((resolve) => {
    arrive = resolve
  })
  let underWay: Promise<void>[] = [takeover]
  void takeover.then(() => {
    underWay = []
  })
  const { drain, warnings } = storingDrain(
    events,
    200,
    (sid) => sid === 'arriving' && underWay.length > 0,
    onStore,
  )
  const sockets = [liveSocket('own', events), liveSocket('arriving', events)]
  const done = drain.run(
    () => sockets,
    () => underWay,
  )
  return { done, arrive, warnings }
}

describe('Drain', () => {
  it('hands on its own sessions when a takeover under way outlasts its share of the timeout, and warns of it', async () => {
    const events: string[] = []
    // The takeover never ends (a tail read against a store that does not answer): waited for
    // the whole timeout, it left the drain no time for the node's own session.
    const { done, warnings } = drainBesideArrival(events)
    await done
    expect(events).toEqual(['freeze own', 'store own', 'hand off own'])
    expect(warnings.filter((w) => w.arriving !== undefined)).toEqual([
      {
        arriving: 1,
        msg: 'parley: drain: claims or takeovers of sessions from other nodes were still under way when the drain stopped waiting for them; a session they take over here ends at close',
      },
    ])
  })

  it('hands on a session whose takeover ends after its own sessions were listed', async () => {
    const events: string[] = []
    // Over once the node's own session is on its way to the store: past the list.
    const drain = drainBesideArrival(events, (sid) => {
      if (sid === 'own') drain.arrive()
    })
    await drain.done
    expect(events).toEqual([
      'freeze own',
      'store own',
      'hand off own',
      'freeze arriving',
      'store arriving',
      'hand off arriving',
    ])
    // Nobody claims them here: their tails are sealed, which is warned of, but nothing arrives late.
    expect(drain.warnings.filter((w) => w.arriving !== undefined)).toEqual([])
  })

  it('hands on no session still being taken over here, its claim not yet confirmed', async () => {
    const events: string[] = []
    const { drain } = storingDrain(events, 50, (sid) => sid === 'arriving')
    await drain.run(() => [liveSocket('arriving', events), liveSocket('settled', events)])
    // Frozen and handed on now, a confirm that says 'kept' or 'ended' would drop it here while
    // its snapshot stays claimable elsewhere: it ends at close instead, as without handoff.
    expect(events).toEqual(['freeze settled', 'store settled', 'hand off settled'])
  })
})

describe('Drain: an away client whose window is spent', () => {
  it('ends its session as the window would, and neither freezes nor stores it', async () => {
    const events: string[] = []
    const { drain } = storingDrain(events, 50, () => false)
    await drain.run(() => [liveSocket('spent', events, true), liveSocket('live', events)])
    expect(events).toEqual(['end spent', 'freeze live', 'store live', 'hand off live'])
  })
})

describe('handOffTtl', () => {
  const left = (ms: number) => ({ recoveryLeft: () => ms })

  it('is the whole window for a connected client, and what is left of it for an away one', () => {
    expect(handOffTtl(left(60_000), 60_000)).toBe(60_000)
    expect(handOffTtl(left(1500), 60_000)).toBe(1500)
  })

  it('is never past the window, and 0 for a window spent (nothing to store)', () => {
    expect(handOffTtl(left(90_000), 60_000)).toBe(60_000)
    expect(handOffTtl(left(0), 60_000)).toBe(0)
    expect(handOffTtl(undefined, 60_000)).toBe(60_000)
  })
})
