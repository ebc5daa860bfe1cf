// Several claims in one script call (`claimSessions`, what a node asked to adopt a drain's
// sessions uses): each session's answer is what its claim alone (`claimSession`) gives, whatever
// the others of the call find, and each claim won is taken over as any other. Real adapters over
// fake sockets on a real Redis (see handoff-support.ts).
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { handOff, open, owned, TTL, takeOver } from './handoff-steps.js'
import { fakeClusterSuite, snapshotOf, won } from './handoff-support.js'

/** A claim's script as Redis gets it: each claim bumps its session's epoch by one (see CLAIM). */
const isClaim = (args: string[]) => args[0] === 'EVAL' && args[1]?.includes("'epoch', 1)") === true

describe.skipIf(skipRedisSuites())('claims made together (claimSessions)', () => {
  const suite = fakeClusterSuite()

  it('answers each session as its own claim would, in one script call', async () => {
    const cluster = suite.cluster()
    const [a, b, c] = await cluster.start(3)
    const tenant = { tenant: 'acme' }
    for (const [sid, id] of [
      ['sid-open', 's1'],
      ['sid-sealed', 's2'],
      ['sid-tenant', 's3'],
      ['sid-taken', 's4'],
      ['sid-kept', 's5'],
    ] as const) {
      const socket = await open(a!, sid, id)
      const snapshot = { ...snapshotOf(sid, id), ...(sid === 'sid-tenant' && { params: tenant }) }
      expect(await handOff(a!, socket, sid, [], TTL, snapshot)).toBe(true)
    }
    // Sealed: its drain ended with it unclaimed.
    await a!.adapter.sealHandOff('sid-sealed', [])
    // Claimed by c first, whose takeover is under way.
    const first = won(await c!.adapter.claimSession('sid-taken', {}))
    // Read back by c already (its takeover over): nothing stored, its record names c.
    await takeOver(c!, await c!.adapter.claimSession('sid-kept', {})).done
    const before = b!.commands.length
    const answers = await b!.adapter.claimSessions([
      { sid: 'sid-open', params: {} },
      { sid: 'sid-sealed', params: {} },
      { sid: 'sid-tenant', params: { tenant: 'globex' } },
      { sid: 'sid-taken', params: {} },
      { sid: 'sid-none', params: {} },
      { sid: 'sid-kept', params: {} },
    ])
    // One command for the six claims.
    expect(b!.commands.slice(before).filter(isClaim)).toHaveLength(1)
    expect(answers).toHaveLength(6)
    const [open1, sealed, other, taken, none, kept] = answers
    expect(won(open1).snapshot).toEqual(snapshotOf('sid-open', 's1'))
    expect(won(open1).recoveryLeft).toBeGreaterThan(0)
    expect(won(open1).recoveryLeft).toBeLessThanOrEqual(TTL)
    expect(won(sealed).snapshot).toEqual(snapshotOf('sid-sealed', 's2'))
    expect(other).toEqual({ missed: 'params' })
    expect(taken).toBe('elsewhere')
    expect(none).toBeNull()
    expect(kept).toEqual(owned(c!))
    // The same, claimed alone, for those it left as they were.
    expect(await b!.adapter.claimSession('sid-tenant', { tenant: 'globex' })).toEqual({ missed: 'params' })
    expect(await b!.adapter.claimSession('sid-taken', {})).toBe('elsewhere')
    expect(await b!.adapter.claimSession('sid-none', {})).toBeNull()
    // Each claim won is taken over as any other: the open one sealed by its old node at the
    // marker, whole; the sealed one as sealed before its claim (late).
    expect(await takeOver(b!, open1).done).toMatchObject({ complete: true, late: false })
    expect(await takeOver(b!, sealed).done).toMatchObject({ complete: true, late: true })
    // And what they won stays won: claimed again, by either, nothing to take.
    expect(await c!.adapter.claimSession('sid-open', {})).toEqual(owned(b!))
    // The tenant's own client still claims its session.
    expect(won(await c!.adapter.claimSession('sid-tenant', tenant)).snapshot.sid).toBe('sid-tenant')
    await first.takeOver(() => {})
  })

  it('claims nothing for an empty list', async () => {
    const cluster = suite.cluster()
    const [, b] = await cluster.start(2)
    const before = b!.commands.length
    expect(await b!.adapter.claimSessions([])).toEqual([])
    expect(b!.commands.slice(before).filter(isClaim)).toEqual([])
  })
})
