// pnpm as the test run was started with it: `npx pnpm` (its script, run with this Node) or a
// pnpm on the PATH.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Runs pnpm with `args` in `cwd`; resolves with its output, rejects when it fails. */
export function pnpm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const viaScript = process.env.npm_execpath
  return viaScript && /pnpm/.test(viaScript)
    ? run(process.execPath, [viaScript, ...args], { cwd, maxBuffer: 64 * 1024 * 1024 })
    : run('pnpm', args, { cwd, maxBuffer: 64 * 1024 * 1024 })
}
