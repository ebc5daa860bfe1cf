// Two installs of @parley/protocol in one app (a server patched, an adapter on the release
// before): each copy has its own ParleyError class, and `instanceof` must hold across them. The
// second copy is this package's own errors module loaded again, as a second install loads it.
import { describe, expect, it, vi } from 'vitest'
import { ErrorCode, ParleyError } from './errors.js'

/** The errors module as another install of the package has it: a module instance of its own. */
async function otherCopy(): Promise<typeof ParleyError> {
  vi.resetModules()
  const copy = (await import('./errors.js')).ParleyError
  // A copy of its own, or the test proves nothing.
  expect(copy).not.toBe(ParleyError)
  return copy
}

describe('ParleyError across copies of the package', () => {
  it("takes another copy's errors as its own, and the other copy takes this one's", async () => {
    const Other = await otherCopy()
    const theirs = new Other(ErrorCode.ACK_TIMEOUT, 'no reply within 5000 ms')
    expect(theirs instanceof ParleyError).toBe(true)
    expect(new ParleyError(ErrorCode.QUEUE_FULL, 'full') instanceof Other).toBe(true)
    // What the check is for: narrowed, its code reads as any ParleyError's.
    const caught: unknown = theirs
    expect(caught instanceof ParleyError && caught.code).toBe('PARLEY_ACK_TIMEOUT')
  })

  it('takes nothing else for one', () => {
    for (const value of [new Error('x'), { code: 'PARLEY_ACK_TIMEOUT' }, null, undefined, 'ParleyError', 0]) {
      expect(value instanceof ParleyError).toBe(false)
    }
    const named = Object.assign(new Error('x'), { name: 'ParleyError', code: 'PARLEY_ACK_TIMEOUT' })
    expect(named instanceof ParleyError).toBe(false)
  })

  it('leaves subclasses tested as classes are', async () => {
    class Refused extends ParleyError {}
    const Other = await otherCopy()
    expect(new Refused(ErrorCode.REFUSED, 'no') instanceof Refused).toBe(true)
    expect(new Refused(ErrorCode.REFUSED, 'no') instanceof ParleyError).toBe(true)
    expect(new Refused(ErrorCode.REFUSED, 'no') instanceof Other).toBe(true)
    expect(new ParleyError(ErrorCode.REFUSED, 'no') instanceof Refused).toBe(false)
    expect(new Other(ErrorCode.REFUSED, 'no') instanceof Refused).toBe(false)
  })

  it('carries the brand where nothing reads or copies it', () => {
    const error = new ParleyError(ErrorCode.QUEUE_FULL, 'full', { details: { limit: 1 } })
    expect(Object.keys(error).sort()).toEqual(['code', 'details', 'name'])
    expect(Object.getOwnPropertySymbols(error)).toEqual([])
    expect({ ...error }).toEqual({ name: 'ParleyError', code: 'PARLEY_QUEUE_FULL', details: { limit: 1 } })
  })
})
