import { encodeText, PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { answeredIn } from './drain.js'
import { roomsEntry, sameRooms, splitTail } from './tail-rooms.js'

const reply = encodeText({ type: PacketType.REPLY, seq: 4, ackId: 2, args: ['ok'] })

describe('the rooms entry of a tail', () => {
  it('is taken out of the tail; the packets stay, in order', () => {
    const event = encodeText({ type: PacketType.EVENT, seq: 3, name: 'news', args: [{}], ackId: 0 })
    expect(splitTail([event, reply, roomsEntry(['a', 'b c'])])).toEqual({
      packets: [event, reply],
      rooms: ['a', 'b c'],
    })
    expect(splitTail([event])).toEqual({ packets: [event], rooms: undefined })
    // No rooms at all (every room left) is an entry too.
    expect(splitTail([roomsEntry([])])).toEqual({ packets: [], rooms: [] })
  })

  it('is never read as a packet, nor a packet as one', () => {
    expect(answeredIn([roomsEntry(['a']), reply])).toEqual(new Set([2]))
    expect(splitTail([reply]).rooms).toBeUndefined()
  })

  it('leaves a damaged entry among the packets, where it reads as one out of order', () => {
    for (const damaged of ['{"rooms":["a"', '{"rooms":[1]}', '{"rooms":"a"}', '{}', '{"nothing":null}'])
      expect(splitTail([damaged])).toEqual({ packets: [damaged], rooms: undefined })
  })
})

describe('sameRooms', () => {
  it('compares two lists of rooms in any order', () => {
    expect(sameRooms(['a', 'b'], ['b', 'a'])).toBe(true)
    expect(sameRooms([], [])).toBe(true)
    expect(sameRooms(['a'], ['a', 'b'])).toBe(false)
    expect(sameRooms(['a', 'c'], ['a', 'b'])).toBe(false)
  })
})
