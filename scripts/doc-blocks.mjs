// Typechecks every ```ts block of the READMEs and docs (`pnpm typecheck` runs this): each block
// becomes a module of its own under .doc-blocks/, compiled strictly against the packages'
// sources. A block may use a few names the text around it introduces (`app`, `socket`, ...):
// they are declared for it unless it declares them itself. A block that is not meant to
// compile says so: ```ts no-check.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = join(root, '.doc-blocks')

const docs = [
  'README.md',
  ...['protocol', 'server', 'client', 'redis'].map((p) => `packages/${p}/README.md`),
  'apps/chat-demo/README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/**
 * Names examples use without declaring them, and what they stand for: the objects the text
 * around a block talks about, and the application's own helpers an example calls.
 */
const AMBIENT = {
  app: "import('fastify').FastifyInstance",
  io: "import('@parley/server').ParleyServer",
  redis: "import('redis').RedisClientType",
  token: 'string',
  x: 'number',
  y: 'number',
  rooms: 'Set<string>',
  freshToken: '() => Promise<string>',
  isValid: '(token: string | undefined) => Promise<boolean>',
  userFor: '(token: string | undefined) => Promise<string>',
  rateLimiter: '{ tooFast(user: unknown): Promise<boolean> }',
  MyAdapter: "new (sockets: import('@parley/server').LocalSockets) => import('@parley/server').Adapter",
}
/** `socket` is the client's in the client's README, the server's everywhere else. */
const socketType = (doc) =>
  doc.startsWith('packages/client')
    ? "import('@parley/client').Socket"
    : "import('@parley/server').ServerSocket"

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const files = []
for (const doc of docs) {
  let text
  try {
    text = readFileSync(join(root, doc), 'utf8')
  } catch {
    continue
  }
  let i = 0
  for (const match of text.matchAll(/^```ts( no-check)?\n([\s\S]*?)^```/gm)) {
    if (match[1]) continue
    // Relative imports are relative to the document.
    const here = doc.includes('/') ? doc.slice(0, doc.lastIndexOf('/') + 1) : ''
    const body = match[2].replace(/from '\.\//g, `from '../${here}`)
    const line = text.slice(0, match.index).split('\n').length
    const declared = (name) =>
      new RegExp(
        `(const|let|var|function|class)\\s+${name}\\b|^import[^\\n]*\\b${name}\\b[^\\n]*from`,
        'm',
      ).test(body)
    const prelude = Object.entries({ ...AMBIENT, socket: socketType(doc) })
      .filter(([name]) => new RegExp(`\\b${name}\\b`).test(body) && !declared(name))
      .map(([name, type]) => `declare const ${name}: ${type}`)
    const file = `${doc.replace(/[/.]/g, '_')}_${++i}.ts`
    writeFileSync(join(out, file), `// ${doc}:${line}\n${prelude.join('\n')}\n${body}\nexport {}\n`)
    files.push(file)
  }
}
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    extends: '../tsconfig.base.json',
    compilerOptions: {
      noEmit: true,
      composite: false,
      declaration: false,
      declarationMap: false,
      sourceMap: false,
      types: ['node'],
      lib: ['ES2022', 'DOM'],
      noUnusedLocals: false,
      baseUrl: '..',
      paths: {
        '@parley/protocol': ['packages/protocol/src/index.ts'],
        '@parley/server': ['packages/server/src/index.ts'],
        '@parley/client': ['packages/client/src/index.ts'],
        '@parley/redis': ['packages/redis/src/index.ts'],
        // Dependencies of one package only, which examples of its README import.
        'prom-client': ['packages/server/node_modules/prom-client/index.d.ts'],
        '@sinclair/typebox': ['packages/server/node_modules/@sinclair/typebox/build/esm/index.d.mts'],
        '@fastify/websocket': ['packages/server/node_modules/@fastify/websocket/types/index.d.ts'],
        // The client README's example for a private CA (a dev dependency of the client's tests).
        undici: ['packages/client/node_modules/undici/index.d.ts'],
      },
    },
    files,
  }),
)
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
try {
  execFileSync(process.execPath, [tsc, '-p', relative(root, join(out, 'tsconfig.json'))], {
    cwd: root,
    stdio: 'inherit',
  })
  console.log(`doc blocks: ${files.length} TypeScript blocks compile`)
} catch {
  console.error(
    'doc blocks: a TypeScript block of the docs does not compile (see above; .doc-blocks/ keeps them)',
  )
  process.exit(1)
}
