// The page's `?storeRetry=<ms>`: the wait before it asks again for what the store refused.
import { describe, expect, it } from 'vitest'
import { STORE_RETRY_MS, storeRetryFrom } from '../src/page/store-retry.js'

const from = (query: string) => storeRetryFrom(new URLSearchParams(query))

describe('storeRetryFrom', () => {
  it('is the default 2000 ms without ?storeRetry=', () => {
    expect(from('transports=polling')).toEqual({ ms: STORE_RETRY_MS })
    expect(STORE_RETRY_MS).toBe(2000)
  })

  it('takes a whole number of ms from 10 to 60000', () => {
    expect(from('storeRetry=10')).toEqual({ ms: 10 })
    expect(from('storeRetry=100')).toEqual({ ms: 100 })
    expect(from('storeRetry=60000')).toEqual({ ms: 60_000 })
  })

  it.each(['', ' ', '9', '60001', '1.5', '-100', 'abc', '1e9', 'Infinity'])(
    'refuses %j, saying what it takes, and keeps the default',
    (value) => {
      expect(from(`storeRetry=${encodeURIComponent(value)}`)).toEqual({
        ms: 2000,
        refused: `?storeRetry=${value} is not a whole number of ms from 10 to 60000: the page retries every 2000 ms.`,
      })
    },
  )
})
