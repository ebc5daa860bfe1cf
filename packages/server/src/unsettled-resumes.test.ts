import { describe, expect, it } from 'vitest'
import { UnsettledResumes } from './unsettled-resumes.js'

/** Makes each try in turn, `[sid, at]`, and returns which were told to try again. */
function tries(resumes: UnsettledResumes, list: [string, number][]): boolean[] {
  return list.map(([sid, at]) => resumes.tryAgain(sid, at))
}

describe('UnsettledResumes', () => {
  it('tells a sid to try again for the recovery window since its first try, then no more', () => {
    const resumes = new UnsettledResumes(1000)
    // b has its own window, from its own first try.
    const list: [string, number][] = [
      ['a', 0],
      ['a', 500],
      ['b', 900],
      ['a', 999],
      ['a', 1000],
      ['b', 1800],
    ]
    expect(tries(resumes, list)).toEqual([true, true, true, true, false, true])
  })

  it('starts a streak over once no try came for a window, or once the resume was settled', () => {
    const resumes = new UnsettledResumes(1000)
    // The client reached its session between the first two, and lost it again a window later.
    expect(
      tries(resumes, [
        ['a', 0],
        ['a', 1000],
        ['a', 1999],
        ['a', 2000],
        ['b', 3000],
      ]),
    ).toEqual([true, true, true, false, true])
    resumes.settled('b')
    expect(
      tries(resumes, [
        ['b', 3600],
        ['b', 4599],
        ['b', 4600],
      ]),
    ).toEqual([true, true, false])
  })

  it('tells no one to try again with recovery off, and keeps at most `max` sids', () => {
    expect(new UnsettledResumes(0).tryAgain('a', 0)).toBe(false)
    const resumes = new UnsettledResumes(1000, 2)
    // a's streak is forgotten for c's: it starts over, rather than end early.
    expect(
      tries(resumes, [
        ['a', 0],
        ['b', 1],
        ['c', 2],
        ['a', 999],
        ['a', 1500],
      ]),
    ).toEqual([true, true, true, true, true])
  })
})
