import { MAX_ACK_ID } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { oldNextAckId } from './old-ack-ids.js'

describe('the old node’s next ack id, read from a snapshot', () => {
  it('is the snapshot’s nextAckId when it has one, whatever it awaits', () => {
    expect(oldNextAckId({ nextAckId: 7, pendingAcks: [40, 41] })).toBe(7)
    expect(oldNextAckId({ nextAckId: MAX_ACK_ID, pendingAcks: [] })).toBe(MAX_ACK_ID)
  })

  it('is one past the newest question awaited when an earlier version wrote the snapshot', () => {
    // Asked in this order: the last one is the newest, however the ids compare.
    expect(oldNextAckId({ pendingAcks: [2 ** 30 + 1, 2 ** 30 + 5] })).toBe(2 ** 30 + 6)
    expect(oldNextAckId({ pendingAcks: [MAX_ACK_ID - 1, 3] })).toBe(4)
    // Past the largest id, numbering wraps to 1.
    expect(oldNextAckId({ pendingAcks: [MAX_ACK_ID] })).toBe(1)
  })

  it('is 1 when an earlier version’s snapshot awaits nothing, or names no ack id last', () => {
    expect(oldNextAckId({ pendingAcks: [] })).toBe(1)
    expect(oldNextAckId({ pendingAcks: [0] })).toBe(1)
    expect(oldNextAckId({ pendingAcks: [5, 2 ** 31] })).toBe(1)
  })
})
