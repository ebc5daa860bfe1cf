// Starts a throwaway Redis for a test run: Debian's redis-server on a free loopback port, no
// persistence, stopped by the test that started it. Where redis-server is missing the Redis
// suites skip, unless PARLEY_REQUIRE_REDIS=1 (CI), where that is a failure.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'

const candidates = [
  process.env.PARLEY_REDIS_SERVER,
  '/usr/bin/redis-server',
  '/usr/local/bin/redis-server',
].filter((p): p is string => typeof p === 'string' && p !== '')

/** The redis-server executable, or undefined when there is none. */
export const redisServerPath: string | undefined = candidates.find((p) => existsSync(p))

/** True when Redis suites must run (CI): a missing redis-server then fails the suite. */
export const redisRequired = process.env.PARLEY_REQUIRE_REDIS === '1'

/** Whether to skip the Redis suites here; throws when they are required but cannot run. */
export function skipRedisSuites(): boolean {
  if (redisServerPath) return false
  if (redisRequired) {
    throw new Error(
      'PARLEY_REQUIRE_REDIS=1 but no redis-server was found (install Debian redis-server or set PARLEY_REDIS_SERVER)',
    )
  }
  console.warn('skipped: no redis (the Redis tests need redis-server, or PARLEY_REDIS_SERVER)')
  return true
}

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Stops the server (SIGTERM, then SIGKILL after 2 s); resolves once it exited. */
  stop(): Promise<void>
  /** Starts it again on the same port, empty (as a Redis that restarted without persistence). */
  restart(): Promise<void>
  /**
   * Stops the process (SIGSTOP) without closing its connections: a Redis that is connected but
   * answers nothing, as a blocked server or a partition without a reset.
   */
  freeze(): void
  /** Lets a frozen server go on (SIGCONT); it then answers everything it was sent meanwhile. */
  thaw(): void
}

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Starts redis-server on a free loopback port and waits until it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  if (!redisServerPath) throw new Error('no redis-server')
  const port = await freePort()
  let child = await launch(redisServerPath, port)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await kill(child)
    },
    restart: async () => {
      await kill(child)
      child = await launch(redisServerPath, port)
    },
    freeze: () => {
      child.kill('SIGSTOP')
    },
    thaw: () => {
      child.kill('SIGCONT')
    },
  }
}

async function launch(path: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    path,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ],
    { stdio: 'ignore' },
  )
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
    if (await answersPing(port)) return child
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server did not answer on port ${port} within 10 s`)
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  // A frozen server would take a SIGTERM only once it goes on.
  child.kill('SIGCONT')
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** The installed redis-server's version line, for test logs. */
export function redisVersion(): string | undefined {
  if (!redisServerPath) return undefined
  return spawnSync(redisServerPath, ['--version'], { encoding: 'utf8' }).stdout.trim()
}
