import { describe, expect, it } from 'vitest'
import { LITERAL_PATHS } from './request-target.js'
import { routeMatch, routeShape } from './route-match.js'

describe('routeMatch', () => {
  it('matches a path without parameters as written, and what lies under it', () => {
    const route = routeMatch('/api/parley', LITERAL_PATHS)
    expect([route.is('/api/parley'), route.is('/api/parley/poll'), route.is('/api/parle')]).toEqual([
      true,
      false,
      false,
    ])
    expect([route.covers('/api/parley/poll'), route.covers('/api/parleyx')]).toEqual([true, false])
  })

  it('matches a whole-segment parameter with any one segment', () => {
    const route = routeMatch('/:tenant/parley/poll', LITERAL_PATHS)
    expect(['/t1/parley/poll', '/a.b-c/parley/poll'].map((path) => route.is(path))).toEqual([true, true])
    expect(
      ['//parley/poll', '/t1/x/parley/poll', '/parley/poll', '/t1/parley/poll/'].map((path) =>
        route.is(path),
      ),
    ).toEqual([false, false, false, false])
    expect(routeMatch('/:tenant/parley', LITERAL_PATHS).covers('/t1/parley/ws')).toBe(true)
  })

  it("reads the static segments around it by the router's rules", () => {
    const route = routeMatch('/:tenant/Parley/poll', {
      anyCase: true,
      duplicateSlashes: false,
      trailingSlash: false,
    })
    // A path is lower-cased before it is matched, as `routedPath` reads it.
    expect(route.is('/t1/parley/poll')).toBe(true)
    expect(routeMatch('/:tenant/b::c', LITERAL_PATHS).is('/t1/b:c')).toBe(true)
    expect(routeMatch('/:tenant/100%', LITERAL_PATHS).is('/t1/100%25')).toBe(true)
  })

  it("gives its parameters' values as the router does: letter case kept, escapes decoded", () => {
    const rules = { anyCase: true, duplicateSlashes: false, trailingSlash: false }
    const route = routeMatch('/:tenant/Parley/:room/poll', rules)
    expect(route.params('/AcMe/PARLEY/a%2Fb%25/poll')).toEqual({ tenant: 'AcMe', room: 'a/b%' })
    expect(route.params('/acme/other/x/poll')).toEqual({})
    expect(routeMatch('/api/parley', LITERAL_PATHS).params('/api/parley')).toEqual({})
  })

  it('counts the static segments before its first parameter, as the router prefers them', () => {
    expect(
      ['/acme/:room/ws', '/:tenant/parley/ws', '/acme/parley/ws'].map(
        (written) => routeMatch(written, LITERAL_PATHS).staticSegments,
      ),
    ).toEqual([2, 1, Number.POSITIVE_INFINITY])
  })

  it('matches any other parameter or a wildcard as written: only the router reads them', () => {
    for (const written of ['/t-:id/parley', '/:id(^\\d+)/parley', '/*/parley', '/:tenant/:a-:b']) {
      expect(routeMatch(written, LITERAL_PATHS).is(written)).toBe(true)
    }
    expect(routeMatch('/t-:id/parley', LITERAL_PATHS).is('/t-1/parley')).toBe(false)
  })
})

describe('routeShape', () => {
  it('leaves out the names of whole-segment parameters, and nothing else', () => {
    expect(routeShape('/:tenant/parley')).toBe(routeShape('/:org/parley'))
    expect(['/a::b/parley', '/t-:id/parley', '/:id(^\\d+)/parley', '/acme/parley'].map(routeShape)).toEqual([
      '/a::b/parley',
      '/t-:id/parley',
      '/:id(^\\d+)/parley',
      '/acme/parley',
    ])
  })
})
