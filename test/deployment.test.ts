// docs/deployment.md shows the nginx configuration for one node that this test runs, word for
// word, with Debian's nginx in front of a real Parley server, over every transport, and what its
// access log keeps of a session id.
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import type { FastifyServerOptions } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeClients,
  next,
  startServer,
  type TestServer,
  until,
} from '../packages/client/test/helpers.js'
import { type Nginx, nginxConfig, skipNginxSuites, startNginx } from './support/nginx.js'

const skip = skipNginxSuites()
let server: TestServer | undefined
let nginx: Nginx | undefined

afterEach(async () => {
  closeClients()
  await nginx?.stop()
  await server?.close()
  nginx = undefined
  server = undefined
})

describe('the nginx configuration in docs/deployment.md', () => {
  it('is what test/support/nginx.ts generates for one node', () => {
    const doc = readFileSync(new URL('../docs/deployment.md', import.meta.url), 'utf8')
    const shown = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1]
    const generated = nginxConfig({
      dir: '/var/lib/parley-nginx',
      host: '0.0.0.0',
      port: 80,
      upstreamPorts: [3000],
    })
    expect(shown).toBe(generated)
  })

  it.skipIf(skip).each(['websocket', 'sse', 'polling'] as const)(
    'carries a session over %s from a client to a node behind it',
    async (transport) => {
      server = await startServer((app) => {
        ;(app as unknown as { parley: { on(e: string, f: (s: never) => void): void } }).parley.on(
          'connection',
          (socket: { on(e: string, f: (v: unknown, ack: (r: unknown) => void) => void): void }) =>
            socket.on('echo', (value, ack) => ack(value)),
        )
      })
      nginx = await startNginx([server.port])
      const socket = client(`${nginx.url}/parley`, { transports: [transport] })
      await next(socket, 'connect', 5000)
      expect(socket.transport).toBe(transport)
      expect(await socket.timeout(5000).emitWithAck('echo', 'through nginx')).toBe('through nginx')
    },
  )

  // Every way of writing the key that the server reads as `sid` (its query parser decodes
  // percent-escapes in keys; its router starts the query at a `#` when no `?` came first, and
  // at a `;` where the application turned Fastify's `useSemicolonDelimiter` on, as here).
  it.skipIf(skip)('logs no whole session id, however the request writes its key', async () => {
    // Fastify hands the option on to its router, whose types do not list it.
    const routerOptions: NonNullable<FastifyServerOptions['routerOptions']> & {
      useSemicolonDelimiter: boolean
    } = { useSemicolonDelimiter: true }
    server = await startServer(undefined, {}, 0, { routerOptions })
    nginx = await startNginx([server.port])
    // A polling client, whose session id its fetch tells (the client keeps it to itself).
    const sids = new Set<string>()
    const recording: typeof fetch = (input, init) => {
      const sid = new URL(String(input instanceof Request ? input.url : input)).searchParams.get('sid')
      if (sid) sids.add(sid)
      return fetch(input, init)
    }
    const socket = client(`${nginx.url}/parley`, { transports: ['polling'], fetch: recording })
    await next(socket, 'connect', 5000)
    await until(() => sids.size > 0, 5000, 'the first GET of the session')
    const [sid] = [...sids] as [string]
    // Each request is written up to the sid's value, then the value and what follows it; no
    // two start alike, nor like the client's own GETs (`?v=1&sid=`).
    const served = [
      ['/parley/poll?sid=', '&v=1&ack=0'],
      ['/parley/poll?v=1&%73id=', ''],
      ['/parley/poll?v=1&s%69d=', ''],
      ['/parley/poll?v=1&si%64=', ''],
      ['/parley/poll?%73%69%64=', '&v=1'],
      ['/parley/poll#sid=', '&v=1'],
      ['/parley/poll#s%69d=', '&v=1'],
      ['/parley/poll;sid=', '&v=1'],
      ['/parley/poll;v=1&s%69d=', ''],
    ] as const
    for (const [before, after] of served) {
      // Served as a GET of the session: the server read the key as `sid`.
      expect(await statusOf(nginx.port, `${before}${sid}${after}`), before).toBe(200)
    }
    // Two sids in one query (the server refuses it): the second one is dropped with the rest.
    const twice = ['/parley/poll?ack=0&sid=', `&%73id=${sid}`] as const
    await statusOf(nginx.port, `${twice[0]}${sid}${twice[1]}`)
    const all = [...served, twice]
    const logged = () => nginx!.requests().map((r) => r.url)
    await until(
      () => all.every(([before]) => logged().some((url) => url.startsWith(before))),
      5000,
      'an access log line for each request',
    )
    expect(readFileSync(join(nginx.dir, 'access.log'), 'utf8')).not.toContain(sid)
    // Each cut after the first six characters of its first sid.
    for (const [before] of all) expect(logged()).toContain(`${before}${sid.slice(0, 6)}...`)
  })
})

/** The status of a GET of `path` through nginx, written on the wire as it is (`#` included). */
function statusOf(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, (res) => {
      resolve(res.statusCode)
      // A held poll: its status is all this needs, and nginx logs it once it ends.
      request.destroy()
    })
    request.on('error', reject)
    request.end()
  })
}
