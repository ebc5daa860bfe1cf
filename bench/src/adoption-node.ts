// One Parley node of the adoption bench (adoption.ts), in a process of its own so that its CPU
// is its own: Fastify on 127.0.0.1 (a free port) with Parley on /parley and the Redis adapter,
// driven over IPC (rpc.ts). It counts the commands its adapter sends on the application's
// Redis client (every command of @parley/redis goes through `sendCommand`; the subscriber's
// connection is another client, not counted) and the sessions it restores.
//
//   fork adoption-node.ts --redis <url>   then the calls below; `{ ready: { url } }` once it listens
import { parseArgs } from 'node:util'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import parley, { type ParleyServer } from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { peer } from './rpc.ts'

const { values } = parseArgs({ options: { redis: { type: 'string' } } })
if (!values.redis) throw new TypeError('adoption-node.ts: --redis <url> is required')

const redis = createClient({ url: values.redis })
redis.on('error', (error: Error) => console.error(`adoption node: redis: ${error.message}`))
await redis.connect()
let commands = 0
/** The commands counted, by name (EVAL and EVALSHA apart from the rest). */
let byName: Record<string, number> = {}
const send = redis.sendCommand.bind(redis)
redis.sendCommand = ((...args: Parameters<typeof send>) => {
  commands++
  const [first] = args
  const name = Array.isArray(first) ? String(first[0]).toUpperCase() : '?'
  byName[name] = (byName[name] ?? 0) + 1
  return send(...args)
}) as typeof send

let restored = 0
let firstRestoredAt: number | undefined
let lastRestoredAt: number | undefined
let cpuFrom = process.cpuUsage()

const app = Fastify({ logger: { level: 'warn', stream: process.stderr } })
let adapter: RedisAdapter | undefined
await app.register(parley, {
  // Long enough that no away session ends during a run.
  recovery: { window: 120_000 },
  adapter: (sockets) => {
    adapter = redisAdapter({ client: redis })(sockets)
    return adapter
  },
})
const io = (app as unknown as { parley: ParleyServer }).parley
io.on('restored', () => {
  restored++
  lastRestoredAt = Date.now()
  firstRestoredAt ??= lastRestoredAt
})
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('adoption node: no port')

peer(process, async (cmd) => {
  switch (cmd) {
    case 'live':
      return adapter?.liveNodes.length ?? 0
    case 'sessions':
      return io.sockets.size
    // From here on: the commands, the restores and the CPU a reading counts.
    case 'mark':
      commands = 0
      byName = {}
      restored = 0
      firstRestoredAt = undefined
      lastRestoredAt = undefined
      cpuFrom = process.cpuUsage()
      return null
    case 'reading': {
      const cpu = process.cpuUsage(cpuFrom)
      return {
        restored,
        commands,
        byName,
        cpuMs: (cpu.user + cpu.system) / 1000,
        firstRestoredAt,
        lastRestoredAt,
      }
    }
    // The drain: resolves once it ended (its adoption's deadline passed) and the node closed.
    case 'close':
      await app.close()
      await redis.close()
      return Date.now()
    default:
      throw new Error(`unknown call ${cmd}`)
  }
})
process.send?.({ ready: { url: `http://127.0.0.1:${address.port}/parley` } })
