// A test child (a .ts entry, compiled once by compiledScript) in a Node process of its own: for
// what only a process can show, that nothing holds it open after the client let go, or that an
// object can be collected (run with --expose-gc).
import { spawn } from 'node:child_process'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { within } from '../../server/test/helpers.js'

export interface ChildOptions {
  /** Node's own flags, before the script (`--expose-gc`). */
  nodeFlags?: readonly string[]
  /** Opens the child's stdin, for `write` (a child told when to act). */
  stdin?: boolean
  /** Text whose first appearance in the output is timed, for `sinceMark`. */
  mark?: string
  /** Variables added to the child's environment (the rest is this process's). */
  env?: Readonly<Record<string, string>>
}

export interface Child {
  /** Everything the child printed so far. */
  readonly out: string
  /** Everything the child wrote to stderr so far. */
  readonly err: string
  /** Writes to the child's stdin (opened by `stdin: true`). */
  write(text: string): void
  /** The exit code, once the process exited; rejects if it lives past `ms`. */
  exit(ms?: number): Promise<number | null>
  /** How long (ms) since the child first printed `mark`. */
  sinceMark(): number
  kill(): void
}

export async function startChild(
  entry: string,
  args: readonly string[],
  options: ChildOptions = {},
): Promise<Child> {
  const proc = spawn(process.execPath, [...(options.nodeFlags ?? []), await compiledScript(entry), ...args], {
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  let out = ''
  let err = ''
  let markedAt = 0
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
    if (options.mark && !markedAt && out.includes(options.mark)) markedAt = performance.now()
  })
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve))
  return {
    get out() {
      return out
    },
    get err() {
      return err
    },
    write: (text) => void proc.stdin?.write(text),
    exit: (ms = 15_000) => within(exited, ms, `the process to exit (stdout: ${out}, stderr: ${err})`),
    sinceMark: () => performance.now() - markedAt,
    kill: () => void proc.kill(),
  }
}

/** Runs the child to its end; its output read as JSON, once it exited with 0. */
export async function childResult(
  entry: string,
  args: readonly string[],
  options: ChildOptions = {},
): Promise<unknown> {
  const child = await startChild(entry, args, options)
  try {
    const code = await child.exit()
    if (code !== 0)
      throw new Error(`the child exited with ${code} (stdout: ${child.out}, stderr: ${child.err})`)
    return JSON.parse(child.out)
  } finally {
    child.kill()
  }
}
