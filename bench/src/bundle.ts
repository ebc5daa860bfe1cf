// Client bundle sizes, gzip level 9. Parley's is the bundle the client package ships
// (dist/parley.min.js, made by packages/client/build.mjs, which `pnpm bench` builds first);
// socket.io-client is built the same way with esbuild: bundled, minified, IIFE, browser platform,
// ES2022. (Its own shipped dist/socket.io.min.js is larger; this is the fairer comparison.)
// Beside the shipped file, what an application's bundler makes of `import { connect }`: esbuild,
// ESM, browser platform, resolved through @parley/client's `exports` (`ws`, which only its Node
// path imports, is left out as in every measurement here).
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { type BuildOptions, build } from 'esbuild'

export interface BundleSize {
  minBytes: number
  gzipBytes: number
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

async function measure(options: BuildOptions): Promise<BundleSize> {
  const result = await build({
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    external: ['ws'],
    write: false,
    logLevel: 'silent',
    ...options,
  })
  return sizeOf(result.outputFiles![0]!.contents)
}

function sizeOf(minified: Uint8Array): BundleSize {
  return { minBytes: minified.length, gzipBytes: gzipSync(minified, { level: 9 }).length }
}

export interface BundleSizes {
  /** dist/parley.min.js as shipped. */
  parley: BundleSize
  /**
   * What esbuild makes of an application's `import { connect } from '@parley/client'`: resolved
   * through the package's `exports` with the browser platform's conditions, so that a `browser`
   * condition, when the package has one, is what is measured. Undefined when it does not build.
   */
  parleyEsm: BundleSize | undefined
  socketio: BundleSize
}

export async function bundleSizes(): Promise<BundleSizes> {
  const shipped = here('../../packages/client/dist/parley.min.js')
  const parley = existsSync(shipped)
    ? sizeOf(readFileSync(shipped))
    : // Not built (a test run without `pnpm build`): an approximation from the sources.
      await measure({
        entryPoints: [here('../../packages/client/src/index.ts')],
        globalName: 'Parley',
        alias: { '@parley/protocol': here('../../packages/protocol/src/index.ts') },
      })
  const socketio = await measure({
    stdin: { contents: "export * from 'socket.io-client'", resolveDir: here('.'), loader: 'js' },
    globalName: 'io',
  })
  const parleyEsm = await measure({
    stdin: { contents: "export { connect } from '@parley/client'", resolveDir: here('.'), loader: 'js' },
    format: 'esm',
  }).catch(() => undefined)
  return { parley, parleyEsm, socketio }
}
