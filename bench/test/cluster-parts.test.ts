// The pieces of the multi-node scenarios that need no Parley servers: the generated docs keep
// each section apart (a run of `--only cluster` must not touch the single-node tables), the
// nginx config is one nginx accepts, and nginx starts on a port of its own.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort } from '../../test/support/ports.ts'
import { nginxConfig, nginxPath, startBalancer } from '../src/nginx.ts'
import { writeDocs } from '../src/report.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'parley-bench-parts-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('writeDocs', () => {
  it('rewrites one generated part and keeps the other and the text around them', () => {
    const file = path.join(dir, 'benchmarks.md')
    writeFileSync(file, '# Benchmarks\n\nintro\n')
    writeDocs(file, 'single v1')
    writeDocs(file, 'cluster v1', 'cluster')
    const first = readFileSync(file, 'utf8')
    expect(first).toContain('single v1')
    expect(first).toContain('cluster v1')
    writeFileSync(file, first.trimEnd().concat('\n\nnotes by hand\n'))
    writeDocs(file, 'cluster v2', 'cluster')
    const second = readFileSync(file, 'utf8')
    expect(second).toContain('single v1')
    expect(second).not.toContain('cluster v1')
    expect(second).toContain('cluster v2')
    expect(second.indexOf('intro')).toBeLessThan(second.indexOf('single v1'))
    expect(second.indexOf('cluster v2')).toBeLessThan(second.indexOf('notes by hand'))
    writeDocs(file, 'single v2')
    const third = readFileSync(file, 'utf8')
    expect(third).toContain('single v2')
    expect(third).toContain('cluster v2')
    expect(third).toContain('notes by hand')
  })
})

describe('nginxConfig', () => {
  const conf = nginxConfig(dir, 18080, [18081, 18082, 18083])

  it('balances round-robin over every node, without affinity, WebSocket passed on', () => {
    for (const port of [18081, 18082, 18083]) expect(conf).toContain(`server 127.0.0.1:${port};`)
    expect(conf).toContain('listen 127.0.0.1:18080;')
    expect(conf).not.toMatch(/ip_hash|hash |sticky/)
    expect(conf).toContain('proxy_http_version 1.1;')
    expect(conf).toContain('proxy_set_header Upgrade $http_upgrade;')
    expect(conf).toContain('proxy_buffering off;')
    // Every path nginx writes is inside the directory.
    for (const line of conf.split('\n').filter((l) => /(_path|pid|_log) /.test(l)))
      expect(line, line).toContain(dir)
  })

  it.skipIf(!nginxPath)('passes nginx -t', () => {
    const file = path.join(dir, 'nginx.conf')
    writeFileSync(file, conf)
    const run = spawnSync(nginxPath!, ['-t', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', file], {
      encoding: 'utf8',
    })
    expect(run.status, run.stderr).toBe(0)
  })
})

describe.skipIf(!nginxPath)('startBalancer on a port another server took', () => {
  /** An HTTP server on a free loopback port that answers every request with `body`. */
  async function answering(body: string): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer((_req, res) => res.end(body))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return { server, port: (server.address() as { port: number }).port }
  }

  it('moves to another port and balances over its own upstreams', async () => {
    // The port a free-port pick let go, bound by another test file before nginx could.
    const [upstream, other] = [await answering('upstream'), await answering('another server')]
    const picked: number[] = []
    const balancer = await startBalancer([upstream.port], undefined, async () => {
      const port = picked.length === 0 ? other.port : await freePort()
      picked.push(port)
      return port
    })
    try {
      expect(picked[0]).toBe(other.port)
      expect(balancer.port).not.toBe(other.port)
      expect(await (await fetch(balancer.url)).text()).toBe('upstream')
    } finally {
      await balancer.stop()
      for (const { server } of [upstream, other]) {
        server.closeAllConnections()
        server.close()
      }
    }
  })
})
