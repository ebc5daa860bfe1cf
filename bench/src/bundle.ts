// Client bundle sizes, both built the way packages/client/build.mjs builds Parley's: esbuild,
// bundled, minified, IIFE, browser platform, ES2022, `ws` left out; then gzip level 9.
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
  const out = result.outputFiles![0]!.contents
  return { minBytes: out.length, gzipBytes: gzipSync(out, { level: 9 }).length }
}

export async function bundleSizes(): Promise<Record<'parley' | 'socketio', BundleSize>> {
  const parley = await measure({
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
