// The packages as users get them: packed, installed with npm in a fresh folder outside the
// workspace, then used as ESM (with their types) and through require(). Needs the npm
// registry (or npm's cache) for fastify, ws and redis, and the packages built (`pnpm test`
// builds them first).
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { pnpm } from './support/pnpm.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = ['protocol', 'server', 'client', 'redis']

// A server and a client in one script, over WebSocket and SSE: what a user tries first (the
// Redis adapter is only imported: no Redis here).
const APP = `
import Fastify from 'fastify'
import parley from '@parley/server'
import { connect, ErrorCode } from '@parley/client'
import { redisAdapter } from '@parley/redis'
if (typeof redisAdapter !== 'function') throw new Error('no redisAdapter')
const app = Fastify()
await app.register(parley)
app.parley.on('connection', (socket) => socket.on('echo', (v, ack) => ack(v)))
await app.listen({ port: 0, host: '127.0.0.1' })
const url = 'http://127.0.0.1:' + app.server.address().port
for (const transport of ['websocket', 'sse']) {
  const socket = connect(url, { transports: [transport], reconnection: false })
  const reply = await socket.timeout(5000).emitWithAck('echo', transport)
  if (reply !== transport || socket.transport !== transport) throw new Error('no echo over ' + transport)
  socket.disconnect()
}
await app.close()
console.log('ok', typeof ErrorCode.NOT_FOUND)
`

const TYPES = `
import Fastify from 'fastify'
import parley from '@parley/server'
import { connect, type ParleyError } from '@parley/client'
import { type RedisAdapter, RedisErrorCode, redisAdapter } from '@parley/redis'
import { createClient } from 'redis'
interface FromServer { news: (text: string) => void }
interface FromClient { chat: (text: string, ack: (ok: boolean) => void) => void }
const app = Fastify()
await app.register(parley)
app.parley.typed<FromClient, FromServer>().on('connection', (socket) => socket.on('chat', (text, ack) => ack(text.length > 0)))
const socket = connect<FromServer, FromClient>('http://127.0.0.1:1', { autoConnect: false })
socket.on('news', (text: string) => text.toUpperCase())
socket.on('connect_error', (error: ParleyError<string>) => error.code)
const ok: boolean = await socket.emitWithAck('chat', 'hi')
// Without maps, as the quick start writes it: callbacks typed with no annotations.
const untyped = connect('http://127.0.0.1:1', { autoConnect: false })
untyped.emit('x', { a: 1 }, (reply) => reply)
untyped.timeout(1000).emit('x', { a: 1 }, (err, reply) => err?.code ?? reply)
app.parley.on('connection', (s) => s.emit('x', { a: 1 }, (reply) => reply))
app.parley.timeout(1000).emit('x', (err, replies) => err?.code ?? replies.length)
// The plugin's and the adapter's wiring (@internal) is not in the published types.
app.parley.on('connection', (s) => {
  // @ts-expect-error: internal
  void s.deliver
  // @ts-expect-error: internal
  void s.session
})
// @ts-expect-error: internal
void app.parley.takeLingering
// The adapter's types against the node-redis client the application makes.
const redis = createClient({ url: 'redis://127.0.0.1:1' })
const onRedis = Fastify()
await onRedis.register(parley, { adapter: redisAdapter({ client: redis, log: onRedis.log }) })
const unreachable: string = RedisErrorCode.UNREACHABLE
const lost: number = (onRedis.parley.adapter as RedisAdapter).stats.lostBroadcasts
export { lost, ok, unreachable }
`

const REQUIRE = `
const { connect } = require('@parley/client')
const { ErrorCode } = require('@parley/protocol')
console.log(typeof connect, ErrorCode.NOT_FOUND)
`

/** What the test reads of an installed package's package.json. */
interface Manifest {
  version: string
  publishConfig?: { access?: string }
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

let dir: string | undefined

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('the packed packages', () => {
  it('install with npm in a fresh folder, and work as ESM with types and through require()', async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-pack-'))
    // One pnpm for all four: each pnpm started costs more than the packing it does.
    await pnpm(['--recursive', '--filter', './packages/*', 'pack', '--pack-destination', dir], root)
    const tarballs = (await readdir(dir)).filter((f) => f.endsWith('.tgz'))
    expect(tarballs).toHaveLength(PACKAGES.length)
    const dependencies: Record<string, string> = {
      fastify: '^5.6.0',
      ws: '^8.18.0',
      redis: '^6.3.1',
      '@types/node': '^20.19.0',
    }
    for (const file of tarballs) {
      const name = PACKAGES.find((p) => file.startsWith(`parley-${p}-`))
      dependencies[`@parley/${name}`] = `file:./${file}`
    }
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'fresh', private: true, type: 'module', dependencies }),
    )
    // The registry's packages from npm's cache when it has them (it asks the registry only
    // for what is missing there); the tarballs are installed from the folder either way.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: dir,
      timeout: 150_000,
    })

    // Between Parley's packages as published: a peer dependency takes a range (a patch release
    // of the server must not fail npm's peer check of the adapter), a dependency on the protocol
    // names the exact release (see DEVELOPERS.md, "Releases").
    const installed = dir
    const manifest = async (name: string): Promise<Manifest> =>
      JSON.parse(await readFile(join(installed, 'node_modules', '@parley', name, 'package.json'), 'utf8'))
    const [server, client, redis, protocol] = await Promise.all(
      ['server', 'client', 'redis', 'protocol'].map(manifest),
    )
    expect(redis?.peerDependencies?.['@parley/server']).toBe(`^${server?.version}`)
    expect(server?.peerDependencies?.['@parley/client']).toBe(`^${client?.version}`)
    for (const dependent of [server, client, redis]) {
      expect(dependent?.dependencies?.['@parley/protocol']).toBe(protocol?.version)
    }
    // Scoped packages are published restricted (paid, private) unless they say otherwise.
    for (const published of [server, client, redis, protocol])
      expect(published?.publishConfig?.access).toBe('public')

    await writeFile(join(dir, 'app.mjs'), APP)
    await writeFile(join(dir, 'app.cjs'), REQUIRE)
    // The published types, as a strict TypeScript project of the user's would see them.
    await writeFile(join(dir, 'check.ts'), TYPES)
    const tsconfig = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['esnext'],
        skipLibCheck: false,
        types: ['node'],
      },
      files: ['check.ts'],
    }
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig))
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    // The typecheck (the longest step) runs while the two scripts run: none writes to the folder.
    const typecheck = run(process.execPath, [tsc, '-p', 'tsconfig.json'], {
      cwd: dir,
      timeout: 60_000,
    }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    )
    const app = await run(process.execPath, ['app.mjs'], { cwd: dir, timeout: 30_000 })
    expect(app.stdout.trim()).toBe('ok string')
    const required = await run(process.execPath, ['app.cjs'], { cwd: dir, timeout: 30_000 })
    expect(required.stdout.trim()).toBe('function PARLEY_NOT_FOUND')
    expect(await typecheck).toBe('')
  }, 240_000)
})
