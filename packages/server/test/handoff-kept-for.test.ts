// A session b claimed from a's drain for a resume whose middleware outlasts b's handshakeTimeout
// is taken over without its client, who is told to try again, and kept for that try no longer
// than what the claim says was left of the client's window (`SessionClaim.recoveryLeft`), counted
// from when the store answered the claim (`SessionClaim.answeredAt`), never past b's own window.
// What an adapter says is read as untrusted: a value that is no length of time keeps the session
// for b's whole window, as a claim that says nothing. How long b keeps it is read where b hands
// it on: b drains next, and stores the session for what is left of its client's window.
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { gate } from './gate.js'
import { handoffScene } from './handoff-scene.js'
import { startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const opened = handoffScene()

/** b's recovery window: far longer than any window a claim below says is left. */
const WINDOW = 60_000

/** What the claims below say is left of the client's window, when they say a length of time. */
const LEFT = 5000

/**
 * a's polling client, handed off by a's drain, resumes on b, whose middleware never settles
 * for it; each claim says what `says` sets. Resolves with the `ttl` b's own drain then stores
 * the session with: what b kept of the client's window, less the moments since.
 */
async function keptOnB(says: (cluster: Cluster) => void): Promise<number | undefined> {
  const cluster = new Cluster({ handoff: true })
  says(cluster)
  const never = gate()
  const a = await startServer({ adapter: cluster.adapter('a'), handoff: { timeout: 2000, retrySpread: 0 } })
  opened.nodes.push(a)
  const b = await startServer(
    {
      adapter: cluster.adapter('b'),
      handoff: { timeout: 400, retrySpread: 0 },
      handshakeTimeout: 300,
      recovery: { window: WINDOW },
    },
    (app) => {
      app.parley.use(async (socket: ServerSocket) => {
        if ((socket.handshake.auth as { hold?: boolean } | undefined)?.hold) await never.pass()
      })
    },
  )
  opened.nodes.push(b)
  const raws: RawClient[] = []
  try {
    const first = await rawConnect('polling', a.base)
    raws.push(first)
    void a.app.parley.drain()
    await until(() => cluster.handoffs.get(first.sid)?.stored === true, 5000, "a's handoff stored")
    // Answered at b's bound, and taken over there without its client.
    const resume = rawConnect('polling', b.base, { sid: first.sid, ack: 0, auth: { hold: true } })
    await expect(within(resume, 5000, 'the answer to the resume')).rejects.toMatchObject({
      code: 'PARLEY_HANDSHAKE_TIMEOUT',
    })
    expect(b.app.parley.sockets.get(first.id)?.transport).toBe(null)
    void b.app.parley.drain()
    const byB = () => cluster.handOffSids.filter((sid) => sid === first.sid).length === 2
    await until(byB, 5000, "b's drain to hand the session on")
    return cluster.handOffTtls.get(first.sid)
  } finally {
    for (const raw of raws) raw.close()
    never.open()
  }
}

describe('a session taken over without its client', () => {
  it('is kept no longer than what the claim says was left of its client’s window', async () => {
    const kept = await keptOnB((cluster) => {
      cluster.claimRecoveryLeft = LEFT
    })
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThanOrEqual(LEFT)
  })

  it('counts the time since the store answered the claim, not since the takeover began', async () => {
    // Answered 3 s before the claim reached the server: 2 s were left then.
    const kept = await keptOnB((cluster) => {
      cluster.claimRecoveryLeft = LEFT
      cluster.claimAnsweredAt = () => performance.now() - 3000
    })
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThanOrEqual(LEFT - 3000)
  })

  // A moment to come would keep the session past what was left; one that is no number, or none
  // since the process began, says nothing.
  it.each([
    ['a moment to come', () => performance.now() + 30_000],
    ['no number', () => 'just now'],
    ['a negative moment', () => -1],
  ])(
    'counts from the takeover’s start when the claim says it was answered at %s',
    async (_what, answeredAt) => {
      const kept = await keptOnB((cluster) => {
        cluster.claimRecoveryLeft = LEFT
        cluster.claimAnsweredAt = answeredAt
      })
      expect(kept).toBeGreaterThan(0)
      expect(kept).toBeLessThanOrEqual(LEFT)
    },
  )

  it.each([
    ['says nothing', undefined],
    ['says no number', '5000'],
    ['says a negative time', -1],
    ['says NaN', Number.NaN],
  ])('is kept for the whole window when the claim %s', async (_what, left) => {
    const kept = await keptOnB((cluster) => {
      cluster.claimRecoveryLeft = left
    })
    // The whole window, less the moments between the takeover and b's drain.
    expect(kept).toBeGreaterThan(WINDOW - 10_000)
    expect(kept).toBeLessThanOrEqual(WINDOW)
  })
})
