import { describe, expect, it } from 'vitest'
import { ifNoneMatchNames } from './if-none-match.js'

const ETAG = '"abc-123"'

describe('ifNoneMatchNames', () => {
  it('names the representation by its tag, weak or strong, alone or in a list', () => {
    for (const field of [
      '"abc-123"',
      'W/"abc-123"',
      '"old", "abc-123"',
      '"old",W/"abc-123"',
      ' "old" , , W/"abc-123" ',
      '"a,b", "abc-123"',
      '*',
      ' * ',
    ]) {
      expect(ifNoneMatchNames(field, ETAG), field).toBe(true)
    }
  })

  it('names nothing with other tags, or a field that is not a list of them', () => {
    for (const field of [
      undefined,
      '',
      '"old"',
      'W/"old", "abc-1234"',
      'abc-123',
      'w/"abc-123"',
      '"abc-123',
      '"old" "abc-123"',
      '"old"; "abc-123"',
      '*, "abc-123"',
      '"abc-123"x',
    ]) {
      expect(ifNoneMatchNames(field, ETAG), String(field)).toBe(false)
    }
  })
})
