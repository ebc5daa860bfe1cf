import { describe, expect, it } from 'vitest'
import { characterCount, fitsIn, UNITS_PER_CHARACTER } from '../src/text-length.js'

describe('text lengths', () => {
  it('counts characters as people see them, not UTF-16 units', () => {
    expect(characterCount('abc')).toBe(3)
    // An emoji outside the BMP (2 units), a flag (4), a family (11), e + a combining accent (2).
    for (const one of ['😀', '🇫🇷', '👨‍👩‍👧‍👦', 'e\u0301']) expect(characterCount(one)).toBe(1)
    expect(fitsIn('😀'.repeat(5), 5)).toBe(true)
    expect(fitsIn('😀'.repeat(6), 5)).toBe(false)
  })

  it('stops counting past the limit it is asked about', () => {
    expect(characterCount('x'.repeat(1000), 10)).toBe(11)
  })

  it('refuses a character piled with marks past the bound on units', () => {
    const piled = `a${'\u0301'.repeat(2 * UNITS_PER_CHARACTER)}`
    expect(characterCount(piled)).toBe(1)
    expect(fitsIn(piled, 1)).toBe(false)
    expect(fitsIn(piled, 3)).toBe(true)
  })
})
