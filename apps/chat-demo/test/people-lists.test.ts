// The people list a page shows: the newest it heard for the room, whatever order lists arrive in.
import { describe, expect, it } from 'vitest'
import { PeopleLists } from '../src/page/people-lists.js'

describe('PeopleLists', () => {
  it('keeps the list of the highest version heard, each room on its own', () => {
    const lists = new PeopleLists()
    expect(lists.heard('lobby', ['ann', 'bob'], 20)).toEqual(['ann', 'bob'])
    expect(lists.heard('lobby', ['ann'], 10)).toEqual(['ann', 'bob'])
    expect(lists.heard('help', ['cy'], 5)).toEqual(['cy'])
    expect(lists.heard('lobby', ['bob'], 30)).toEqual(['bob'])
  })

  it('takes a list without a version as it comes, and a versioned one after it that is newer than the last', () => {
    const lists = new PeopleLists()
    expect(lists.heard('lobby', ['ann', 'bob'], 20)).toEqual(['ann', 'bob'])
    // Sent while the server could not reach its store.
    expect(lists.heard('lobby', ['ann'], undefined)).toEqual(['ann'])
    expect(lists.heard('lobby', ['ann', 'bob'], 10)).toEqual(['ann'])
    expect(lists.heard('lobby', ['ann', 'cy'], 21)).toEqual(['ann', 'cy'])
  })
})
