// Bundles the page script. The Parley client itself is not bundled in: the page loads the
// client package's own browser build, as a user's page would.
import { build } from 'esbuild'
import { writeAtomically } from './write-atomically.mjs'

const outfile = new URL('./public/app.js', import.meta.url).pathname

// Built in memory and written with a rename: a server (or a browser suite) reading the page
// while another process rebuilds it gets the old bundle or the new one, never half of one.
const { outputFiles } = await build({
  entryPoints: [new URL('./src/page/main.ts', import.meta.url).pathname],
  outfile,
  write: false,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2022'],
  platform: 'browser',
  logLevel: 'warning',
})
for (const file of outputFiles) await writeAtomically(file.path, file.contents)
