// The upgrade checks the /ws route makes before ws sees a request must refuse exactly what ws
// would refuse: a request they let through and ws refuses gets ws's text/html answer.
import { describe, expect, it } from 'vitest'
import * as ws from 'ws'
import { offeredSubprotocols } from './upgrade-refusal.js'

/** ws's own parser of Sec-WebSocket-Protocol (a named export of ws, not in its types). */
const wsParse = (ws as unknown as { subprotocol: { parse(header: string): Set<string> } }).subprotocol.parse

function wsOffered(header: string): Set<string> | undefined {
  try {
    return wsParse(header)
  } catch {
    return undefined
  }
}

describe('the subprotocols an upgrade offers', () => {
  it('reads a header as ws does', () => {
    for (const header of [
      'parley.v1',
      'a, b',
      'a ,\tb',
      'a,,b',
      'a, ,b',
      'a b',
      'a,a',
      'a,',
      ',a',
      '"a"',
      'a;b',
    ]) {
      expect(offeredSubprotocols(header), header).toEqual(wsOffered(header))
    }
  })

  it('reads any header of tokens, commas, spaces and tabs as ws does', () => {
    // Node hands over header values without whitespace at either end: so are these.
    const alphabet = ['a', 'b', 'parley.v1', ',', ',', ' ', '\t', '"', ';', '/', '~']
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed
    }
    for (let round = 0; round < 2000; round++) {
      const parts = Array.from({ length: 1 + (next() % 7) }, () => alphabet[next() % alphabet.length])
      const header = parts.join('').replace(/^[ \t]+|[ \t]+$/g, '')
      if (header === '') continue
      expect(offeredSubprotocols(header), JSON.stringify(header)).toEqual(wsOffered(header))
    }
  })
})
