import { parseArgs } from 'node:util'
import type { AdapterFactory } from '@parley/server'
import {
  buildChatApp,
  checkHandoffRetrySpread,
  checkHandoffTimeout,
  checkRatePeriod,
  checkRecoveryWindow,
} from './app.js'
import { checkHeartbeatInterval, checkReconnectDelay, connectRedis } from './cluster.js'
import { holdPort } from './hold-port.js'
import type { ChatStore } from './store.js'

// `pnpm demo --port 3001` or `PORT=3001 pnpm demo`; HOST=127.0.0.1 keeps it off the network.
// `--redis redis://127.0.0.1:6379` (or REDIS_URL) makes this server one node of several.
// `--rate-period <ms>`: the window of the message rate limit (5000 by default): a test shortens it.
// `--handoff-timeout <ms>`: how long a drain waits for other nodes to claim its sessions (Parley's
// 5000 by default), after which the rooms of those nobody claimed get their lists again: a test
// shortens it. `--handoff-retry-spread <ms>`: the window over which a drain spreads its pages'
// returns to the other nodes (Parley's 1000 by default): a test that does not test that spread
// shortens it, since each drain waits for the last page drawn.
// `--heartbeat-interval <ms>`: the Redis adapter's heartbeat (2000 by default): a node that
// misses three is gone. `--reconnect-delay <ms>`: the longest wait between tries to reach Redis
// again (2000 by default). A test shortens both, to see a node die or Redis come back sooner.
// `--recovery-window <ms>`: how long a session that lost its connection stays, listed, on some
// node (30000 by default): a test shortens it, to see someone who vanished leave the list sooner.
const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    redis: { type: 'string' },
    address: { type: 'string' },
    name: { type: 'string' },
    'rate-period': { type: 'string' },
    'handoff-timeout': { type: 'string' },
    'handoff-retry-spread': { type: 'string' },
    'heartbeat-interval': { type: 'string' },
    'reconnect-delay': { type: 'string' },
    'recovery-window': { type: 'string' },
  },
})
const portText = values.port ?? process.env.PORT ?? '3000'
const port = Number(portText)
const host = values.host ?? process.env.HOST ?? '0.0.0.0'
const redisUrl = values.redis ?? process.env.REDIS_URL
const label = values.name ? `Parley chat (${values.name})` : 'Parley chat'
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`${label}: the port must be a number from 0 to 65535, not "${portText}".`)
  process.exit(1)
}
/**
 * The number `--<flag>` gives, if any, once `check` took it; else says why not and exits. Refused
 * before the node holds its port or joins Redis: the other nodes never see it.
 */
function msFlag(
  flag:
    | 'rate-period'
    | 'handoff-timeout'
    | 'handoff-retry-spread'
    | 'heartbeat-interval'
    | 'reconnect-delay'
    | 'recovery-window',
  check: (ms: number) => void,
): number | undefined {
  const text = values[flag]
  if (text === undefined) return undefined
  try {
    check(Number(text))
  } catch (error) {
    console.error(`${label}: --${flag} "${text}": ${(error as Error).message}`)
    process.exit(1)
  }
  return Number(text)
}
const ratePeriod = msFlag('rate-period', checkRatePeriod)
const handoffTimeout = msFlag('handoff-timeout', checkHandoffTimeout)
const recoveryWindow = msFlag('recovery-window', checkRecoveryWindow)
const handoffRetrySpread = msFlag('handoff-retry-spread', (spread) =>
  checkHandoffRetrySpread(spread, recoveryWindow),
)
const heartbeatInterval = msFlag('heartbeat-interval', checkHeartbeatInterval)
const reconnectDelay = msFlag('reconnect-delay', checkReconnectDelay)

/** Says that the port is taken and how to pick another, then exits. */
function portTaken(): never {
  console.error(`${label}: port ${port} is taken; start it on another one: pnpm demo --port ${port + 1}`)
  process.exit(1)
}

let adapter: AdapterFactory | undefined
let store: ChatStore | undefined
let closeRedis = async () => {}
// A cluster node's first heartbeat names its port, before it listens: the port is held from
// here on, so that a node whose port is taken exits without ever being listed to the others.
const held = redisUrl && port !== 0 ? ((await holdPort(port, host)) ?? portTaken()) : undefined
if (redisUrl) {
  try {
    // Known before listening (unless the port is 0), so that the other nodes can forward
    // requests here as soon as the first heartbeat went out.
    const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
    const address =
      values.address ?? process.env.PARLEY_ADDRESS ?? (port !== 0 ? `http://${local}:${port}` : undefined)
    const cluster = await connectRedis(redisUrl, {
      label,
      ...(address ? { address } : {}),
      ...(heartbeatInterval !== undefined ? { heartbeatInterval } : {}),
      ...(reconnectDelay !== undefined ? { reconnectDelay } : {}),
    })
    adapter = cluster.adapter
    store = cluster.store
    closeRedis = cluster.close
  } catch (error) {
    console.error(`${label}: cannot reach Redis at ${redisUrl}: ${(error as Error).message}`)
    process.exit(1)
  }
}

const app = await buildChatApp({
  // Warnings and errors always (a store that went away, a session that could not be handed
  // off): without them the terminal says nothing while the pages say something is wrong. LOG=1
  // adds the request log.
  logger: { level: process.env.LOG === '1' ? 'info' : 'warn' },
  ...(adapter ? { adapter } : {}),
  ...(store ? { store } : {}),
  ...(ratePeriod !== undefined ? { ratePeriod } : {}),
  ...(recoveryWindow !== undefined ? { recoveryWindow } : {}),
  handoff: {
    ...(handoffTimeout !== undefined ? { timeout: handoffTimeout } : {}),
    ...(handoffRetrySpread !== undefined ? { retrySpread: handoffRetrySpread } : {}),
  },
})
try {
  // Everything loaded first: a held port is let go only for the moment Fastify takes to bind it.
  await app.ready()
  held?.release()
  await app.listen({ port, host })
} catch (error) {
  if ((error as { code?: string }).code === 'EADDRINUSE') portTaken()
  console.error(`${label}: cannot listen on ${host}:${port}: ${(error as Error).message}`)
  process.exit(1)
}
const { port: bound } = app.server.address() as { port: number }
console.log(
  redisUrl
    ? `${label}: node listening on ${host}:${bound}, with the other nodes through Redis at ${redisUrl}.`
    : `${label}: open http://localhost:${bound} in two tabs (Ctrl+C stops it).`,
)

// SIGTERM (a deploy, a rolling restart) or Ctrl+C: drain first. On a cluster node each session
// is handed to another node through Redis and its page resumes there, losing nothing; alone,
// the sessions end and the pages reconnect later. The drain comes before app.close() because
// from close() on Fastify answers every new request 503 itself, and the requests of sessions
// being handed off must still reach Parley.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void app.parley
      .drain()
      .then(() => app.close())
      .then(closeRedis)
      .then(
        () => process.exit(0),
        (error: Error) => {
          console.error(`${label}: ${error.message}`)
          process.exit(1)
        },
      )
  })
}
