// Client bundle sizes, gzip level 9. Parley's is the bundle the client package ships
// (dist/parley.min.js, made by packages/client/build.mjs, which `pnpm bench` builds first);
// socket.io-client is built the same way with esbuild: bundled, minified, IIFE, browser platform,
// ES2022. (Its own shipped dist/socket.io.min.js is larger; this is the fairer comparison.)
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

export async function bundleSizes(): Promise<Record<'parley' | 'socketio', BundleSize>> {
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
  return { parley, socketio }
}
