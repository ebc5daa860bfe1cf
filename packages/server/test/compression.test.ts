// gzip of long-polling answers: on for long answers when the client accepts it, never required.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from '@parley/client'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { acceptsGzip } from '../src/transports/polling.js'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'

const opened = closedAfterEach()

/** A polling client and its server socket; records the Content-Encoding of every poll answer. */
async function pollingPair(options: ParleyServerOptions) {
  const sockets: ServerSocket[] = []
  const encodings: string[] = []
  opened.started = await startServer(options, (app) => {
    app.parley.on('connection', (s) => sockets.push(s))
    app.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== 'GET' || !req.url?.includes('/poll')) return
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse
      res.writeHead = ((status: number, headers?: Record<string, string>) => {
        encodings.push(headers?.['Content-Encoding'] ?? 'identity')
        return writeHead(status, headers)
      }) as typeof res.writeHead
    })
  })
  const client = connect(opened.started.base, { transports: ['polling'], reconnection: false })
  opened.parleyClients.push(client)
  await until(() => sockets.length === 1 && client.connected, 5000, 'connected')
  return { socket: sockets[0]!, client, encodings }
}

describe('polling answers', () => {
  const long = 'x'.repeat(5000)
  const longer = 'é€'.repeat(12_000)

  it('are gzipped from the threshold on, and arrive intact', async () => {
    const { socket, client, encodings } = await pollingPair({})
    const got: string[] = []
    client.on('text', (t: string) => got.push(t))
    socket.emit('text', 'short')
    await until(() => got.length === 1)
    socket.emit('text', long)
    await until(() => got.length === 2)
    // Answers of 32 KiB and more are built as bytes before they are gzipped.
    socket.emit('text', longer)
    socket.emit('text', 'after')
    await until(() => got.length === 4)
    expect(got).toEqual(['short', long, longer, 'after'])
    expect(encodings).toContain('gzip')
    // The short answer went as it was.
    expect(encodings.filter((e) => e === 'identity').length).toBeGreaterThan(0)
  })

  it('are never gzipped with pollingCompression: false', async () => {
    const { socket, client, encodings } = await pollingPair({ pollingCompression: false })
    const got: string[] = []
    client.on('text', (t: string) => got.push(t))
    socket.emit('text', long)
    await until(() => got.length === 1)
    socket.emit('text', longer)
    await until(() => got.length === 2)
    expect(got).toEqual([long, longer])
    expect(encodings.length).toBeGreaterThan(0)
    expect(encodings.every((e) => e === 'identity')).toBe(true)
  })

  it('read Accept-Encoding as HTTP means it', () => {
    const cases: [string | undefined, boolean][] = [
      [undefined, false],
      ['', false],
      ['gzip', true],
      ['gzip, deflate, br', true],
      ['br;q=1.0, GZIP;q=0.5', true],
      ['gzip;q=0', false],
      ['gzip; q=0.000', false],
      ['*', true],
      ['*;q=0', false],
      ['deflate, br', false],
      ['x-gzip', false],
    ]
    for (const [header, expected] of cases) expect([header, acceptsGzip(header)]).toEqual([header, expected])
  })
})
