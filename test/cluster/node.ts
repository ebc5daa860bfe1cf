// One Parley node of a test cluster, in a process of its own so that a test can SIGKILL it:
// Fastify on 127.0.0.1 with Parley on /parley and the Redis adapter. Started by
// `startNodes()` (./nodes.ts), compiled, as `node <compiled file> --name n1 --redis URL` (or by
// hand as `node --import tsx test/cluster/node.ts ...`, with TSX_TSCONFIG_PATH=test/tsconfig.json).
// Prints `listening <name> <port>` once it listens; exits with PORT_TAKEN (3) when another
// process holds its --port (with --wait-for-port, a restart's, it waits for it first). SIGTERM
// drains (hands every session to the other nodes through Redis), then closes: the shape
// docs/scaling.md recommends for deploys.
// It also prints `event <connection|restored|disconnect> <socket id> [reason]` for each
// socket, so that a test can count them across every process a node name ever ran in.
//
// The events below are the tests' remote control: each runs on the node that owns the
// session of the socket that sent it, and acts from there on the whole cluster.
import { parseArgs } from 'node:util'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import parley, { type ParleyServer, type ServerSocket } from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { type HeldPort, holdPort, PortTaken } from '../support/ports.js'

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    port: { type: 'string', default: '0' },
    // A restart's: --port is its old process's, taken until that one has closed.
    'wait-for-port': { type: 'boolean', default: false },
    redis: { type: 'string' },
    ping: { type: 'string', default: '1000' },
    heartbeat: { type: 'string', default: '1000' },
    // handoff.timeout: the longest the drain waits for the other nodes to claim the sessions.
    'handoff-timeout': { type: 'string', default: '4000' },
    // handoff.retrySpread: the window the drained clients' retries are spread over.
    'retry-spread': { type: 'string', default: '300' },
    // Every this many ms, a broadcast `tick` to the room `ticks`, numbered per process (0: none).
    tick: { type: 'string', default: '0' },
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
const port = Number(values.port)
/** The exit code when another process holds --port: the starter then tries another port. */
const PORT_TAKEN = 3

/**
 * Holds `port` (see `holdPort`: what reaches it meanwhile, nginx passing a request on, is reset
 * as a refusal would be, and nginx tries the next node) until Fastify listens there. Undefined
 * when another process holds it; with `wait`, it waits (at most 5 minutes) until the port is
 * free first: a node restarting on the port of one that still runs starts (and loads)
 * meanwhile, and takes over as soon as the old one has closed.
 */
async function holdOwnPort(port: number, wait: boolean): Promise<HeldPort | undefined> {
  const end = performance.now() + 300_000
  for (;;) {
    try {
      return await holdPort(port)
    } catch (error) {
      if (!(error instanceof PortTaken)) throw error
    }
    if (!wait || performance.now() > end) return undefined
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Another process holds the port: says so, and exits for the starter to pick another one. */
function portTaken(): never {
  console.error(`${name}: port ${port} is taken`)
  process.exit(PORT_TAKEN)
}

// Loaded, the slow part of a start: a restart stops the old process from here on.
// Nothing touches Redis before the port is held, so that a standby, or a node that finds its
// port taken, is no node of the cluster.
console.log(`ready ${name}`)
const held = port !== 0 ? ((await holdOwnPort(port, values['wait-for-port'])) ?? portTaken()) : undefined
await redis.connect()
// Parley's warnings on stderr, which the tests print: a late claim or a tail read without its
// seal (what was sent meanwhile is lost) says so there.
const app = Fastify({ logger: { level: 'warn', stream: process.stderr } })
// Kept to close its subscriber connection before the Redis client, on SIGTERM.
let adapter: RedisAdapter | undefined
const ping = Number(values.ping)
await app.register(parley, {
  pingInterval: ping,
  pingTimeout: ping,
  recovery: { window: 30_000 },
  handoff: {
    timeout: Number(values['handoff-timeout']),
    retrySpread: Number(values['retry-spread']),
  },
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

// Test teardown only (`Cluster.stop`, which stops every node at once): ends every session here,
// so that the SIGTERM that follows has nothing to hand off. Handed off, they would wait the whole
// handoff timeout for a claim that none of the other nodes, draining too, will make.
app.post('/end-sessions', async () => {
  const sockets = [...io.sockets.values()]
  for (const socket of sockets) socket.disconnect()
  return { ended: sockets.length }
})

interface Target {
  rooms?: string[]
  except?: string[]
}
/** The operator for `to(rooms).except(except)` on the whole cluster; no rooms: every socket. */
function target({ rooms = [], except = [] }: Target) {
  // Not `to([])`, which reaches no one.
  return (rooms.length > 0 ? io.to(rooms) : io).except(except)
}

/** A socket's lifecycle on stdout, one line each: the test counts them across processes. */
function tell(event: string, socket: Socket, reason?: string): void {
  console.log(`event ${event} ${socket.id}${reason === undefined ? '' : ` ${reason}`}`)
}

io.on('connection', (socket: Socket) => {
  socket.data = { node: name }
  tell('connection', socket)
  handlers(socket)
})
// A session another node handed off: the same per-socket handlers as a new one, with its
// socket.data and rooms as they were (the handoff carries them).
io.on('restored', (socket: Socket) => {
  tell('restored', socket)
  // When, for a test that reads where a message was lost (`shout` below too).
  console.log(`restored-at ${socket.id} ${Date.now()}`)
  handlers(socket)
})

/**
 * What `seq` checks, kept in socket.data so that it travels with the session when the node
 * hands it off: each number must follow the last one, wherever the session lives.
 */
interface SeqState {
  last: number
  count: number
  faults: string[]
}

function handlers(socket: Socket): void {
  // Numbered messages, some with an ack: checked in order across every node the session
  // lives on (see SeqState). `down` asks for numbered messages back, from whichever node owns
  // the session when it arrives; `shout` broadcasts the sender's numbers to a room.
  socket.on('seq', (n: number, reply?: Reply) => {
    const data = socket.data as { seq?: SeqState }
    data.seq ??= { last: 0, count: 0, faults: [] }
    if (n !== data.seq.last + 1) data.seq.faults.push(`${data.seq.last} then ${n}`)
    data.seq.last = n
    data.seq.count++
    if (typeof reply === 'function') reply({ n })
  })
  socket.on('seqReport', (reply: Reply) => reply({ node: name, ...(socket.data as { seq?: SeqState }).seq }))
  socket.on('downs', (request: { from: number; count: number }) => {
    for (let i = 0; i < request.count; i++) socket.emit('down', request.from + i)
  })
  socket.on('shout', (request: { room: string; from: number; n: number }) => {
    console.log(`shout ${request.from} ${request.n} ${socket.id} ${Date.now()}`)
    io.to(request.room).emit('shouted', { from: request.from, n: request.n })
  })

  socket.on('whoami', (reply: Reply) => reply({ node: name, id: socket.id }))
  socket.on('echo', (value: unknown, reply: Reply) => reply({ node: name, value }))

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

  socket.on('disconnect', (reason: string) => {
    tell('disconnect', socket, reason)
  })
}

try {
  // Everything loaded first: the port is let go only for the moment it takes Fastify to bind it.
  await app.ready()
  held?.release()
  await app.listen({ port, host: '127.0.0.1' })
} catch (error) {
  // Taken all the same, in that moment.
  if ((error as { code?: string }).code === 'EADDRINUSE') portTaken()
  console.error(`${name}: cannot listen: ${(error as Error).message}`)
  process.exit(1)
}
const { port: bound } = app.server.address() as { port: number }
console.log(`listening ${name} ${bound}`)

// The ticks this process broadcast: printed at exit, so that a test knows how many each
// client should have heard from it.
let ticks = 0
const ticker =
  Number(values.tick) > 0
    ? setInterval(
        () => io.to('ticks').emit('tick', { source: `${name}.${process.pid}`, n: ++ticks }),
        Number(values.tick),
      )
    : undefined

process.once('SIGTERM', () => {
  console.log(`sigterm ${Date.now()}`)
  // Drain first, while Fastify still serves requests: the node goes on answering its own
  // sessions' requests (their CLOSE 'server handoff') and forwarding the others', where
  // app.close() would have Fastify answer 503 to every new request at once.
  void io
    .drain()
    .then(() => {
      clearInterval(ticker)
      console.log(`ticks ${name}.${process.pid} ${ticks}`)
      return app.close()
    })
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
