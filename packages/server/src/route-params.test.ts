import { expect, it } from 'vitest'
import { mayHaveParams, NO_PARAMS, routeParams, sameParams } from './route-params.js'

it('takes a route for one with parameters when it has a parameter or a wildcard', () => {
  expect(mayHaveParams('/parley')).toBe(false)
  expect(mayHaveParams('/api/v2/parley')).toBe(false)
  expect(mayHaveParams('/:tenant/parley')).toBe(true)
  expect(mayHaveParams('/t-:tenant/parley')).toBe(true)
  expect(mayHaveParams('/files/*/parley')).toBe(true)
  // An escaped colon is no parameter, but taking it for one only costs the copy.
  expect(mayHaveParams('/a::b/parley')).toBe(true)
})

it('compares a session kept under no parameters with NO_PARAMS as with an empty copy', () => {
  expect(sameParams(NO_PARAMS, NO_PARAMS)).toBe(sameParams(NO_PARAMS, routeParams({})))
  expect(sameParams({ tenant: 'a' }, NO_PARAMS)).toBe(sameParams({ tenant: 'a' }, routeParams({})))
  expect(sameParams({ tenant: 'a' }, NO_PARAMS)).toBe(false)
})
