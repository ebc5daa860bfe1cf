// A node that joins says where it is: the others forward a request of its sessions to it at
// once, not after their next read of the live set.
import { type EventPacket, encodeText, PacketType } from '@parley/protocol'
import { type RedisAdapter, type RedisClient, redisAdapter } from '@parley/redis'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startServer, until } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { HEARTBEAT, Nodes, redisSuite } from './nodes.js'

const prefix = 'joined'

describe.skipIf(skipRedisSuites())('a node that just joined', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const { raws } = suite
  const cleanups: (() => Promise<unknown> | undefined)[] = []

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  it("takes a request forwarded to it at once, though another node's heartbeat read the live set before it joined", async () => {
    // Node a, whose heartbeat answers can be held: a round trip in flight while c joins, which
    // read the live set before c's record was there (a slow one, stretched here).
    const redis = createClient({ url: suite.redis.url })
    redis.on('error', () => {})
    await redis.connect()
    cleanups.push(() => redis.close())
    let holding = false
    const held: (() => void)[] = []
    const release = () => {
      holding = false
      for (const answer of held.splice(0)) answer()
    }
    const client: RedisClient = {
      get isOpen() {
        return redis.isOpen
      },
      get isReady() {
        return redis.isReady
      },
      options: redis.options,
      duplicate: () => redis.duplicate(),
      sendCommand: (args) => {
        const answer = redis.sendCommand(args)
        if (!holding || args[0] !== 'EVAL' || args[3] !== `${prefix}:nodes`) return answer
        return new Promise((resolve) => held.push(() => resolve(answer)))
      },
    }
    const a = await startServer({
      handoff: false,
      adapter: redisAdapter({
        client,
        prefix,
        requestTimeout: 3000,
        heartbeatInterval: HEARTBEAT,
        log: { warn: () => {} },
      }),
    })
    cleanups.push(() => a.app.close())
    await (a.app.parley.adapter as RedisAdapter).ready()
    holding = true
    await until(() => held.length > 0, 2000, "a heartbeat of a's in flight")
    // Within requestTimeout, so that a's commands are not given up meanwhile.
    const releasing = setTimeout(release, 2500)
    cleanups.push(() => {
      clearTimeout(releasing)
      release()
      return undefined
    })

    nodes = new Nodes()
    const c = await nodes.start(suite.redis.url, { prefix })
    const raw = await rawConnect('polling', c.base)
    raws.push(raw)
    const got: unknown[] = []
    c.sockets[0]!.on('hello', (value: unknown) => got.push(value))

    // The client's next request reaches a (round-robin): a forwards it to c.
    const sent = performance.now()
    const event: EventPacket = {
      type: PacketType.EVENT,
      seq: 1,
      name: 'hello',
      args: ['through a'],
      ackId: 0,
    }
    const res = await fetch(`${a.base}/poll?v=1&sid=${raw.sid}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: encodeText(event),
    })
    await res.text()
    expect(res.status).toBeLessThan(300)
    await until(() => got.length === 1, 2000, 'the event on c')
    expect(got).toEqual(['through a'])
    // Not after a's held read of the live set: that one is still out.
    expect(performance.now() - sent).toBeLessThan(1500)
    expect(held.length).toBeGreaterThan(0)

    // Once it comes back, the read that is older than c's join does not call c gone (the next
    // read, held in its turn, cannot put c back meanwhile).
    clearTimeout(releasing)
    const stale = held.splice(0)
    for (const answer of stale) answer()
    await until(() => held.length > 0, 2000, "a's next heartbeat")
    expect((a.app.parley.adapter as RedisAdapter).liveNodes).toContain(c.adapter.node)
  })
})
