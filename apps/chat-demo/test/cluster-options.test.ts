// connectRedis' own timings: refused before anything reaches Redis when out of range.
import { describe, expect, it } from 'vitest'
import { ChatOptionError } from '../src/app.js'
import { connectRedis, reconnectWait } from '../src/cluster.js'

// Nothing listens there: an option that were taken would fail to connect instead.
const NOWHERE = 'redis://127.0.0.1:1'

describe('connectRedis', () => {
  it.each([
    [
      { heartbeatInterval: 9 },
      'chat demo: option "heartbeatInterval" must be a whole number of ms from 10 to 60000',
    ],
    [
      { heartbeatInterval: 1.5 },
      'chat demo: option "heartbeatInterval" must be a whole number of ms from 10 to 60000',
    ],
    [
      { reconnectDelay: 0 },
      'chat demo: option "reconnectDelay" must be a whole number of ms from 1 to 60000',
    ],
    [
      { reconnectDelay: Number.NaN },
      'chat demo: option "reconnectDelay" must be a whole number of ms from 1 to 60000',
    ],
  ] as const)('refuses %o with a ChatOptionError, before it connects', async (options, said) => {
    const refused = connectRedis(NOWHERE, options)
    await expect(refused).rejects.toBeInstanceOf(ChatOptionError)
    await expect(refused).rejects.toMatchObject({ code: 'PARLEY_INVALID_OPTION', message: said })
  })
})

describe('reconnectWait', () => {
  it('grows by 100 ms a try, up to the longest wait it is given', () => {
    expect([0, 1, 5, 20, 40].map((retries) => reconnectWait(retries, 2000))).toEqual([
      0, 100, 500, 2000, 2000,
    ])
    expect([0, 1, 5].map((retries) => reconnectWait(retries, 50))).toEqual([0, 50, 50])
  })
})
