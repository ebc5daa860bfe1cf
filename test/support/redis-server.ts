// Starts a throwaway Redis for a test run: Debian's redis-server on a free loopback port, no
// persistence, stopped by the test that started it. Where redis-server is missing the Redis
// suites skip, unless PARLEY_REQUIRE_REDIS=1 (CI), where that is a failure.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onFreePort, PortTaken } from './ports.js'

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
  /**
   * Stops the server (SIGTERM, then SIGKILL after 2 s); resolves once it exited. `keepData`: it
   * saves what it has first, for `restart({ keepData: true })`.
   */
  stop(options?: { keepData?: boolean }): Promise<void>
  /**
   * Starts it again on the same port, empty (as a Redis that restarted without persistence); with
   * `keepData`, with what it had when it stopped (as one that saved it then); with `lastSave`,
   * with what the last `SAVE` a test sent wrote (as one whose snapshot is older than its last
   * writes: those are lost).
   */
  restart(options?: { keepData?: boolean; lastSave?: boolean }): Promise<void>
  /**
   * Stops the process (SIGSTOP) without closing its connections: a Redis that is connected but
   * answers nothing, as a blocked server or a partition without a reset.
   */
  freeze(): void
  /** Lets a frozen server go on (SIGCONT); it then answers everything it was sent meanwhile. */
  thaw(): void
}

/** Starts redis-server on a free loopback port and waits until it answers there. */
export async function startRedis(): Promise<RedisServer> {
  if (!redisServerPath) throw new Error('no redis-server')
  // Where a restart that keeps the data finds it (nothing is written there otherwise).
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'))
  const dump = join(dir, 'dump.rdb')
  // A port free when asked may be taken before redis-server binds it: then another one.
  let port = 0
  let child = await onFreePort((picked) => {
    port = picked
    return launch(redisServerPath, picked, dir)
  })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async ({ keepData = false } = {}) => {
      if (keepData && running(child)) await command(port, 'SAVE')
      await kill(child)
      if (!keepData) rmSync(dir, { recursive: true, force: true })
    },
    restart: async ({ keepData = false, lastSave = false } = {}) => {
      if (keepData && !lastSave && running(child)) await command(port, 'SAVE')
      await kill(child)
      if (!keepData && !lastSave) rmSync(dump, { force: true })
      child = await launch(redisServerPath, port, dir)
    },
    freeze: () => {
      child.kill('SIGSTOP')
    },
    thaw: () => {
      child.kill('SIGCONT')
    },
  }
}

async function launch(path: string, port: number, dir: string): Promise<ChildProcess> {
  mkdirSync(dir, { recursive: true })
  const child = spawn(
    path,
    [
      '--port',
      String(port),
      '--dir',
      dir,
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      // Its background tasks 50 times a second rather than 10: a SIGTERM is acted on at the
      // next of them, so a stop (every Redis test file's end, a test's own stops and restarts)
      // took some 90 ms, and takes some 20 now. Expired keys are never read either way.
      '--hz',
      '50',
    ],
    { stdio: 'ignore' },
  )
  const deadline = performance.now() + 10_000
  while (performance.now() < deadline) {
    // It found the port taken (the one way it exits at start with these options).
    if (child.exitCode !== null) throw new PortTaken(port, `redis-server exited with ${child.exitCode}`)
    const pid = await processAnswering(port)
    if (pid === child.pid) return child
    // Another file's Redis, there first: the tests would share its data.
    if (pid !== undefined) {
      await kill(child)
      throw new PortTaken(port, `another redis-server (pid ${pid}) answers there`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server did not answer on port ${port} within 10 s`)
}

/** Sends one inline command; resolves with the first line of the answer, rejects on an error reply. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.setTimeout(10_000, () => socket.destroy(new Error(`redis-server did not answer ${line}`)))
    socket.once('error', reject)
    socket.once('connect', () => socket.write(`${line}\r\n`))
    socket.once('data', (data) => {
      socket.destroy()
      const answer = data.toString().split('\r\n')[0] ?? ''
      if (answer.startsWith('-')) reject(new Error(`redis-server: ${answer.slice(1)}`))
      else resolve(answer)
    })
  })
}

/**
 * The process id of the Redis that answers on `port` (its INFO says), or undefined while none
 * does: so that a test knows the server is the one it started, not one of another file.
 */
function processAnswering(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let answer = ''
    const done = (pid: number | undefined) => {
      socket.destroy()
      resolve(pid)
    }
    socket.setTimeout(500, () => done(undefined))
    socket.once('error', () => done(undefined))
    socket.once('connect', () => socket.write('INFO server\r\n'))
    socket.on('data', (data) => {
      answer += data.toString()
      // Still loading, or not Redis at all: no id to read.
      if (!answer.startsWith('$')) return done(undefined)
      const found = /\r\nprocess_id:(\d+)\r\n/.exec(answer)
      if (found) done(Number(found[1]))
    })
  })
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

function kill(child: ChildProcess): Promise<void> {
  if (!running(child)) return Promise.resolve()
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
