// A TypeScript entry of the repository compiled to one JavaScript file, for the tests that start
// it as a process of its own (cluster nodes, chat nodes): under tsx each start took about 2 s of
// compiling, where the compiled file starts in well under one. The installed packages (fastify,
// ws, redis, pino...) are in that file too: loaded from node_modules, their few hundred files
// took most of a start.
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { threadId } from 'node:worker_threads'
import { build, type Plugin } from 'esbuild'

const root = fileURLToPath(new URL('../../', import.meta.url))
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url))

const compiled = new Map<string, Promise<string>>()

/**
 * The path of `entry` (a .ts file) compiled to one file with the Parley packages' sources it
 * imports (test/tsconfig.json maps each @parley package to its sources) and the installed
 * packages: the same code as under tsx. Compiled once per process and entry, on first use, and
 * not again while its sources stay as they were (see `compiledFrom`). The file is named after
 * its content, in the system's temporary folder (never in the repository): test files running
 * side by side write it once between them, and a changed source gets a new one. Files no run
 * used for a day are removed.
 */
export function compiledScript(entry: string): Promise<string> {
  let file = compiled.get(entry)
  if (!file) {
    file = compiledFrom(entry, compiledDir).then(({ file }) => file)
    file.catch(() => {
      // Tried again by the next start (a syntax error being fixed in watch mode).
      compiled.delete(entry)
    })
    compiled.set(entry, file)
  }
  return file
}

/** Where compiled files and their lists of sources are kept. */
const compiledDir = path.join(tmpdir(), 'parley-compiled-scripts')

/** A compiled file, and whether this call built it (false: the one its unchanged sources made). */
export interface Compiled {
  file: string
  built: boolean
}

/**
 * `entry` compiled into `dir`. Each test file's modules are loaded afresh, so the map of
 * `compiledScript` is empty at each: rather than bundle again (a second or more on a loaded
 * machine, for every file that starts a node process), the list of sources the last build read
 * (`<key>.sources.json`: each file esbuild read, the installed packages' among them, and the
 * lockfile, with a hash of each) says whether the file it made still stands: every one unchanged.
 */
export async function compiledFrom(entry: string, dir: string): Promise<Compiled> {
  const list = path.join(dir, `${hash(`${entry}\0${ownSource}`)}.sources.json`)
  const kept = await unchanged(list)
  if (kept) {
    touch([kept, list])
    pruneCompiled(dir, Date.now() - KEEP_MS)
    return { file: kept, built: false }
  }
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    // What tsx compiled for: the Node that runs it.
    target: `node${process.versions.node}`,
    tsconfig,
    // Node's own conditions: without this, esbuild would also pick a package's `module` entry.
    conditions: [],
    plugins: [ownLocation],
    external: [...optionalAddons],
    banner: { js: requireBanner },
    logLevel: 'error',
    metafile: true,
    absWorkingDir: root,
  })
  const code = result.outputFiles[0]!.contents
  const file = path.join(dir, `${hash(code)}.mjs`)
  mkdirSync(dir, { recursive: true })
  if (!existsSync(file)) writeAtOnce(file, code)
  const sources: SourceList = { file, sources: {} }
  const inputs = Object.keys(result.metafile.inputs).map((p) => path.resolve(root, p))
  const lockfile = lockfileOf(entry)
  for (const input of [...inputs, tsconfig, ...(lockfile ? [lockfile] : [])]) {
    sources.sources[input] = hash(readFileSync(input))
  }
  writeAtOnce(list, JSON.stringify(sources))
  touch([file])
  pruneCompiled(dir, Date.now() - KEEP_MS)
  return { file, built: true }
}

/**
 * The pnpm lockfile of the workspace `entry` is in (the nearest above it), if any: after it
 * changed, `pnpm install` may point a package's link at another version already installed beside
 * it, whose files, unchanged, the list would otherwise still take for the ones bundled.
 */
function lockfileOf(entry: string): string | undefined {
  for (let dir = path.dirname(entry); ; dir = path.dirname(dir)) {
    const lockfile = path.join(dir, 'pnpm-lock.yaml')
    if (existsSync(lockfile)) return lockfile
    if (path.dirname(dir) === dir) return undefined
  }
}

/** What `compiledFrom` keeps of a build: its file, and the hash of each file it was built from. */
interface SourceList {
  file: string
  sources: Record<string, string>
}

/** The compiled file that the list at `list` names, if the sources it was built from are unchanged. */
async function unchanged(list: string): Promise<string | undefined> {
  let kept: SourceList
  try {
    kept = JSON.parse(await readFile(list, 'utf8')) as SourceList
  } catch {
    return undefined
  }
  if (!existsSync(kept.file)) return undefined
  // Read one after another, synchronously: the 1,300 files of a node's list (most of them the
  // installed packages') take about 60 ms so, against 200 through the thread pool, and the first
  // changed one ends the check.
  for (const [source, sum] of Object.entries(kept.sources)) {
    try {
      if (hash(readFileSync(source)) !== sum) return undefined
    } catch {
      // Removed, or moved (its importer changed too).
      return undefined
    }
  }
  return kept.file
}

/**
 * This module's own source, in the key of each list of sources: a change to how scripts are
 * compiled (the plugins below) compiles them again.
 */
const ownSource = readFileSync(fileURLToPath(import.meta.url), 'utf8')

const hash = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex').slice(0, 16)

/**
 * Written under another name, then renamed: a process or thread beside this one never reads it
 * half written. The name is this thread's own: Vitest runs test files side by side in worker
 * threads of one process, which share its pid, and two of them may write the same file at once.
 */
export function writeAtOnce(file: string, data: string | Uint8Array): void {
  const partial = `${file}.${process.pid}.${threadId}`
  writeFileSync(partial, data)
  renameSync(partial, file)
}

/** Marks `files` used now, so that `pruneCompiled` keeps them. A file pruned meanwhile is left. */
function touch(files: string[]): void {
  const now = new Date()
  for (const file of files) {
    try {
      utimesSync(file, now, now)
    } catch {}
  }
}

/** How long a compiled file no run used stays: a day, so that runs of other checkouts keep theirs. */
const KEEP_MS = 24 * 60 * 60 * 1000

/**
 * Removes the compiled files of `dir` last used before `before`, and the lists of their sources:
 * each source version leaves one (about 4.5 MB, the installed packages in it), which nothing else
 * would ever take away. A file another process removes first, or one being written, is left alone.
 */
export function pruneCompiled(dir: string, before: number): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.mjs') && !name.endsWith('.sources.json')) continue
    const file = path.join(dir, name)
    try {
      if (statSync(file).mtimeMs < before) unlinkSync(file)
    } catch {}
  }
}

/**
 * ws's optional native add-ons, left out: ws requires each in a try and uses its own JavaScript
 * when it is not found, as it is not from the compiled file's folder (nor installed here).
 */
const optionalAddons = ['bufferutil', 'utf-8-validate'] as const

/**
 * A `require` for the CommonJS packages bundled into an ES module (fastify, pino, ws...): esbuild
 * turns their `require('node:...')` of Node's own modules into a call of the global `require`,
 * which an ES module lacks. Their `__dirname` stays undefined: only pino's transports (worker
 * threads, which the scripts' loggers never use) read it. An installed ES module's
 * `import.meta.url` is the compiled file's, in the temporary folder: none of those bundled reads
 * it.
 */
const requireBanner =
  "import { createRequire as createRequireOfBundle } from 'node:module'\n" +
  'const require = createRequireOfBundle(import.meta.url)'

/**
 * Gives each source of the repository its own `import.meta.url`, the URL of the .ts file, where
 * the compiled file's would be its place in the temporary folder: what a module finds next to
 * itself (the chat's page, the client's bundle) it finds as under tsx.
 */
const ownLocation: Plugin = {
  name: 'own-location',
  setup(context) {
    context.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (!args.path.startsWith(root) || args.path.includes(`${path.sep}node_modules${path.sep}`))
        return undefined
      const source = await readFile(args.path, 'utf8')
      if (!source.includes('import.meta.url')) return undefined
      return {
        contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: 'ts',
      }
    })
  },
}
