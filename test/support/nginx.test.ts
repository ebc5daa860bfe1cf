// startNginx picks a free port, lets it go, then nginx binds it: another test file can take the
// port in between. The start must then move to another port, and never hand back a server that
// only happens to answer there.
import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { type Nginx, skipNginxSuites, startNginx } from './nginx.js'
import { freePort } from './ports.js'

/** An HTTP server on a free loopback port that answers every request with `body`. */
async function answering(body: string): Promise<{ server: http.Server; port: number; hits: () => number }> {
  let hits = 0
  const server = http.createServer((_req, res) => {
    hits++
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port, hits: () => hits }
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

describe.skipIf(skipNginxSuites())('startNginx on a port another server took', () => {
  const servers: http.Server[] = []
  let nginx: Nginx | undefined

  afterEach(async () => {
    await nginx?.stop()
    nginx = undefined
    await Promise.all(servers.splice(0).map(close))
  })

  it('moves to another port and talks to its own nginx', async () => {
    const upstream = await answering('upstream')
    // Another file's server, on the port the start is made to pick first.
    const other = await answering('another server')
    servers.push(upstream.server, other.server)
    const picked: number[] = []
    nginx = await startNginx([upstream.port], {
      pickPort: async () => {
        const port = picked.length === 0 ? other.port : await freePort()
        picked.push(port)
        return port
      },
    })
    expect(picked[0]).toBe(other.port)
    expect(nginx.port).not.toBe(other.port)
    const res = await fetch(`${nginx.url}/`)
    expect(await res.text()).toBe('upstream')
    expect(other.hits()).toBe(0)
  })
})
