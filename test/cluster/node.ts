// One Parley node of a test cluster, in a process of its own so that a test can SIGKILL it:
// Fastify on 127.0.0.1 with Parley on /parley and the Redis adapter. Started by
// `startNodes()` (./nodes.ts) as `node --import tsx test/cluster/node.ts --name n1 --redis URL`.
// Prints `listening <name> <port>` once it listens; SIGTERM closes it cleanly.
//
// The events below are the tests' remote control: each runs on the node that owns the
// session of the socket that sent it, and acts from there on the whole cluster.
import { parseArgs } from 'node:util'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import parley, { type ParleyServer, type ServerSocket } from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string', default: '0' },
    redis: { type: 'string' },
    ping: { type: 'string', default: '1000' },
    heartbeat: { type: 'string', default: '1000' },
  },
})
const name = values.name ?? `node-${process.pid}`
if (!values.redis) {
  console.error('node.ts: --redis <url> is required')
  process.exit(2)
}

type Reply = (value: unknown) => void
type Socket = ServerSocket

const redis = createClient({ url: values.redis, socket: { reconnectStrategy: () => 100 } })
// node-redis reconnects on its own; a test restarts Redis on purpose, so errors are only logged.
let lastError = ''
redis.on('error', (error: Error) => {
  if (error.message !== lastError) console.error(`${name}: redis: ${error.message}`)
  lastError = error.message
})
redis.on('ready', () => {
  lastError = ''
})
await redis.connect()

const port = Number(values.port)
const app = Fastify()
// Kept to close its subscriber connection before the Redis client, on SIGTERM.
let adapter: RedisAdapter | undefined
const ping = Number(values.ping)
await app.register(parley, {
  pingInterval: ping,
  pingTimeout: ping,
  recovery: { window: 30_000 },
  adapter: (sockets) => {
    adapter = redisAdapter({
      client: redis,
      requestTimeout: 2000,
      heartbeatInterval: Number(values.heartbeat),
      // Known before listening, so that the first heartbeat publishes it: others can forward
      // here from the start.
      ...(port !== 0 ? { address: `http://127.0.0.1:${port}` } : {}),
    })(sockets)
    return adapter
  },
})
const io = (app as unknown as { parley: ParleyServer }).parley

// How many other nodes this one sees alive: the cluster is ready when each sees all others.
app.get('/cluster', async () => ({
  node: name,
  live: adapter?.liveNodes.length ?? 0,
}))

/** What a socket sent with `up`, checked as it arrives: numbers 1, 2, 3... once each. */
const received = new Map<string, { count: number; last: number; faults: string[] }>()

interface Target {
  rooms?: string[]
  except?: string[]
}
/** The operator for `to(rooms).except(except)` on the whole cluster. */
function target({ rooms = [], except = [] }: Target) {
  // No rooms: every socket.
  return io.to(rooms).except(except)
}

io.on('connection', (socket: Socket) => {
  socket.data = { node: name }
  received.set(socket.id, { count: 0, last: 0, faults: [] })

  socket.on('whoami', (reply: Reply) => reply({ node: name, id: socket.id }))
  socket.on('echo', (value: unknown, reply: Reply) => reply({ node: name, value }))

  socket.on('up', (n: number) => {
    const r = received.get(socket.id)!
    if (n !== r.last + 1) r.faults.push(`${r.last} then ${n}`)
    r.last = n
    r.count++
  })
  socket.on('report', (reply: Reply) => reply({ node: name, ...received.get(socket.id) }))
  socket.on('pump', (n: number, reply: Reply) => {
    for (let i = 1; i <= n; i++) socket.emit('down', i)
    reply({ node: name })
  })

  socket.on('join', async (room: string, reply: Reply) => {
    await socket.join(room)
    reply({ node: name })
  })
  socket.on(
    'broadcast',
    (request: Target & { event: string; payload: unknown; volatile?: boolean }, reply) => {
      const op = target(request)
      ;(request.volatile ? op.volatile : op).emit(request.event, request.payload)
      ;(reply as Reply)({ node: name })
    },
  )
  // To the sender's rooms, from the socket itself: the sender is left out.
  socket.on('say', (request: { room: string; payload: unknown }, reply: Reply) => {
    socket.to(request.room).emit('said', request.payload)
    reply({ node: name })
  })
  socket.on('ask', async (request: Target & { timeout: number }, reply: Reply) => {
    try {
      const replies = await target(request).timeout(request.timeout).emitWithAck('question', name)
      reply({ ok: true, replies })
    } catch (error) {
      reply({ ok: false, code: (error as { code?: string }).code, message: (error as Error).message })
    }
  })
  socket.on('fetch', async (request: Target, reply: Reply) => {
    const sockets = await target(request).fetchSockets()
    reply(sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data })))
  })
  socket.on('socketsJoin', async (request: Target & { room: string }, reply: Reply) => {
    await target(request).socketsJoin(request.room)
    reply({ node: name })
  })
  socket.on('socketsLeave', async (request: Target & { room: string }, reply: Reply) => {
    await target(request).socketsLeave(request.room)
    reply({ node: name })
  })
  socket.on('disconnectSockets', async (request: Target, reply: Reply) => {
    await target(request).disconnectSockets()
    reply({ node: name })
  })

  socket.on('disconnect', () => {
    received.delete(socket.id)
  })
})

try {
  await app.listen({ port, host: '127.0.0.1' })
} catch (error) {
  console.error(`${name}: cannot listen: ${(error as Error).message}`)
  process.exit(1)
}
const { port: bound } = app.server.address() as { port: number }
console.log(`listening ${name} ${bound}`)

process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => adapter?.close())
    .then(() => redis.close())
    .then(
      () => process.exit(0),
      (error: Error) => {
        console.error(`${name}: close: ${error.message}`)
        process.exit(1)
      },
    )
})
