// An event stream reaches the client in whatever pieces the network and the proxies between cut
// it into: across lines, across `\r\n`, inside a character of several bytes. The client must read
// the same events whatever the cuts, and what the event-stream format allows besides `data:`
// (comments, `id:` and `event:` lines, an event's data over several `data:` lines, `\r\n` line
// ends) must change nothing. The real server writes each event whole, so a stand-in server
// writes a fixed stream, cut where fast-check says, a piece at a time.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { encodeText, PacketType } from '@parley/protocol'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { client, closeClients, until } from './helpers.js'

const OPEN = JSON.stringify([
  0,
  {
    sid: 'SSEFRAMING_sid_123456',
    id: 'SSEFRAMING_id_1234567',
    pingInterval: 20_000,
    pingTimeout: 20_000,
    maxPayload: 1_000_000,
    transports: ['sse'],
    recovered: false,
    ack: 0,
  },
])

const COUNT = 6
/** Text of several bytes per character: a cut may fall inside one. */
const text = (n: number) => `héllo wörld ${n} 🌍 ✓`
const event = (n: number) =>
  encodeText({ type: PacketType.EVENT, seq: n, name: 'news', args: [n, text(n)], ackId: 0 })

/** The stream: a comment first, then the events, with the format's other lines among them. */
function stream(eol: '\n' | '\r\n'): Buffer {
  const lines: string[] = [': a comment, as the server sends ahead of the events', '']
  for (let n = 1; n <= COUNT; n++) {
    const data = event(n)
    if (n === 3) {
      // One event's data over two `data:` lines: the reader joins them with a line feed, which
      // JSON reads as white space.
      const cut = data.indexOf(',"news"')
      lines.push(`data: ${data.slice(0, cut)}`, `data:${data.slice(cut)}`, '')
    } else if (n === 4) {
      lines.push(`id: ${n}`, 'event: message', `data: ${data}`, '')
    } else lines.push(`data: ${data}`, '')
  }
  return Buffer.from(lines.map((line) => line + eol).join(''))
}

/** Serves the handshake, and the stream cut at `cuts` (byte offsets), a piece per turn. */
function standIn(): { server: Server; serve(next: { bytes: Buffer; cuts: number[] }): void } {
  let plan: { bytes: Buffer; cuts: number[] } = { bytes: Buffer.alloc(0), cuts: [] }
  const server = createServer((req, res) => {
    if (req.method === 'POST') {
      req.resume()
      req.on('end', () => {
        const sid = new URL(req.url ?? '/', 'http://stand-in').searchParams.get('sid')
        if (sid) res.writeHead(204).end()
        else res.writeHead(200, { 'content-type': 'text/plain' }).end(OPEN)
      })
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    const { bytes, cuts } = plan
    const bounds = [0, ...cuts, bytes.length]
    let i = 0
    const write = () => {
      if (i >= bounds.length - 1 || res.destroyed) return
      res.write(bytes.subarray(bounds[i]!, bounds[i + 1]!))
      i++
      setTimeout(write, 1)
    }
    write()
  })
  return {
    server,
    serve(next) {
      plan = next
    },
  }
}

describe('an SSE stream cut anywhere', () => {
  let stand: ReturnType<typeof standIn>
  beforeAll(async () => {
    stand = standIn()
    await new Promise<void>((resolve) => stand.server.listen(0, '127.0.0.1', resolve))
  })
  afterAll(async () => {
    closeClients()
    stand.server.closeAllConnections()
    await new Promise((resolve) => stand.server.close(resolve))
  })

  it('gives the same events, in order, whatever the cuts and the line ends', async () => {
    const plans = fc.constantFrom<'\n' | '\r\n'>('\n', '\r\n').chain((eol) => {
      const bytes = stream(eol)
      return fc
        .uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 })
        .map((cuts) => ({ bytes, cuts: cuts.sort((a, b) => a - b) }))
    })
    await fc.assert(
      fc.asyncProperty(plans, async (plan) => {
        stand.serve(plan)
        const { port } = stand.server.address() as AddressInfo
        const socket = client(`http://127.0.0.1:${port}/parley`, { transports: ['sse'] })
        const got: unknown[] = []
        const errors: unknown[] = []
        socket.on('news', (n: number, t: string) => got.push([n, t]))
        socket.on('error', (error) => errors.push(error))
        try {
          await until(() => got.length === COUNT, 3000, `${COUNT} events, got ${JSON.stringify(got)}`)
          expect(got).toEqual(Array.from({ length: COUNT }, (_, i) => [i + 1, text(i + 1)]))
          expect(errors).toEqual([])
        } finally {
          socket.disconnect()
        }
      }),
      {
        numRuns: 60,
        // A piece per byte: every cut there is, inside characters and between `\r` and `\n`.
        examples: [
          [
            {
              bytes: stream('\r\n'),
              cuts: Array.from({ length: stream('\r\n').length - 1 }, (_, i) => i + 1),
            },
          ],
        ],
      },
    )
  }, 60_000)
})
