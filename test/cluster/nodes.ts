// Starts cluster nodes (./node.ts) as processes of their own, on free loopback ports, and
// stops them: SIGTERM for a clean shutdown, SIGKILL for a crash. Each runs from the
// TypeScript sources (test/tsconfig.json maps @parley/* to packages/*/src), like the tests,
// compiled once per test process into one file (see `compiledScript`).
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { compiledScript } from '../support/compiled-script.js'
import { onFreePort, PortTaken } from '../support/ports.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const script = fileURLToPath(new URL('./node.ts', import.meta.url))

export interface ClusterNode {
  readonly name: string
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly pid: number
  /** What the process wrote to stderr so far. */
  errors(): string
  /**
   * The lines the process wrote to stdout after `listening`: `event <name> <socket id>
   * [reason]` for each socket's connection, restore and disconnect, `ticks <source> <count>`.
   */
  lines(): readonly string[]
  /** True until the process exited. */
  alive(): boolean
  /** How the process ended (`code 0`, `signal SIGKILL`, with `after 10 s` when stop() had to kill it), or undefined while it runs. */
  exit(): string | undefined
  /**
   * SIGTERM (the node drains, handing its sessions to the others, then closes), SIGKILL after
   * 10 s (above the drain's timeout); resolves once it exited.
   */
  stop(): Promise<void>
  /** SIGKILL: the node dies at once, as in a crash; resolves once it exited. */
  kill(): Promise<void>
}

export interface NodeOptions {
  /** Ping interval (and timeout) of the node, in ms. Default 1000. */
  ping?: number
  /** handoff.retrySpread of the node, in ms. Default 300 (the tests' clients come back fast). */
  retrySpread?: number
  /**
   * The port to listen on (a node restarting where another was): the node waits until it is
   * free. Default: a free one, and another when a process of another test took it first.
   */
  port?: number
  /** How a free port is picked (default `freePort`): a test of this file forces a taken one. */
  pickPort?: () => Promise<number>
  /** Every this many ms, a numbered broadcast `tick` to the room `ticks`. Default: none. */
  tick?: number
  /**
   * Called once the process is up and about to listen (it waits for its port to be free
   * first): a restart stops the old process then, not before the new one loaded.
   */
  onReady?: () => void
  /** Aborted: the process is killed, if it is still starting (a test that gave up on it). */
  signal?: AbortSignal
}

/** Starts `names.length` nodes on Redis at `redisUrl`, in parallel; resolves once all listen. */
export async function startNodes(
  names: readonly string[],
  redisUrl: string,
  options: NodeOptions = {},
): Promise<ClusterNode[]> {
  const started = await Promise.allSettled(names.map((name) => startNode(name, redisUrl, options)))
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    await Promise.all(nodes.map((n) => n.kill()))
    throw failed.reason
  }
  return nodes
}

/** The exit code of a node (./node.ts) that found its port held by another process. */
const PORT_TAKEN = 3

export function startNode(name: string, redisUrl: string, options: NodeOptions = {}): Promise<ClusterNode> {
  // A restart's port is the one nginx sends the node's share to: it waits for that one.
  if (options.port !== undefined) return launch(name, redisUrl, options.port, options)
  // A port chosen here, so that the node knows the address it publishes before it listens.
  return onFreePort((port) => launch(name, redisUrl, port, options), options.pickPort)
}

/** Starts the node process on `port`; rejects with PortTaken when another process holds it. */
async function launch(
  name: string,
  redisUrl: string,
  port: number,
  options: NodeOptions,
): Promise<ClusterNode> {
  const file = await compiledScript(script)
  const child = spawn(
    process.execPath,
    [
      file,
      ...['--name', name, '--port', String(port), '--redis', redisUrl],
      ...(options.port !== undefined ? ['--wait-for-port'] : []),
      ...['--ping', String(options.ping ?? 1000)],
      ...['--tick', String(options.tick ?? 0)],
      ...['--retry-spread', String(options.retrySpread ?? 300)],
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  /** stop() killed it: it had not exited 10 s after SIGTERM. */
  let forced = false
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return new Promise((resolve, reject) => {
    let stdout = ''
    // Loading takes the time; once ready, a standby may wait for its port for minutes.
    let timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node ${name} was not ready within 40 s: ${stderr.trim()} ${stdout.trim()}`))
    }, 40_000)
    const onExit = (code: number | null) => {
      clearTimeout(timer)
      if (code === PORT_TAKEN) reject(new PortTaken(port, `node ${name}: ${stderr.trim()}`))
      else reject(new Error(`node ${name} exited (${code}) before listening: ${stderr.trim()}`))
    }
    child.once('exit', onExit)
    const abort = () => child.kill('SIGKILL')
    options.signal?.addEventListener('abort', abort, { once: true })
    let ready = false
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (!ready && /^ready \S+$/m.test(stdout)) {
        ready = true
        clearTimeout(timer)
        timer = setTimeout(() => {
          child.kill('SIGKILL')
          reject(new Error(`node ${name} did not listen within 5 minutes of ready: ${stderr.trim()}`))
        }, 320_000)
        options.onReady?.()
      }
      const match = /^listening \S+ (\d+)$/m.exec(stdout)
      if (!match) return
      clearTimeout(timer)
      child.off('exit', onExit)
      options.signal?.removeEventListener('abort', abort)
      child.stdout?.removeAllListeners('data')
      // The rest of stdout, line by line (the first chunk may already hold some).
      const lines: string[] = []
      let partial = stdout.slice(match.index + match[0].length)
      const take = (chunk: string) => {
        partial += chunk
        const parts = partial.split('\n')
        partial = parts.pop() ?? ''
        for (const line of parts) if (line.trim() !== '') lines.push(line.trim())
      }
      take('')
      child.stdout?.on('data', (d: Buffer) => take(d.toString()))
      const port = Number(match[1])
      resolve({
        name,
        port,
        url: `http://127.0.0.1:${port}`,
        pid: child.pid!,
        errors: () => stderr,
        lines: () => lines,
        alive: () => child.exitCode === null && child.signalCode === null,
        exit: () => {
          if (child.exitCode !== null) return `code ${child.exitCode}${forced ? ' after 10 s' : ''}`
          if (child.signalCode !== null) return `signal ${child.signalCode}${forced ? ' after 10 s' : ''}`
          return undefined
        },
        stop: () =>
          end(child, 'SIGTERM', () => {
            forced = true
          }),
        kill: () => end(child, 'SIGKILL'),
      })
    })
  })
}

function end(child: ChildProcess, signal: NodeJS.Signals, onForced?: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onForced?.()
      child.kill('SIGKILL')
    }, 10_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill(signal)
  })
}
