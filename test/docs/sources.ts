// The repository's own code, as text, for the docs tests that check a name the docs mention is
// one the code still has (an environment variable, a constant).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './markdown.js'

const FOLDERS = ['packages', 'apps', 'bench', 'scripts', 'test']

function* codeFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* codeFiles(path)
    else if (/\.(ts|mjs|sh)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path
  }
}

let cached: string | undefined

/** Every source, script (TypeScript, ESM, shell) and test file of the repository, joined in one text. */
export function allCode(): string {
  cached ??= FOLDERS.flatMap((folder) => [...codeFiles(join(root, folder))])
    .filter((path) => !path.startsWith(join(root, 'test', 'docs')))
    .map((path) => readFileSync(path, 'utf8'))
    .join('\n')
  return cached
}
