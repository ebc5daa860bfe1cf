// Builds the browser bundle (dist/parley.min.js: IIFE, global `Parley`) and, with --size,
// prints its minified and gzipped size instead of writing it.
import { writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const sizeOnly = process.argv.includes('--size')
const result = await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  globalName: 'Parley',
  platform: 'browser',
  target: 'es2022',
  // Only Node reaches for `ws` (browsers have WebSocket); the import is never bundled.
  external: ['ws'],
  // Bundle the protocol from its sources, so the bundle never lags behind an unbuilt dist.
  alias: { '@parley/protocol': '../protocol/src/index.ts' },
  write: false,
  outfile: 'dist/parley.min.js',
  metafile: sizeOnly,
})
const [out] = result.outputFiles
const gz = gzipSync(out.contents, { level: 9 }).length
if (sizeOnly) {
  console.log(`parley.min.js: ${out.contents.length} bytes minified, ${gz} bytes min+gzip`)
  const inputs = Object.entries(
    result.metafile.outputs[out.path.replace(`${process.cwd()}/`, '')]?.inputs ?? {},
  )
  // The protocol codec on its own, for scale: what the client adds is the difference.
  const codec = await build({
    entryPoints: ['../protocol/src/index.ts'],
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
  })
  console.log(
    `  of which @parley/protocol alone: ${gzipSync(codec.outputFiles[0].contents, { level: 9 }).length} bytes min+gzip`,
  )
  console.log('minified bytes by input:')
  for (const [file, info] of inputs.sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput)) {
    console.log(`  ${String(info.bytesInOutput).padStart(6)}  ${file}`)
  }
} else {
  writeFileSync(out.path, out.contents)
}
