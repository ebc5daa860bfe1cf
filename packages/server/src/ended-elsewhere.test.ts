import { CloseReason, PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import type { Adapter, EndedSession } from './adapter/adapter.js'
import { EndedElsewhere } from './ended-elsewhere.js'

const close = { type: PacketType.CLOSE, reason: CloseReason.SLOW_CONSUMER, message: 'too slow' } as const

/** An `EndedElsewhere` over an adapter with only the two calls it makes, and what it logged. */
function over(calls: Partial<Pick<Adapter, 'sessionEnded' | 'endedSession'>>, wait = 1000) {
  const failed = { record: [] as unknown[], lookup: [] as unknown[] }
  const ended = new EndedElsewhere(calls as Adapter, 60_000, wait, {
    record: (err) => failed.record.push(err),
    lookup: (err) => failed.lookup.push(err),
  })
  return { ended, failed }
}

describe('EndedElsewhere', () => {
  it('hands the adapter the CLOSE, the ACK and the ttl, and reads them back as a CLOSE to send', async () => {
    const kept = new Map<string, EndedSession>()
    const ttls: number[] = []
    const { ended } = over({
      sessionEnded: (sid, ending, ttl) => {
        kept.set(sid, ending)
        ttls.push(ttl)
      },
      endedSession: async (sid) => kept.get(sid),
    })
    ended.record('s', { ...close, retryAfter: 30 }, 4)
    expect(ttls).toEqual([60_000])
    const found = await ended.lookUp('s')
    expect(found?.ack).toBe(4)
    expect(found?.close.text).toBe('[1,"slow consumer","too slow",30]')
    expect(await ended.lookUp('other')).toBeUndefined()
  })

  it('keeps the route parameters with the record, and reads a record without them as before', async () => {
    const kept = new Map<string, EndedSession>()
    const { ended } = over({
      sessionEnded: (sid, ending) => void kept.set(sid, ending),
      endedSession: async (sid) => kept.get(sid),
    })
    ended.record('s', close, 0, { tenant: 'acme' })
    ended.record('older', close, 0)
    expect(kept.get('s')?.params).toEqual({ tenant: 'acme' })
    expect((await ended.lookUp('s'))?.params).toEqual({ tenant: 'acme' })
    expect(kept.get('older')).not.toHaveProperty('params')
    expect((await ended.lookUp('older'))?.params).toBeUndefined()
  })

  it('logs an adapter that throws or rejects as a session ends, and never throws itself', async () => {
    const { ended, failed } = over({
      sessionEnded: (sid) => {
        if (sid === 'a') throw new Error('thrown')
        return Promise.reject(new Error('rejected')) as unknown as undefined
      },
    })
    expect(() => ended.record('a', close, 0)).not.toThrow()
    ended.record('b', close, 0)
    await Promise.resolve()
    expect(failed.record.map((err) => (err as Error).message)).toEqual(['thrown', 'rejected'])
  })

  it('answers nothing known, and logs it, for a lookup that rejects, answers junk or never settles', async () => {
    const answers: Record<string, () => unknown> = {
      rejects: () => Promise.reject(new Error('store away')),
      junk: () => ({ close: { type: PacketType.CLOSE, reason: 'no such reason', message: 'm' }, ack: 1 }),
      'bad ack': () => ({ close, ack: -1 }),
      'bad params': () => ({ close, ack: 0, params: { tenant: 1 } }),
      hangs: () => new Promise(() => {}),
    }
    const { ended, failed } = over(
      { endedSession: (sid) => answers[sid]?.() as Promise<EndedSession | undefined> },
      20,
    )
    for (const sid of Object.keys(answers)) expect(await ended.lookUp(sid)).toBeUndefined()
    expect(failed.lookup).toHaveLength(5)
    expect(String(failed.lookup[4])).toContain('did not answer within 20 ms')
  })

  it('sends nothing of the adapter’s answer but the CLOSE’s own fields', async () => {
    const { ended } = over({
      endedSession: () => ({ close: { ...close, extra: 'x' } as EndedSession['close'], ack: 0 }),
    })
    expect((await ended.lookUp('s'))?.close.text).toBe('[1,"slow consumer","too slow"]')
  })
})
