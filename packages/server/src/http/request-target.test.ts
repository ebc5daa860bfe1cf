import { describe, expect, it } from 'vitest'
import { originForm } from './request-target.js'

describe('originForm', () => {
  it('keeps a target in origin form', () => {
    expect(originForm('/parley/poll?v=1')).toBe('/parley/poll?v=1')
  })

  it('reads a target in absolute form as the router does: from the first / or ? after the authority', () => {
    expect(originForm('http://host:3000/parley/poll?v=1')).toBe('/parley/poll?v=1')
    expect(originForm('HTTPS://user@host/parley/ws?v=1')).toBe('/parley/ws?v=1')
    expect(originForm('http://host?v=1')).toBe('/?v=1')
    expect(originForm('http://host')).toBe('/')
  })

  it('leaves as it came a target the router refuses as a bad URL, or one of another scheme', () => {
    for (const url of [
      'http://host#/parley/poll',
      'http://host/parley/poll?v=1#x',
      'http:///parley/poll',
      'http://[host/p',
      'ftp://host/p',
      '*',
    ]) {
      expect(originForm(url)).toBe(url)
    }
  })
})
