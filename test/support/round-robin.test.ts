// The round-robin balancer of the tests keeps the hop-by-hop headers for itself both ways, as
// nginx does (RFC 9110 §7.6.1): a backend's `Connection: close` must not end the client's
// connection to the balancer (a client sending its next request on it would meet a cut), and
// what a client asks of its own connection must not reach the backend. Upgrades still go through.
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type RoundRobinProxy, startRoundRobin } from './round-robin.js'

/** Headers a backend answers with that concern its connection to the balancer alone. */
const BACKEND_HOPS = {
  Connection: 'close, X-Backend-Hop',
  'X-Backend-Hop': 'mine',
  'Keep-Alive': 'timeout=72',
  'Proxy-Authenticate': 'Basic realm="backend"',
  Trailer: 'X-Checksum',
  Upgrade: 'h2c',
}
const BACKEND_HOP_NAMES = ['x-backend-hop', 'proxy-authenticate', 'trailer', 'upgrade']

/** Headers a client sends that concern its connection to the balancer alone. */
const CLIENT_HOPS = {
  Connection: 'keep-alive, X-Client-Hop',
  'X-Client-Hop': 'mine',
  'Keep-Alive': 'timeout=30',
  'Proxy-Connection': 'keep-alive',
  'Proxy-Authorization': 'Basic dXNlcjpwYXNz',
  TE: 'trailers',
}

interface Backend {
  port: number
  /** The headers of each request it got, in order. */
  heard: http.IncomingHttpHeaders[]
  server: http.Server
}

/** A backend that answers each request with its path, chunked (no length), and `BACKEND_HOPS`. */
async function backend(): Promise<Backend> {
  const heard: http.IncomingHttpHeaders[] = []
  const server = http.createServer((req, res) => {
    heard.push(req.headers)
    res.writeHead(200, { ...BACKEND_HOPS, 'X-End': 'kept', 'Content-Type': 'text/plain' })
    res.write('you asked for ')
    res.end(req.url)
  })
  // An upgrade: switched to an echo, or, for /refused, refused with hop-by-hop headers of its own.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    heard.push(req.headers)
    if (req.url === '/refused') {
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nConnection: close, X-Backend-Hop\r\nX-Backend-Hop: mine\r\n' +
          'Keep-Alive: timeout=72\r\nUpgrade: websocket\r\nX-End: kept\r\nContent-Length: 4\r\n\r\nnope',
      )
      return
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nKeep-Alive: timeout=72\r\nX-End: kept\r\n\r\n',
    )
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, heard, server }
}

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  /** The request went on a connection an earlier one had used. */
  reused: boolean
}

function get(url: string, agent: http.Agent, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reused: req.reusedSocket }),
      )
    })
    req.on('error', reject)
  })
}

/** Sends `request` on a fresh connection to `port`; resolves with what came back until `done` says. */
function raw(
  port: number,
  request: string,
  done: (got: string) => boolean,
): Promise<{ got: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request))
    let got = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      got += chunk
      if (done(got)) resolve({ got, socket })
    })
    socket.on('error', reject)
    socket.on('close', () => resolve({ got, socket }))
  })
}

/** The header lines of a raw answer's head, names in lower case. */
function headLines(got: string): Map<string, string> {
  const head = got.slice(0, got.indexOf('\r\n\r\n')).split('\r\n').slice(1)
  return new Map(
    head.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  )
}

describe('the round-robin balancer of the tests', () => {
  const backends: Backend[] = []
  const agents: http.Agent[] = []
  let proxy: RoundRobinProxy | undefined

  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy()
    await proxy?.close()
    proxy = undefined
    for (const b of backends.splice(0)) {
      b.server.closeAllConnections()
      await new Promise<void>((resolve) => b.server.close(() => resolve()))
    }
  })

  async function start(): Promise<RoundRobinProxy> {
    backends.push(await backend(), await backend())
    proxy = await startRoundRobin(backends.map((b) => b.port))
    return proxy
  }

  it("keeps the client's connection open whatever the backends' Connection says, and drops their hop-by-hop headers", async () => {
    const balancer = await start()
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    const first = await get(`${balancer.url}/one`, agent)
    const second = await get(`${balancer.url}/two`, agent)

    expect(first.body).toBe('you asked for /one')
    expect(second.body).toBe('you asked for /two')
    // One connection for both, to two backends in turn.
    expect(second.reused).toBe(true)
    expect(balancer.forwarded).toEqual([1, 1])
    for (const { headers } of [first, second]) {
      expect(headers['x-end']).toBe('kept')
      for (const name of BACKEND_HOP_NAMES) expect(headers[name]).toBeUndefined()
      // The balancer's own, for its own connection.
      expect(headers.connection).toBe('keep-alive')
      expect(headers['keep-alive']).not.toBe(BACKEND_HOPS['Keep-Alive'])
    }
  })

  it("drops the client's hop-by-hop headers on the way to the backend", async () => {
    const balancer = await start()
    const agent = new http.Agent({ keepAlive: true })
    agents.push(agent)
    await get(`${balancer.url}/`, agent, { ...CLIENT_HOPS, 'X-End': 'kept' })

    const heard = backends[0]!.heard[0]!
    expect(heard['x-end']).toBe('kept')
    expect(heard.host).toBe(new URL(balancer.url).host)
    for (const name of [
      'x-client-hop',
      'keep-alive',
      'proxy-connection',
      'proxy-authorization',
      'te',
      'trailer',
    ])
      expect(heard[name]).toBeUndefined()
    // The balancer's own, for its own connection to the backend.
    expect(heard.connection).toBe('close')
  })

  it('still switches protocols on an upgrade, without the hop-by-hop headers but the upgrade', async () => {
    const balancer = await start()
    const { port } = new URL(balancer.url)
    const request =
      'GET /echo HTTP/1.1\r\nHost: parley.test\r\nConnection: Upgrade, X-Client-Hop\r\nUpgrade: echo\r\n' +
      'X-Client-Hop: mine\r\nKeep-Alive: timeout=30\r\nX-End: kept\r\n\r\n'
    const switched = await raw(Number(port), request, (got) => got.includes('\r\n\r\n'))
    const echoed = new Promise<string>((resolve) => switched.socket.once('data', resolve))
    switched.socket.write('ping')
    expect(await echoed).toBe('ping')
    switched.socket.destroy()

    expect(switched.got.startsWith('HTTP/1.1 101 ')).toBe(true)
    const answer = headLines(switched.got)
    expect(answer.get('connection')).toBe('Upgrade')
    expect(answer.get('upgrade')).toBe('echo')
    expect(answer.get('x-end')).toBe('kept')
    expect(answer.has('keep-alive')).toBe(false)
    const heard = backends[0]!.heard[0]!
    expect(heard.connection).toBe('Upgrade')
    expect(heard.upgrade).toBe('echo')
    expect(heard['x-end']).toBe('kept')
    expect(heard['x-client-hop']).toBeUndefined()
    expect(heard['keep-alive']).toBeUndefined()
    expect(balancer.upgrades).toEqual([1, 0])
  })

  it('passes on a refused upgrade with its body, without the hop-by-hop headers of the backend', async () => {
    const balancer = await start()
    const { port } = new URL(balancer.url)
    const request =
      'GET /refused HTTP/1.1\r\nHost: parley.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n'
    const { got } = await raw(Number(port), request, () => false)

    expect(got.startsWith('HTTP/1.1 400 ')).toBe(true)
    expect(got.endsWith('\r\n\r\nnope')).toBe(true)
    const answer = headLines(got)
    expect(answer.get('x-end')).toBe('kept')
    expect(answer.get('content-length')).toBe('4')
    // The connection was the upgrade's: it ends with the answer, as the balancer says.
    expect(answer.get('connection')).toBe('close')
    for (const name of ['x-backend-hop', 'keep-alive', 'upgrade']) expect(answer.has(name)).toBe(false)
  })
})
