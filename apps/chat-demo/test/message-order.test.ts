// The wait that keeps a socket's messages in order after the store refused one of them.
import { describe, expect, it } from 'vitest'
import { type Holder, MessageOrder } from '../src/message-order.js'

describe('MessageOrder', () => {
  it('holds later messages back until the refused one comes again', () => {
    const order = new MessageOrder(1000, () => 0)
    const data: Holder = {}
    expect(order.waits(data, 'k1')).toBe(false)
    order.refused(data, 'k1')
    expect(order.waits(data, 'k2')).toBe(true)
    // Without a key a message cannot be told from a new one: it waits all the same.
    expect(order.waits(data, undefined)).toBe(true)
    // A later one refused meanwhile does not take the first one's place.
    order.refused(data, 'k2')
    expect(order.waits(data, 'k1')).toBe(false)
    expect(order.waits(data, 'k2')).toBe(false)
    // Plain JSON, nothing left behind: it goes with a session handed to another node.
    expect(JSON.parse(JSON.stringify(data))).toEqual({})
  })

  it('holds nothing back for a message without a key, and lets go of a message given up', () => {
    let now = 0
    const order = new MessageOrder(1000, () => now)
    const data: Holder = {}
    order.refused(data, undefined)
    expect(order.waits(data, 'k2')).toBe(false)
    order.refused(data, 'k1')
    now = 999
    expect(order.waits(data, 'k2')).toBe(true)
    now = 1000
    expect(order.waits(data, 'k2')).toBe(false)
    expect(order.waits(data, 'k3')).toBe(false)
  })
})
