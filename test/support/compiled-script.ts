// A TypeScript entry of the repository compiled to one JavaScript file, for the tests that start
// it as a process of its own (cluster nodes, chat nodes): under tsx each start took about 2 s of
// compiling, where the compiled file starts in well under one.
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { readFile } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, type Plugin } from 'esbuild'

const root = fileURLToPath(new URL('../../', import.meta.url))
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url))

const compiled = new Map<string, Promise<string>>()

/**
 * The path of `entry` (a .ts file) compiled to one file with the Parley packages' sources it
 * imports (test/tsconfig.json maps each @parley package to its sources): the same code as under
 * tsx. Compiled once per process and entry, on first use. The file is named after its content, in
 * the system's temporary folder (never in the repository): test files running side by side
 * write it once between them, and a changed source gets a new one. Files no run used for a day
 * are removed.
 */
export function compiledScript(entry: string): Promise<string> {
  let file = compiled.get(entry)
  if (!file) {
    file = compile(entry).catch((error: unknown) => {
      // Tried again by the next start (a syntax error being fixed in watch mode).
      compiled.delete(entry)
      throw error
    })
    compiled.set(entry, file)
  }
  return file
}

async function compile(entry: string): Promise<string> {
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
    plugins: [installedPackages, ownLocation],
    logLevel: 'error',
  })
  const code = result.outputFiles[0]!.contents
  const dir = path.join(tmpdir(), 'parley-compiled-scripts')
  const file = path.join(dir, `${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`)
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true })
    // Whole or not at all: another test process may be reading it already.
    const partial = `${file}.${process.pid}`
    writeFileSync(partial, code)
    renameSync(partial, file)
  }
  // In use: its time says so to the pruning of another run.
  const now = new Date()
  utimesSync(file, now, now)
  pruneCompiled(dir, now.getTime() - KEEP_MS)
  return file
}

/** How long a compiled file no run used stays: a day, so that runs of other checkouts keep theirs. */
const KEEP_MS = 24 * 60 * 60 * 1000

/**
 * Removes the compiled files of `dir` last used before `before`: each source version leaves
 * one (about 330 KB), which nothing else would ever take away. A file another process removes
 * first, or one being written, is left alone.
 */
export function pruneCompiled(dir: string, before: number): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.mjs')) continue
    const file = path.join(dir, name)
    try {
      if (statSync(file).mtimeMs < before) unlinkSync(file)
    } catch {}
  }
}

/**
 * Leaves installed packages (fastify, redis, ws...) out of the compiled file, each imported by
 * the full path of the file Node would have loaded from where the source imports it, since the
 * compiled file sits where no node_modules can be found. The Parley packages are compiled in.
 */
const installedPackages: Plugin = {
  name: 'installed-packages',
  setup(context) {
    context.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === installedPackages || isBuiltin(args.path) || args.path.startsWith('@parley/')) {
        return undefined
      }
      const found = await context.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: installedPackages,
      })
      if (found.errors.length > 0) return { errors: found.errors }
      return { path: pathToFileURL(found.path).href, external: true }
    })
  },
}

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
