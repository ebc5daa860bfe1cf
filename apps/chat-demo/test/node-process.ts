// Chat nodes as processes of their own (`src/main.ts --redis`), for the tests that stop them
// as a deploy does (SIGTERM runs the demo's own drain-then-close) or watch how one fails to start.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { PortTaken } from '../../../test/support/ports.js'

const appDir = fileURLToPath(new URL('..', import.meta.url))
// The nodes run src/main.ts from the sources, as the tests do (@parley/* mapped to packages/*/src),
// compiled once into one file.
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url))

/** One chat node: a process of its own, so that SIGTERM runs the demo's own drain-then-close. */
export interface ChatNode {
  name: string
  port: number
  child: ChildProcess
  /** What it wrote to stderr, for a failing test's message. */
  errors: () => string
  /** What it wrote to stdout: its first line, then its log. */
  output: () => string
}

/** What a node may be started with besides its name, port and Redis. */
export interface NodeOptions {
  /** `--rate-period`: the window of the message rate limit, in ms (5000 when left out). */
  ratePeriod?: number
  /** `--handoff-timeout`: how long its drain waits for claims, in ms (Parley's 5000 when left out). */
  handoffTimeout?: number
  /**
   * `--handoff-retry-spread`: the window a drain spreads its pages' returns over, in ms (Parley's
   * 1000 when left out). Each drain waits for the last page drawn: a test of something else
   * shortens it.
   */
  handoffRetrySpread?: number
  /** `--heartbeat-interval`: the Redis adapter's heartbeat, in ms (2000 when left out). */
  heartbeatInterval?: number
  /** `--reconnect-delay`: the longest wait between tries to reach Redis again, in ms (2000 when left out). */
  reconnectDelay?: number
  /** `--recovery-window`: how long a session that lost its connection stays, in ms (30000 when left out). */
  recoveryWindow?: number
}

/**
 * Starts `src/main.ts` as a cluster node on `port` (loopback); resolves once it listens. Rejects
 * with PortTaken when another process holds the port (the node then exits before it joins).
 */
export async function startNode(
  name: string,
  port: number,
  redisUrl: string,
  options: NodeOptions = {},
): Promise<ChatNode> {
  const args = ['--name', name, '--port', String(port), '--host', '127.0.0.1', '--redis', redisUrl]
  if (options.ratePeriod !== undefined) args.push('--rate-period', String(options.ratePeriod))
  if (options.handoffTimeout !== undefined) args.push('--handoff-timeout', String(options.handoffTimeout))
  if (options.handoffRetrySpread !== undefined)
    args.push('--handoff-retry-spread', String(options.handoffRetrySpread))
  if (options.heartbeatInterval !== undefined)
    args.push('--heartbeat-interval', String(options.heartbeatInterval))
  if (options.reconnectDelay !== undefined) args.push('--reconnect-delay', String(options.reconnectDelay))
  if (options.recoveryWindow !== undefined) args.push('--recovery-window', String(options.recoveryWindow))
  const child = spawn(process.execPath, [await compiledScript(main), ...args], {
    cwd: appDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return new Promise((resolve, reject) => {
    let stdout = ''
    let listening = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} did not listen within 30 s: ${stderr.trim()}`))
    }, 30_000)
    const onExit = (code: number | null) => {
      clearTimeout(timer)
      if (/port \d+ is taken/.test(stderr)) reject(new PortTaken(port, `${name}: ${stderr.trim()}`))
      else reject(new Error(`${name} exited (${code}) before listening: ${stderr.trim()}`))
    }
    child.once('exit', onExit)
    child.stdout?.on('data', (d: Buffer) => {
      // DEBUG_NODES=1: the nodes' warnings (Fastify's JSON log) go with a failure's message.
      if (process.env.DEBUG_NODES)
        for (const line of d.toString().split('\n')) if (/"level":[4-6]/.test(line)) stderr += `${line}\n`
      stdout += d.toString()
      if (!/listening on \S+:\d+/.test(stdout) || listening) return
      listening = true
      clearTimeout(timer)
      child.off('exit', onExit)
      resolve({ name, port, child, errors: () => stderr, output: () => stdout })
    })
  })
}

/** Sends `signal`, SIGKILL after `killAfter` ms; resolves with the exit code once it exited. */
export function stopNode(node: ChatNode, signal: NodeJS.Signals, killAfter = 15_000): Promise<number | null> {
  const { child } = node
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfter)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    child.kill(signal)
  })
}
