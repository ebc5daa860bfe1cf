import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { EndedSessions } from './ended-sessions.js'
import { outgoing } from './transports/transport.js'

const close = (reason: 'server disconnect' | 'slow consumer') =>
  outgoing({ type: PacketType.CLOSE, reason, message: reason })

describe('EndedSessions', () => {
  it('answers for ttl ms with the CLOSE and the last seq taken, then forgets', () => {
    const ended = new EndedSessions(1000, 10)
    ended.add('a', close('slow consumer'), 12, undefined, 0)
    expect(ended.get('a', 999)?.close.packet).toMatchObject({ reason: 'slow consumer' })
    expect(ended.get('a', 999)?.ack).toBe(12)
    expect(ended.get('a', 1000)).toBeUndefined()
    expect(ended.size).toBe(0)
  })

  it('drops expired entries from the front as new ones come, without a timer', () => {
    const ended = new EndedSessions(1000, 10)
    ended.add('a', close('server disconnect'), 0, undefined, 0)
    ended.add('b', close('server disconnect'), 0, undefined, 500)
    ended.add('c', close('server disconnect'), 0, undefined, 1200)
    expect(ended.size).toBe(2)
    expect(ended.get('b', 1200)).toBeDefined()
  })

  it('keeps at most max entries, the oldest going first', () => {
    const ended = new EndedSessions(60_000, 3)
    for (const sid of ['a', 'b', 'c', 'd']) ended.add(sid, close('server disconnect'), 0, undefined, 0)
    expect(ended.size).toBe(3)
    expect(ended.get('a', 1)).toBeUndefined()
    expect(ended.get('d', 1)).toBeDefined()
  })

  it('keeps nothing with a ttl of 0', () => {
    const ended = new EndedSessions(0, 3)
    ended.add('a', close('server disconnect'), 0, undefined, 0)
    expect(ended.size).toBe(0)
  })
})
