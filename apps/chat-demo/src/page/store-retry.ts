/**
 * How long the page waits before it asks again for what the server could not do for want of
 * its store (STORE_UNAVAILABLE: a cluster's Redis is away): joining a room, taking a message.
 */
export const STORE_RETRY_MS = 2000
/** The shortest `?storeRetry=` taken: shorter, and a page would flood a server whose store is away. */
export const MIN_STORE_RETRY_MS = 10
/** The longest `?storeRetry=` taken: a minute. */
export const MAX_STORE_RETRY_MS = 60_000

/** The wait the page uses, and why the one asked for was refused, if it was. */
export interface StoreRetry {
  ms: number
  refused?: string
}

/**
 * The store retry `?storeRetry=<ms>` asks for (a test shortens it), or `STORE_RETRY_MS` without
 * one. A value that is not a whole number of ms from `MIN_STORE_RETRY_MS` to `MAX_STORE_RETRY_MS`
 * is refused, with words for the page to show, and the default is used.
 */
export function storeRetryFrom(params: URLSearchParams): StoreRetry {
  const text = params.get('storeRetry')
  if (text === null) return { ms: STORE_RETRY_MS }
  const ms = Number(text)
  if (text.trim() !== '' && Number.isInteger(ms) && ms >= MIN_STORE_RETRY_MS && ms <= MAX_STORE_RETRY_MS)
    return { ms }
  return {
    ms: STORE_RETRY_MS,
    refused:
      `?storeRetry=${text} is not a whole number of ms from ${MIN_STORE_RETRY_MS} to ${MAX_STORE_RETRY_MS}: ` +
      `the page retries every ${STORE_RETRY_MS} ms.`,
  }
}
