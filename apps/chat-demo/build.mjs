// Bundles the page script. The Parley client itself is not bundled in: the page loads the
// client package's own browser build, as a user's page would.
import { build } from 'esbuild'

await build({
  entryPoints: [new URL('./src/page/main.ts', import.meta.url).pathname],
  outfile: new URL('./public/app.js', import.meta.url).pathname,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2022'],
  platform: 'browser',
  logLevel: 'warning',
})
