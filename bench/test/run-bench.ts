// Runs `pnpm bench` with `args` (plus `--no-docs` and a JSON report) in a process of its own, as
// the bench tests do, and resolves with the report it wrote. The report's directory is removed
// once it is read.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Report } from '../src/report.ts'

const benchDir = fileURLToPath(new URL('..', import.meta.url))

export function runBench(args: readonly string[]): Promise<Report> {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-bench-'))
  const json = path.join(dir, 'report.json')
  return new Promise<Report>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', ...args, '--no-docs', '--json', json],
      { cwd: benchDir, timeout: 280_000, killSignal: 'SIGTERM', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stdout}\n${stderr}`))
        else resolve(JSON.parse(readFileSync(json, 'utf8')) as Report)
      },
    )
  }).finally(() => rmSync(dir, { recursive: true, force: true }))
}
