// A loopback HTTP proxy that sends each request to the next of several backends in turn, as a
// load balancer without session affinity does. WebSocket upgrades are not proxied. Listens on
// 127.0.0.1 only.
import http from 'node:http'
import type net from 'node:net'

export interface RoundRobinProxy {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** Requests forwarded to each backend, by index. */
  readonly forwarded: number[]
  close(): Promise<void>
}

export async function startRoundRobin(ports: number[]): Promise<RoundRobinProxy> {
  const forwarded = ports.map(() => 0)
  const agent = new http.Agent({ keepAlive: false })
  const sockets = new Set<net.Socket>()
  let turn = 0
  const server = http.createServer((req, res) => {
    const i = turn++ % ports.length
    forwarded[i]!++
    const upstream = http.request(
      { host: '127.0.0.1', port: ports[i], method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    forwarded,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
