import { describe, expect, it } from 'vitest'
import { cutText } from './cut.js'

describe('cutText', () => {
  it('keeps a text within the limit as it is', () => {
    expect(cutText('bye', 3)).toBe('bye')
    expect(cutText('😀', 2)).toBe('😀')
  })

  it('cuts at the limit between characters of the BMP', () => {
    expect(cutText('abcdef', 4)).toBe('abcd')
  })

  it('leaves out whole a surrogate pair across the limit', () => {
    expect(cutText('abc😀', 4)).toBe('abc')
    expect(cutText('ab😀c', 4)).toBe('ab😀')
    expect(cutText('😀😀😀', 5)).toBe('😀😀')
  })

  it('never ends on the first half of a pair, whatever the limit', () => {
    const text = 'a😀b😀😀c'
    for (let max = 1; max <= text.length; max++) {
      const cut = cutText(text, max)
      expect(text.startsWith(cut)).toBe(true)
      expect(cut.length).toBeGreaterThanOrEqual(max - 1)
      // A prefix of a well-formed text is broken only by a first half at its end.
      expect(/[\ud800-\udbff]$/.test(cut)).toBe(false)
    }
  })
})
