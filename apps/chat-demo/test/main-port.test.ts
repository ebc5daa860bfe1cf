// `src/main.ts` as a cluster node whose port another process holds: it says so and exits, and
// the other nodes never see it. Its first heartbeat names the port before it listens, so a node
// that joined Redis first could be listed for three heartbeats at another process's address
// (whether its heartbeat beat the failed listen is a race): it must not reach Redis at all.
import { spawn } from 'node:child_process'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'

const appDir = fileURLToPath(new URL('..', import.meta.url))
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url))

describe.skipIf(skipRedisSuites())('a chat node started on a port another process holds', () => {
  let redis: RedisServer | undefined
  let other: http.Server | undefined

  afterEach(async () => {
    await redis?.stop()
    await new Promise((resolve) => other?.close(resolve) ?? resolve(undefined))
  })

  it('exits saying the port is taken, and never joins the cluster', async () => {
    redis = await startRedis()
    other = http.createServer((_req, res) => res.end('another server'))
    await new Promise<void>((resolve) => other?.listen(0, '127.0.0.1', resolve))
    const taken = (other.address() as { port: number }).port
    const client = createClient({ url: redis.url })
    await client.connect()
    const connections = async () => /total_connections_received:(\d+)/.exec(await client.info('stats'))?.[1]
    const before = await connections()
    const args = ['--name', 'late', '--port', String(taken), '--host', '127.0.0.1', '--redis', redis.url]
    const child = spawn(process.execPath, [await compiledScript(main), ...args], {
      cwd: appDir,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const code = await new Promise((resolve) => child.once('exit', resolve))
    expect(code).toBe(1)
    expect(stderr).toContain(`port ${taken} is taken`)
    try {
      // Not one connection to Redis: no record, no note, no index entry, nothing to forward to.
      expect(await connections()).toBe(before)
      expect(await client.keys('parley:node*')).toEqual([])
    } finally {
      await client.close()
    }
  })
})
