// The nginx configuration of docs/scaling.md, run: after every node has refused a connection
// once (as each does for a moment when it restarts), nginx must still pass new WebSocket
// upgrades while the earlier ones stay open. With nginx's passive health check on
// (`max_fails=1`), it does not: a node marked failed is cleared only when a request sent after
// the mark has ended, which an open WebSocket never does, and nginx answers 502 ("no live
// upstreams") to nearly every new client. The nodes here are bare HTTP servers that accept
// upgrades (a 101, then the socket kept open), which is all nginx looks at.
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type Nginx, skipNginxSuites, startNginx } from '../support/nginx.js'

/** An upstream that accepts every WebSocket upgrade and keeps the socket open. */
class UpgradeNode {
  readonly #sockets = new Set<Socket>()
  #server: http.Server | undefined
  port = 0

  async listen(port = 0): Promise<void> {
    const server = http.createServer((_req, res) => res.end('ok'))
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
    server.on('upgrade', (req, socket: Socket) => {
      const key = String(req.headers['sec-websocket-key'])
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      )
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    this.#server = server
    this.port = (server.address() as { port: number }).port
  }

  /** Stops listening and drops every connection: the node is gone, its port refuses. */
  async close(): Promise<void> {
    const server = this.#server
    if (!server) return
    this.#server = undefined
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** Asks nginx for an upgrade; resolves with 101 (the socket then stays open) or the status. */
function upgrade(url: string, open: Socket[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/parley/ws`, {
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    })
    req.on('upgrade', (_res, socket: Socket) => {
      open.push(socket)
      resolve(101)
    })
    req.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

describe.skipIf(skipNginxSuites())('nginx with the configuration of docs/scaling.md', () => {
  const nodes = [new UpgradeNode(), new UpgradeNode()]
  const open: Socket[] = []
  let nginx: Nginx | undefined

  afterEach(async () => {
    for (const socket of open) socket.destroy()
    await nginx?.stop()
    await Promise.all(nodes.map((n) => n.close()))
  })

  it('passes every new WebSocket upgrade after each node refused a connection once', async () => {
    for (const node of nodes) await node.listen()
    nginx = await startNginx(nodes.map((n) => n.port))
    // Each node in turn goes away and comes back on its port; the upgrades meanwhile meet its
    // refusal (round-robin sends one of two there) and go on to the other node.
    for (const node of nodes) {
      await node.close()
      expect(await Promise.all([upgrade(nginx.url, open), upgrade(nginx.url, open)])).toEqual([101, 101])
      await node.listen(node.port)
    }
    // The refusals happened: both nodes have failed once in nginx's eyes.
    expect(nginx.errors().match(/connect\(\) failed \(111/g)?.length).toBeGreaterThanOrEqual(2)
    // New clients keep coming while the earlier ones stay connected.
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) statuses.push(await upgrade(nginx.url, open))
    expect(statuses.filter((s) => s !== 101)).toEqual([])
  })
})
