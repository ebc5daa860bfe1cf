// `pnpm demo:cluster`: the chat on three nodes behind nginx round-robin, as in production but
// on one machine: a throwaway Redis on a loopback port, three chat servers (src/main.ts with
// --redis) on loopback ports, and nginx on port 3000 (--port to change) sending each request to
// the next node in turn, with no sticky sessions. Ctrl+C stops everything.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type Nginx, nginxPath, startNginx } from '../../../test/support/nginx.js'
import {
  freePort,
  type RedisServer,
  redisServerPath,
  startRedis,
} from '../../../test/support/redis-server.js'

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
const nodes: { name: string; child: ChildProcess; port: number }[] = []
let redis: RedisServer | undefined
let nginx: Nginx | undefined
let stopping = false

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

/** Starts one chat server on a free loopback port; resolves with its port once it listens. */
async function startNode(
  name: string,
  redisUrl: string,
): Promise<{ name: string; child: ChildProcess; port: number }> {
  // A port chosen here, so that the node publishes its address from its first heartbeat.
  const free = await freePort()
  const args = ['--name', name, '--port', String(free), '--host', '127.0.0.1', '--redis', redisUrl]
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const prefix = (chunk: Buffer, to: NodeJS.WriteStream) => {
    for (const line of chunk.toString().split('\n')) if (line !== '') to.write(`[${name}] ${line}\n`)
  }
  child.stderr?.on('data', (d: Buffer) => prefix(d, process.stderr))
  return new Promise((resolve, reject) => {
    let out = ''
    let listening = false
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (stopping) return
      reject(new Error(`${name} exited (${signal ?? code})`))
      if (nginx) say(`${name} stopped (${signal ?? code}); the others serve its clients now.`)
    })
    child.stdout?.on('data', (d: Buffer) => {
      if (listening) return prefix(d, process.stdout)
      out += d.toString()
      const match = /listening on \S+:(\d+)/.exec(out)
      if (!match) return
      listening = true
      clearTimeout(timer)
      resolve({ name, child, port: Number(match[1]) })
    })
  })
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

try {
  redis = await startRedis()
  say(`Redis on ${redis.url} (in memory, gone when this stops).`)
  const names = Array.from({ length: count }, (_, i) => `node-${i + 1}`)
  const started = await Promise.allSettled(names.map((name) => startNode(name, redis!.url)))
  for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value)
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  for (const n of nodes) say(`${n.name} on 127.0.0.1:${n.port}, pid ${n.child.pid}`)
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
  console.log(
    `  Each request goes to the next node; a node kill shows failover: kill -9 ${nodes[0]!.child.pid}`,
  )
  console.log('  Ctrl+C stops everything.')
  console.log('')
} catch (error) {
  console.error(`Parley chat cluster: ${(error as Error).message}`)
  await stopAll(1)
}
