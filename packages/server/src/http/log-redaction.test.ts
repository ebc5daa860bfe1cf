import { describe, expect, it } from 'vitest'
import { maskSessionIds } from './log-redaction.js'

const SID = 'abcdefghijklmnopqrstu'

describe('maskSessionIds', () => {
  it('keeps the first six characters of a sid', () => {
    expect(maskSessionIds(`/parley/poll?v=1&sid=${SID}&ack=3`)).toBe('/parley/poll?v=1&sid=abcdef...&ack=3')
  })

  it('masks a key the query parser decodes to sid', () => {
    expect(maskSessionIds(`/p?%73id=${SID}`)).toBe('/p?%73id=abcdef...')
    expect(maskSessionIds(`/p?v=1&s%69d=${SID}`)).toBe('/p?v=1&s%69d=abcdef...')
    expect(maskSessionIds(`/p?%73%69%64=${SID}`)).toBe('/p?%73%69%64=abcdef...')
  })

  it('masks a sid after a #, and a # inside its value, as the router reads them', () => {
    expect(maskSessionIds(`/p#sid=${SID}&v=1`)).toBe('/p#sid=abcdef...&v=1')
    expect(maskSessionIds(`/p?sid=abc#${SID}`)).toBe('/p?sid=abc#ab...')
  })

  it('masks a sid after a ;, where a router told to begins the query, its value to the next &', () => {
    expect(maskSessionIds(`/p;sid=${SID}&v=1`)).toBe('/p;sid=abcdef...&v=1')
    expect(maskSessionIds(`/p;sid=${SID};v=1?x=1&v=1`)).toBe('/p;sid=abcdef...&v=1')
    expect(maskSessionIds(`/p?x=1;sid=${SID}`)).toBe('/p?x=1;sid=abcdef...')
  })

  it('masks every sid of a text, a query inside another included, each value to the next &', () => {
    expect(maskSessionIds(`GET /a?x=1 /p?sid=${SID} and &sid=${SID}`)).toBe(
      'GET /a?x=1 /p?sid=abcdef...&sid=abcdef...',
    )
  })

  it('leaves other keys, and keys that do not decode, as they are', () => {
    for (const text of [
      `/p?sids=${SID}`,
      `/p?xsid=${SID}`,
      `/p?%zzsid=${SID}`,
      `/p?sid+=${SID}`,
      'sid=x',
      '',
    ]) {
      expect(maskSessionIds(text)).toBe(text)
    }
  })
})
