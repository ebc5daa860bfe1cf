// Builds the browser bundle (dist/parley.min.js: IIFE, global `Parley`). With --size it writes
// nothing: it prints the bundle's minified and gzipped size, what each input file adds to it, and
// exits with 1 when the bundle is over its budget (test/size.test.ts runs it).
import { writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/** Most bytes of dist/parley.min.js after gzip -9. Raise it only with a reason in the commit. */
const BUDGET = 11_000

/** See `mangleProps` below. */
const INTERNAL_PROPS = [
  // transports
  'attach',
  'closed',
  'ctl',
  'deliver',
  'downstream',
  'fail',
  'fetchFn',
  'finish',
  'teardown',
  'url',
  // packets ready to send, the session, acks
  'acked',
  'binary',
  'bytes',
  'flushAck',
  'forget',
  'inSeq',
  'keep',
  'kept',
  'outSeq',
  'packet',
  'receive',
  'register',
  'rejectAll',
  'settle',
  'timer',
  // the connection, the session and their hosts
  'ackDelay',
  'current',
  'moved',
  'pooled',
  'refused',
  'sendNumbered',
  'sendVolatile',
  'attempts',
  'down',
  'ended',
  'hello',
  'lost',
  'notify',
  'opened',
  'state',
  // the emitter
  'fire',
]

const sizeOnly = process.argv.includes('--size')
const result = await build({
  entryPoints: ['src/browser.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  // Cuts Node-only code (the lookup of the `ws` package) out of the browser bundle.
  define: { 'globalThis.PARLEY_BROWSER_BUNDLE': 'true' },
  // Shortens property names that live only inside the client: never a wire field, an option, a
  // public member, or a member of a platform object (fetch, streams, WebSocket, DOM). A name
  // added here must stay that way; test/browser.test.ts runs the bundle over every transport.
  mangleProps: new RegExp(`^(${INTERNAL_PROPS.join('|')})$`),
  // Bundle the protocol from its sources, so the bundle never lags behind an unbuilt dist.
  alias: { '@parley/protocol': '../protocol/src/index.ts' },
  write: false,
  outfile: 'dist/parley.min.js',
  sourcemap: sizeOnly ? 'external' : false,
})
const out = result.outputFiles.find((f) => f.path.endsWith('.js'))
const gzipped = (text) => gzipSync(text, { level: 9 }).length

if (!sizeOnly) {
  writeFileSync(out.path, out.contents)
} else {
  const gz = gzipped(out.contents)
  console.log(`parley.min.js: ${out.contents.length} bytes minified, ${gz} bytes min+gzip`)
  console.log(`budget: ${BUDGET} bytes min+gzip (${gz <= BUDGET ? 'within' : 'OVER'})`)
  const map = JSON.parse(result.outputFiles.find((f) => f.path.endsWith('.map')).text)
  console.log('what each input adds (gzip of the bundle without it; the parts sum to more than the whole):')
  for (const [file, min, gzip] of byInput(out.text, map)) {
    console.log(`  ${String(gzip).padStart(5)} gzip ${String(min).padStart(6)} min  ${file}`)
  }
  if (gz > BUDGET) process.exitCode = 1
}

/**
 * [file, minified bytes, gzip bytes it adds] per input, largest first. Each output character is
 * owned by the source its source-map segment points at; an input "adds" what the bundle's gzip
 * size loses when its characters are cut out.
 */
function byInput(code, map) {
  const owner = new Int32Array(code.length).fill(-1)
  const digits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  let lineStart = 0
  let source = 0
  const lines = code.split('\n')
  map.mappings.split(';').forEach((line, i) => {
    const points = []
    let column = 0
    for (const segment of line ? line.split(',') : []) {
      const fields = []
      let value = 0
      let shift = 0
      for (const ch of segment) {
        const d = digits.indexOf(ch)
        value += (d & 31) << shift
        shift += 5
        if (d & 32) continue
        fields.push(value & 1 ? -(value >> 1) : value >> 1)
        value = 0
        shift = 0
      }
      column += fields[0]
      if (fields.length > 1) source += fields[1]
      points.push([column, fields.length > 1 ? source : -1])
    }
    const length = lines[i]?.length ?? 0
    points.forEach(([start, src], k) => {
      owner.fill(src, lineStart + start, lineStart + (points[k + 1]?.[0] ?? length))
    })
    lineStart += length + 1
  })
  const whole = gzipped(code)
  const rows = []
  for (let s = -1; s < map.sources.length; s++) {
    let rest = ''
    let min = 0
    for (let i = 0; i < code.length; i++) {
      if (owner[i] === s) min++
      else rest += code[i]
    }
    if (min === 0) continue
    const file = s < 0 ? '(esbuild runtime, unmapped)' : map.sources[s].replace(/^(\.\.\/)+/, '')
    rows.push([file, min, whole - gzipped(rest)])
  }
  return rows.sort((a, b) => b[2] - a[2])
}
