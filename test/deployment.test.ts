// docs/deployment.md shows the nginx configuration for one node that this test runs, word for
// word, with Debian's nginx in front of a real Parley server, over every transport.
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeClients, next, startServer, type TestServer } from '../packages/client/test/helpers.js'
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
})
