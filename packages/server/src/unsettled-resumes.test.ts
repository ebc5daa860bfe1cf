import { describe, expect, it } from 'vitest'
import { UnsettledResumes } from './unsettled-resumes.js'

describe('UnsettledResumes', () => {
  it('tells a sid to try again for the recovery window since its first try, then no more', () => {
    const resumes = new UnsettledResumes(1000)
    expect(resumes.tryAgain('a', 0)).toBe(true)
    expect(resumes.tryAgain('a', 500)).toBe(true)
    expect(resumes.tryAgain('b', 900)).toBe(true)
    expect(resumes.tryAgain('a', 999)).toBe(true)
    expect(resumes.tryAgain('a', 1000)).toBe(false)
    // Its own window, from its own first try.
    expect(resumes.tryAgain('b', 1800)).toBe(true)
  })

  it('starts a streak over once no try came for a window, or once the resume was settled', () => {
    const resumes = new UnsettledResumes(1000)
    expect(resumes.tryAgain('a', 0)).toBe(true)
    // The client reached its session meanwhile, and lost it again a window later.
    expect(resumes.tryAgain('a', 1000)).toBe(true)
    expect(resumes.tryAgain('a', 1999)).toBe(true)
    expect(resumes.tryAgain('a', 2000)).toBe(false)
    expect(resumes.tryAgain('b', 3000)).toBe(true)
    expect(resumes.tryAgain('b', 3500)).toBe(true)
    resumes.settled('b')
    expect(resumes.tryAgain('b', 3600)).toBe(true)
    expect(resumes.tryAgain('b', 4599)).toBe(true)
    expect(resumes.tryAgain('b', 4600)).toBe(false)
  })

  it('tells no one to try again with recovery off, and keeps at most `max` sids', () => {
    expect(new UnsettledResumes(0).tryAgain('a', 0)).toBe(false)
    const resumes = new UnsettledResumes(1000, 2)
    expect(resumes.tryAgain('a', 0)).toBe(true)
    expect(resumes.tryAgain('b', 1)).toBe(true)
    expect(resumes.tryAgain('c', 2)).toBe(true)
    // a's streak was forgotten for c's: it starts over, rather than end early.
    expect(resumes.tryAgain('a', 999)).toBe(true)
    expect(resumes.tryAgain('a', 1500)).toBe(true)
  })
})
