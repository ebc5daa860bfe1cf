import { createClient } from 'redis'

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
