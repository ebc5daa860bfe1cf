// `pnpm demo:cluster`: the chat on three nodes behind nginx round-robin, as in production but
// on one machine: a throwaway Redis on a loopback port, three chat servers (src/main.ts with
// --redis) on loopback ports, and nginx on port 3000 (--port to change) sending each request to
// the next node in turn, with no sticky sessions. A node that exits is started again on its
// port, so that `kill -TERM <node pid>` shows a deploy: the node hands its sessions to the
// others and a new process takes its place; `r` and Enter restarts every node in turn (a
// rolling restart). Ctrl+C stops everything.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type Nginx, nginxPath, startNginx } from '../../../test/support/nginx.js'
import { onFreePort, PortTaken } from '../../../test/support/ports.js'
import { type RedisServer, redisServerPath, startRedis } from '../../../test/support/redis-server.js'

const { values } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string' }, nodes: { type: 'string' } },
})
const portText = values.port ?? process.env.PORT ?? '3000'
const port = Number(portText)
const host = values.host ?? process.env.HOST ?? '0.0.0.0'
const count = Number(values.nodes ?? '3')
const say = (line: string) => console.log(`Parley chat cluster: ${line}`)
const fail = (line: string): never => {
  console.error(`Parley chat cluster: ${line}`)
  process.exit(1)
}

if (!Number.isInteger(port) || port < 1 || port > 65535)
  fail(`the port must be a number from 1 to 65535, not "${portText}".`)
if (!Number.isInteger(count) || count < 1 || count > 16) fail('--nodes must be a number from 1 to 16.')
const missing = [redisServerPath ? undefined : 'redis-server', nginxPath ? undefined : 'nginx'].filter(
  Boolean,
)
if (missing.length > 0) {
  fail(
    `${missing.join(' and ')} not found. This demo runs Redis and nginx next to the chat servers; ` +
      'on Debian or Ubuntu: sudo apt-get install -y redis-server nginx-light ' +
      '(or point PARLEY_REDIS_SERVER / PARLEY_NGINX at the executables).',
  )
}

const app = fileURLToPath(new URL('..', import.meta.url))

/** A chat server: its port stays the same across restarts (nginx knows the nodes by port). */
interface Node {
  name: string
  port: number
  child: ChildProcess
  /** Resolves when this process exited. */
  exited: Promise<void>
}
const nodes: Node[] = []
let redis: RedisServer | undefined
let nginx: Nginx | undefined
let stopping = false
let rolling = false

async function stopAll(code: number): Promise<never> {
  stopping = true
  await nginx?.stop().catch(() => {})
  await Promise.all(nodes.map(({ child }) => end(child)))
  await redis?.stop().catch(() => {})
  process.exit(code)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log('')
    say('stopping nginx, the nodes and Redis.')
    void stopAll(0)
  })
}

/**
 * Starts one chat server on `port` (loopback); resolves once it listens. Rejects with PortTaken
 * when another process holds the port (the server then exits before it joins the others).
 */
async function startNode(name: string, port: number, redisUrl: string): Promise<Node> {
  const args = ['--name', name, '--port', String(port), '--host', '127.0.0.1', '--redis', redisUrl]
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const prefix = (chunk: Buffer, to: NodeJS.WriteStream) => {
    for (const line of chunk.toString().split('\n')) if (line !== '') to.write(`[${name}] ${line}\n`)
  }
  let listening = false
  // What it says before it listens: why it could not, if it exits.
  let early = ''
  child.stderr?.on('data', (d: Buffer) => {
    if (!listening) early += d.toString()
    prefix(d, process.stderr)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (listening) return
      if (/port \d+ is taken/.test(early)) reject(new PortTaken(port, `${name} exited`))
      else reject(new Error(`${name} exited (${signal ?? code})`))
    })
    child.stdout?.on('data', (d: Buffer) => {
      if (listening) return prefix(d, process.stdout)
      out += d.toString()
      if (!/listening on \S+:\d+/.test(out)) return
      listening = true
      clearTimeout(timer)
      resolve({ name, port, child, exited })
    })
  })
}

/**
 * Starts the node again on its port whenever it exits, until everything stops: after
 * `kill -TERM` it drained (its pages moved to the other nodes without noticing), after
 * `kill -9` its pages came back on the others with new sessions. Resolves once the new process
 * listens.
 */
async function keep(node: Node, redisUrl: string): Promise<void> {
  await node.exited
  if (stopping) return
  const { exitCode, signalCode } = node.child
  say(`${node.name} exited (${signalCode ?? exitCode}); starting it again on port ${node.port}.`)
  try {
    const next = await startNode(node.name, node.port, redisUrl)
    if (stopping) return void end(next.child)
    nodes[nodes.indexOf(node)] = next
    say(`${node.name} is back on 127.0.0.1:${node.port}, pid ${next.child.pid}`)
    void keep(next, redisUrl)
  } catch (error) {
    // Not started again (the port is taken, ...): the others carry on without it.
    if (!stopping) say(`${node.name} could not start again: ${(error as Error).message}`)
  }
}

function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** A rolling restart: each node in turn drains (SIGTERM) and is replaced before the next. */
async function rollingRestart(): Promise<void> {
  if (rolling) return say('a rolling restart is already under way.')
  rolling = true
  say('rolling restart: each node drains, hands its sessions over, and starts again.')
  try {
    for (const name of nodes.map((n) => n.name)) {
      const node = nodes.find((n) => n.name === name)
      if (!node || stopping) return
      node.child.kill('SIGTERM')
      await node.exited
      // The replacement listens (or could not start) before the next node drains.
      const until = Date.now() + 30_000
      while (!stopping && nodes.includes(node) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100))
      // The others read the live set on their heartbeat (2 s): until then they leave the new
      // node out of cluster queries, such as the fetchSockets behind the people list.
      await new Promise((r) => setTimeout(r, 3000))
    }
    if (!stopping) say('rolling restart done.')
  } finally {
    rolling = false
  }
}

try {
  redis = await startRedis()
  say(`Redis on ${redis.url} (in memory, gone when this stops).`)
  const names = Array.from({ length: count }, (_, i) => `node-${i + 1}`)
  // Ports chosen here, so that each node publishes its address from its first heartbeat, and
  // keeps it when it is started again. A port free when asked may be taken before the node
  // binds it (another program picking ports at the same time): then another one.
  const url = redis.url
  const started = await Promise.allSettled(
    names.map((name) => onFreePort((port) => startNode(name, port, url))),
  )
  for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value)
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  for (const n of nodes) {
    say(`${n.name} on 127.0.0.1:${n.port}, pid ${n.child.pid}`)
    void keep(n, redis.url)
  }
  try {
    nginx = await startNginx(
      nodes.map((n) => n.port),
      { port, host },
    )
  } catch (error) {
    const message = (error as Error).message
    throw new Error(
      /in use/i.test(message) ? `port ${port} is taken; try pnpm demo:cluster --port ${port + 1}` : message,
    )
  }
  say(
    `nginx on ${host}:${port}, round-robin over the ${count} nodes, no sticky sessions (config: ${nginx.dir}/nginx.conf).`,
  )
  console.log('')
  console.log(
    `  Open http://localhost:${port} in two or three tabs (add ?transports=sse or ?transports=polling).`,
  )
  console.log(`  Each request goes to the next node. A deploy of one node: kill -TERM ${nodes[0]!.child.pid}`)
  console.log('  (it hands its sessions to the others, and a new process takes its port); a crash: kill -9.')
  console.log('  Type r and Enter for a rolling restart of every node. Ctrl+C stops everything.')
  console.log('')
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (text: string) => {
    if (text.trim() === 'r') void rollingRestart()
  })
} catch (error) {
  console.error(`Parley chat cluster: ${(error as Error).message}`)
  await stopAll(1)
}
