// Builds the two browser files, both minified, with all three transports:
// - dist/parley.min.js: IIFE for a script tag, defines the global `Parley`;
// - dist/parley.browser.js: ESM, what the package's `browser` export condition gives a user's
//   bundler (`import { connect } from '@parley/client'`), so that it bundles the same small code.
// With --size it also prints, for each, its min+gzip size against its budget, what each input file
// adds to the script-tag bundle, and exits with 1 when either is over (test/size.test.ts runs it).
// The ESM file is measured the way a user's build sees it: esbuild bundling the package's entry
// through its `exports`, platform browser.
import { renameSync, writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { minify } from 'terser'

/**
 * Most bytes of dist/parley.min.js after gzip -9. Raise it only with a reason in the commit.
 * The client README and docs/client-size.md show the sizes and budgets; test/size.test.ts
 * checks that they agree with this build.
 */
const BUDGET = 11_907
/**
 * Most bytes, after gzip -9, of what esbuild (bundle, minify, platform browser, format ESM) makes
 * of `import { connect } from '@parley/client'`. Raise it only with a reason in the commit. The
 * aim is 8192; docs/client-size.md says what stands in the way.
 */
const BUNDLED_BUDGET = 12_048

/** See `mangleProps` below. */
const INTERNAL_PROPS = [
  // transports
  'attach',
  'closed',
  'ctl',
  'decoded',
  'deliver',
  'downstream',
  'fail',
  'fetchFn',
  'ackParam',
  'leave',
  'finish',
  'setup',
  'teardown',
  'url',
  // packets ready to send, the session, acks
  'acked',
  'badAck',
  'answered',
  'acks',
  'frame',
  'bytes',
  'flushAck',
  'forget',
  'inSeq',
  'keep',
  'ledger',
  'kept',
  'nextId',
  'outSeq',
  'packet',
  'receive',
  'register',
  'rejectAll',
  'settle',
  'about',
  'encodeChecked',
  'takeAck',
  'takeOwed',
  'timer',
  // the connection, the session and their hosts
  'ackAfter',
  'ackDelay',
  'connection',
  'current',
  'moved',
  'pooled',
  'unsent',
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
  'fn',
  // methods and entries no platform object has
  'event',
  'handedOff',
  'ids',
  'next',
  'open',
  'opts',
  'query',
  'reset',
  'welcome',
  'payloadMax',
  'recall',
  'note',
]

const sizeOnly = process.argv.includes('--size')
/** What both browser files share. */
const browser = {
  bundle: true,
  minify: true,
  platform: 'browser',
  target: 'es2022',
  // Cuts Node-only code (the lookup of the `ws` package) out of the browser files.
  define: { 'globalThis.PARLEY_BROWSER_BUNDLE': 'true' },
  // Shortens property names that live only inside the client: never a wire field, an option, a
  // public member, or a member of a platform object (fetch, streams, WebSocket, DOM). A name
  // added here must stay that way; test/browser.test.ts runs the bundle over every transport.
  mangleProps: new RegExp(`^(${INTERNAL_PROPS.join('|')})$`),
  // Bundle the protocol from its sources, so the bundle never lags behind an unbuilt dist.
  alias: { '@parley/protocol': '../protocol/src/index.ts' },
  write: false,
}
const [result, esm] = await Promise.all([
  build({
    ...browser,
    entryPoints: ['src/browser.ts'],
    format: 'iife',
    outfile: 'dist/parley.min.js',
    sourcemap: sizeOnly ? 'external' : false,
  }),
  build({
    ...browser,
    // Everything but the whitespace, which terser takes out below (compressing once more):
    // esbuild's own whitespace pass drops the `/* @__PURE__ */` marks that let the user's bundler
    // leave out an export the page does not import (CloseReason).
    minify: false,
    minifySyntax: true,
    minifyIdentifiers: true,
    entryPoints: ['src/index.ts'],
    format: 'esm',
    outfile: 'dist/parley.browser.js',
  }),
])
const out = result.outputFiles.find((f) => f.path.endsWith('.js'))
const gzipped = (text) => gzipSync(text, { level: 9 }).length
// terser after esbuild, on both files: it compresses and names a little better. Its options are
// chosen by measure (min+gzip, and for the ESM file what the user's bundler then makes of it):
// `hoist_funs` puts the function declarations of every module together at the top, where gzip
// finds more of each in the others; statements left unjoined (`sequences`), functions used once
// left where they are (`reduce_funcs`), and conditionals and booleans as esbuild wrote them
// repeat more from one function to the next, and so do comparisons left as written
// (`comparisons`) and constants left on the right of `===` as esbuild wrote them
// (`lhs_constants`, in the script-tag file only: the user's bundle of the ESM file took 2 bytes
// more with it). Together 1 to 2% after gzip. The ESM file is only compressed, not mangled (the
// user's bundler names again), and keeps its PURE marks.
const compress = {
  hoist_funs: true,
  sequences: false,
  reduce_funcs: false,
  conditionals: false,
  booleans: false,
  comparisons: false,
}
const iife = (
  await minify(out.text, { ecma: 2022, compress: { ...compress, passes: 2, lhs_constants: false } })
).code
const esmText = (
  await minify(esm.outputFiles[0].text, {
    ecma: 2022,
    module: true,
    // A copy: terser writes into the options it is given.
    compress: { ...compress },
    mangle: false,
    format: { preserve_annotations: true },
  })
).code

// Written whole or not at all (write, then rename): tests running meanwhile load these files,
// and may be building them too (hence a temporary name of this process's own).
for (const [path, contents] of [
  [out.path, iife],
  [esm.outputFiles[0].path, esmText],
]) {
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, contents)
  renameSync(temporary, path)
}

if (sizeOnly) {
  const gz = gzipped(iife)
  console.log(`parley.min.js: ${Buffer.byteLength(iife)} bytes minified, ${gz} bytes min+gzip`)
  console.log(`budget: ${BUDGET} bytes min+gzip (${gz <= BUDGET ? 'within' : 'OVER'})`)
  const bundled = await userBundle()
  const bundledGz = gzipped(bundled)
  console.log(
    `import { connect } from '@parley/client', bundled for browsers: ${bundled.length} bytes minified, ${bundledGz} bytes min+gzip`,
  )
  console.log(
    `bundled budget: ${BUNDLED_BUDGET} bytes min+gzip (${bundledGz <= BUNDLED_BUDGET ? 'within' : 'OVER'})`,
  )
  const map = JSON.parse(result.outputFiles.find((f) => f.path.endsWith('.map')).text)
  console.log(
    'what each input adds to parley.min.js as esbuild writes it, before terser (gzip of the bundle without it; the parts sum to more than the whole):',
  )
  for (const [file, min, gzip] of byInput(out.text, map)) {
    console.log(`  ${String(gzip).padStart(5)} gzip ${String(min).padStart(6)} min  ${file}`)
  }
  if (gz > BUDGET || bundledGz > BUNDLED_BUDGET) process.exitCode = 1
}

/**
 * What a user's build makes of a page that connects: esbuild resolves `@parley/client` through
 * the package's `exports` (the package refers to itself by name), with the conditions of a
 * browser build.
 */
async function userBundle() {
  const user = await build({
    stdin: { contents: "import { connect } from '@parley/client'\nconnect()\n", resolveDir: '.' },
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    write: false,
  })
  return user.outputFiles[0].contents
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
