// The scripts the bench runs in processes of their own (servers, load generators), compiled
// once per run to plain JavaScript. A fork of a TypeScript file under tsx took about 2 s to be
// ready, most of what a `--quick` run spent per measurement; a compiled one starts in a
// fraction of that. What is measured is unchanged: the libraries come from node_modules as
// before, and only the bench's own code is compiled.
import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { build } from 'esbuild'

/**
 * Compiles `files` (in `src/`), each with the bench's own modules it imports, leaving packages
 * to Node. The output sits under `node_modules/.cache`, so that Node finds the bench's packages
 * from there as it does from `src/`, in a folder of this process's own, removed when it exits.
 * Resolves with the path of each compiled file by name.
 */
export async function compileChildren(
  benchDir: string,
  files: readonly string[],
): Promise<Map<string, string>> {
  const outdir = path.join(benchDir, 'node_modules', '.cache', 'parley-bench', String(process.pid))
  mkdirSync(outdir, { recursive: true })
  process.once('exit', () => rmSync(outdir, { recursive: true, force: true }))
  await build({
    entryPoints: files.map((file) => path.join(benchDir, 'src', file)),
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  })
  return new Map(files.map((file) => [file, path.join(outdir, file.replace(/\.ts$/, '.mjs'))]))
}
