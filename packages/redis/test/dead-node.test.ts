// A node killed without a drain stays in the live set for up to three heartbeats: a WebSocket
// resume of one of its sessions that reaches another node must not wait for it.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { type RawClient, rawConnect } from '../../server/test/raw-client.js'
import { Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())('a node killed without a drain', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const { raws } = suite

  it('lets the WebSocket client of a killed node start over on another node within 3 s', async () => {
    nodes = new Nodes()
    // With handoff on: a WebSocket resume asks the owner to hand its session over.
    const b = await nodes.start(suite.redis.url, {}, false, {})
    // The killed node as Redis still tells it: its record, note and index entry (alive for
    // three more heartbeats), the owner record of its session, and nothing at its address: a
    // port held here, so that no other test file's server answers there meanwhile.
    const dead = 'killed-node'
    const record = `parley:node:${dead}`
    const sid = 'a-session-of-the-killed-node'
    const owner = `parley:session:${createHash('sha256').update(sid).digest('base64url')}`
    const address = await holdPort()
    await b.redis.sendCommand(['SET', record, `http://127.0.0.1:${address.port}`, 'PX', '60000'])
    await b.redis.sendCommand([
      'SET',
      `${record}:note`,
      JSON.stringify({ v: 1, p: '/parley' }),
      'PX',
      '60000',
    ])
    await b.redis.sendCommand(['ZADD', 'parley:nodes', String(Date.now()), dead])
    await b.redis.sendCommand(['SET', owner, dead, 'EX', '60'])
    try {
      await until(() => b.adapter.liveNodes.includes(dead), 3000, 'the killed node read as live')
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), 3000)
      })
      const resumed = rawConnect('websocket', b.base, { sid })
      resumed.then((raw) => raws.push(raw)).catch(() => undefined)
      const outcome = await Promise.race([resumed, late]).finally(() => clearTimeout(timer))
      expect(outcome).not.toBe('late')
      const raw = outcome as RawClient
      expect(raw.open?.sid).not.toBe(sid)
    } finally {
      await b.redis.sendCommand(['DEL', record, `${record}:note`, owner])
      await b.redis.sendCommand(['ZREM', 'parley:nodes', dead])
      address.release()
    }
  })
})
