import { createClient } from 'redis'
import { afterEach } from 'vitest'

/**
 * A client of the Redis at `url` for a test to read and change keys behind the nodes' back,
 * destroyed by the cleanup it adds to `cleanups` (run after the test).
 */
export async function rawRedis(url: string, cleanups: (() => Promise<unknown>)[]) {
  const redis = createClient({ url })
  redis.on('error', () => {})
  await redis.connect()
  cleanups.push(async () => {
    if (redis.isOpen) redis.destroy()
  })
  return redis
}

/** What `rawRedis` gives. */
export type RawRedis = Awaited<ReturnType<typeof rawRedis>>

/**
 * For a suite whose tests open raw clients (to hold a burst's writes, say): each call gives one
 * of the Redis at `url()`, destroyed after its test. Call it in the suite's body.
 */
export function rawRedisEach(url: () => string): () => Promise<RawRedis> {
  const cleanups: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const close of cleanups.splice(0)) await close()
  })
  return () => rawRedis(url(), cleanups)
}
