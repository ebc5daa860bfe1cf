// The script-tag bundle for the browser tests, built again when the sources changed since.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const clientDir = fileURLToPath(new URL('..', import.meta.url))
const bundlePath = join(clientDir, 'dist', 'parley.min.js')

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let time = 0
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    time = Math.max(time, statSync(join(dir, file)).mtimeMs)
  }
  return time
}

/** `dist/parley.min.js`, built first when it is missing or older than the sources it is made of. */
export function ensureBundle(): string {
  const sources = Math.max(newest(join(clientDir, 'src')), newest(join(clientDir, '..', 'protocol', 'src')))
  if (!existsSync(bundlePath) || statSync(bundlePath).mtimeMs < sources) {
    execFileSync(process.execPath, ['build.mjs'], { cwd: clientDir, stdio: 'inherit' })
  }
  return readFileSync(bundlePath, 'utf8')
}
