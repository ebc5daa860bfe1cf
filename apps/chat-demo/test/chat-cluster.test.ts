// startChatNode is given a port found free and let go: another test file can take it before the
// node binds it. The start must then move to another port, and no node may be left listed in
// Redis at the port it could not have.
import http from 'node:http'
import type { RedisAdapter } from '@parley/redis'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, onFreePort } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { type ChatNode, startChatNode } from './chat-cluster.js'

describe.skipIf(skipRedisSuites())('startChatNode on a port another server took', () => {
  let redis: RedisServer | undefined
  let other: http.Server | undefined
  let node: ChatNode | undefined

  afterEach(async () => {
    await node?.app.close()
    await node?.cluster.close()
    await redis?.stop()
    other?.closeAllConnections()
    await new Promise((resolve) => other?.close(resolve) ?? resolve(undefined))
  })

  it('moves to another port, answers there itself, and lists only that one', async () => {
    redis = await startRedis()
    let hits = 0
    other = http.createServer((_req, res) => {
      hits++
      res.end('another server')
    })
    await new Promise<void>((resolve) => other?.listen(0, '127.0.0.1', resolve))
    const taken = (other.address() as { port: number }).port
    const picked: number[] = []
    const url = redis.url
    node = await onFreePort(
      (port) => startChatNode(url, 'node 1', port),
      async () => {
        const port = picked.length === 0 ? taken : await freePort()
        picked.push(port)
        return port
      },
    )
    expect(picked[0]).toBe(taken)
    expect(node.port).not.toBe(taken)
    expect(
      (await fetch(`http://127.0.0.1:${node.port}/`)).headers.get('content-security-policy'),
    ).toBeTruthy()
    expect(hits).toBe(0)
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      const id = (node.app.parley.adapter as RedisAdapter).node
      // Its record, its note, its address record (what a node that never saw it live reads) and
      // its beat record (how it tells Redis losing writes from its record lapsing): none of the
      // attempt on the taken port.
      expect((await client.keys('parley:node:*')).sort()).toEqual(
        [
          `parley:node:${id}`,
          `parley:node:${id}:address`,
          `parley:node:${id}:beat`,
          `parley:node:${id}:note`,
        ].sort(),
      )
      expect(await client.get(`parley:node:${id}`)).toBe(`http://127.0.0.1:${node.port}`)
      expect(await client.get(`parley:node:${id}:address`)).toBe(`http://127.0.0.1:${node.port}`)
    } finally {
      await client.close()
    }
  })
})
