import { describe, expect, it } from 'vitest'
import { goodbyeSentTo, MAX_GOODBYE_HOPS, SENT_TO_HEADER } from './routing.js'

describe('goodbyeSentTo', () => {
  it('reads the nodes a goodbye was sent on to, in order', () => {
    expect(goodbyeSentTo({ [SENT_TO_HEADER]: 'b, d' })).toEqual(['b', 'd'])
  })

  it('reads none from a goodbye without the list (sent on by a node of an earlier version)', () => {
    expect(goodbyeSentTo({})).toEqual([])
  })

  it('sends on no further a goodbye whose list is not one, or is full', () => {
    const full = Array.from({ length: MAX_GOODBYE_HOPS }, (_, i) => `n${i}`).join(',')
    for (const value of ['', 'b,,d', ' , ', 'x'.repeat(2000), full, ['b', 'd']]) {
      expect(goodbyeSentTo({ [SENT_TO_HEADER]: value })).toBeUndefined()
    }
  })
})
