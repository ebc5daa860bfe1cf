// A Node process whose Fastify boot fails after Parley registered with the Redis adapter: it
// closes its own Redis client, as an application does, and nothing else. Run by
// failed-boot.test.ts, which waits for the process to exit on its own: what Parley left open (the
// adapter's subscriber connection, its heartbeat) would keep it alive.
// Arguments: the Redis URL, then `awaited` (Parley's registration awaited before the failing
// plugin is registered, the boot begun by ready()) or `loading` (not awaited: Parley registers
// while the boot loads the plugins, begun by listen()).
import { redisAdapter } from '@parley/redis'
import parley from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'

const [url, how] = process.argv.slice(2)
const redis = createClient({ url })
redis.on('error', () => {})
await redis.connect()
const app = Fastify()
const warnings: string[] = []
const options = {
  adapter: redisAdapter({ client: redis, log: { warn: (_: unknown, m: string) => void warnings.push(m) } }),
}
if (how === 'awaited') await app.register(parley, options)
else app.register(parley, options)
app.register(async () => {
  throw new Error('the boot fails')
})
const failed = await (how === 'awaited' ? app.ready() : app.listen({ port: 0, host: '127.0.0.1' })).then(
  () => 'booted',
  (err: Error) => err.message,
)
await redis.close()
console.log(JSON.stringify({ failed, warnings }))
