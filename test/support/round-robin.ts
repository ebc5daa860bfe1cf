// A loopback HTTP proxy that sends each request to the next of several backends in turn, as a
// load balancer without session affinity does. WebSocket upgrades take turns too: each one, once
// the backend switched protocols, is piped, raw bytes both ways. Like nginx, it keeps the
// hop-by-hop headers for itself both ways (see hop-by-hop.ts): its connections to its clients
// live as long as it decides, whatever a backend's `Connection` says. With a `prefix`, it serves
// its backends under that path alone, which it strips from what it sends them, as a proxy that
// puts a node behind a path does (`location /node-a/ { proxy_pass http://node-a/; }`): anything
// else gets its 404. Listens on 127.0.0.1 only, and connects only to 127.0.0.1.
import http from 'node:http'
import type net from 'node:net'
import { endToEnd, endToEndLines } from './hop-by-hop.js'

export interface RoundRobinProxy {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** Requests (upgrades included) forwarded to each backend, by index. */
  readonly forwarded: number[]
  /** WebSocket upgrades forwarded to each backend, by index. */
  readonly upgrades: number[]
  /** Backends skipped in turn, by index (say, the node that owns a session). */
  readonly avoid: Set<number>
  /** While true, every new connection is dropped at once: the network is down. */
  offline: boolean
  /** Puts a backend started later (a node that joins) in the turn; returns its index. */
  add(port: number): number
  /** Destroys every live connection, both sides, as a network cut would. */
  cut(): void
  close(): Promise<void>
}

export async function startRoundRobin(
  ports: number[],
  { prefix }: { prefix?: string } = {},
): Promise<RoundRobinProxy> {
  /** The path sent to a backend: `url` without the prefix; undefined when it is not under it. */
  const backendPath = (url = '/') => {
    if (prefix === undefined) return url
    return url.startsWith(`${prefix}/`) ? url.slice(prefix.length) : undefined
  }
  const forwarded = ports.map(() => 0)
  const upgrades = ports.map(() => 0)
  const avoid = new Set<number>()
  const agent = new http.Agent({ keepAlive: false })
  const sockets = new Set<net.Socket>()
  const track = (socket: net.Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  }
  let turn = 0
  const nextBackend = () => {
    for (let tries = 0; tries < ports.length; tries++) {
      const i = turn++ % ports.length
      if (!avoid.has(i)) return i
    }
    return turn++ % ports.length
  }
  const server = http.createServer((req, res) => {
    const path = backendPath(req.url)
    if (path === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not under the prefix')
      return
    }
    const i = nextBackend()
    forwarded[i]!++
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: ports[i],
        method: req.method,
        path,
        headers: endToEnd(req.headers),
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers))
        answer.pipe(res)
        // A backend that breaks off mid-answer (a stream it cut) breaks the client's too, as a
        // real balancer does; `pipe` alone would leave the client waiting on a dead stream.
        answer.on('close', () => {
          if (!answer.complete) res.destroy()
        })
      },
    )
    upstream.on('socket', track)
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const path = backendPath(req.url)
    if (path === undefined) {
      client.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    const i = nextBackend()
    forwarded[i]!++
    upgrades[i]!++
    // The upgrade asked for again, as nginx asks for it (`Connection: upgrade`), the rest of the
    // request's own hop-by-hop headers kept here.
    const headers = { ...endToEnd(req.headers), connection: 'Upgrade', upgrade: req.headers.upgrade }
    const upstream = http.request({
      host: '127.0.0.1',
      port: ports[i],
      method: req.method,
      path,
      headers,
      agent,
    })
    upstream.on('socket', track)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('upgrade', (answer: http.IncomingMessage, backend: net.Socket, answerHead: Buffer) => {
      backend.on('error', () => client.destroy())
      client.on('error', () => backend.destroy())
      backend.on('close', () => client.destroy())
      client.on('close', () => backend.destroy())
      const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`]
      lines.push(...endToEndLines(answer.rawHeaders, answer.headers.connection))
      lines.push('Connection: Upgrade', `Upgrade: ${answer.headers.upgrade ?? ''}`)
      client.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (answerHead.length > 0) client.write(answerHead)
      if (head.length > 0) backend.write(head)
      client.pipe(backend)
      backend.pipe(client)
    })
    // Refused (any answer but 101): that answer, with its body and without the backend's
    // hop-by-hop headers. The connection is the upgrade's, no longer the HTTP server's: it
    // takes no other request, and says so.
    upstream.on('response', (answer: http.IncomingMessage) => {
      const body: Buffer[] = []
      answer.on('data', (chunk: Buffer) => body.push(chunk))
      answer.on('end', () => {
        const text = Buffer.concat(body)
        const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`]
        for (const line of endToEndLines(answer.rawHeaders, answer.headers.connection))
          if (!/^content-length:/i.test(line)) lines.push(line)
        lines.push(`Content-Length: ${text.length}`, 'Connection: close')
        client.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), text]))
      })
      answer.on('close', () => {
        if (!answer.complete) client.destroy()
      })
    })
    upstream.end()
  })
  server.on('connection', (socket: net.Socket) => {
    if (proxy.offline) socket.destroy()
    else track(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  const proxy: RoundRobinProxy = {
    url: `http://127.0.0.1:${port}`,
    forwarded,
    upgrades,
    avoid,
    offline: false,
    add(backend) {
      forwarded.push(0)
      upgrades.push(0)
      return ports.push(backend) - 1
    },
    cut() {
      for (const socket of sockets) socket.destroy()
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return proxy
}
