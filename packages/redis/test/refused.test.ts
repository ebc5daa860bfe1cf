// Redis answering one of the adapter's commands with an error (here another application's key of
// another type under the adapter's prefix) is a coded error that names the key and what to do,
// and the server still answers the client with a coded answer, never a 500 without a code.
// Two Parley servers on one Redis, and a bare client.
import { RedisErrorCode, RedisRefusedError } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { ownerKey } from './killed-node.js'
import { Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())("a key of another type under the adapter's prefix", () => {
  const nodes = new Nodes()
  const suite = redisSuite(() => nodes)

  it('makes sessionOwner reject with PARLEY_REDIS_REFUSED, naming the key, and the client gets coded answers', async () => {
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const raw = await rawConnect('polling', a!.base)
    suite.raws.push(raw)
    // Another application's hash where the session's owner record lives.
    await a!.redis.sendCommand(['DEL', ownerKey(raw.sid)])
    await a!.redis.sendCommand(['HSET', ownerKey(raw.sid), 'field', 'value'])

    const refused = await b!.adapter.sessionOwner(raw.sid).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(refused).toBeInstanceOf(RedisRefusedError)
    const err = refused as RedisRefusedError
    expect(err.code).toBe(RedisErrorCode.REFUSED)
    expect(err.code).toBe('PARLEY_REDIS_REFUSED')
    expect(err.message).toContain(`GET on ${ownerKey(raw.sid)}`)
    expect(err.message).toContain('WRONGTYPE')
    expect(err.message).toContain('give each its own `prefix`')
    expect(err.message).toContain(suite.redis.url.replace(/\/$/, ''))

    // A request of that session at the other node: answered with a code, as for an unknown session.
    const get = await fetch(`${b!.base}/poll?v=1&sid=${raw.sid}`)
    expect(get.status).toBe(400)
    expect(await get.json()).toMatchObject({ code: 'PARLEY_UNKNOWN_SESSION' })
    // Its resume there: told to try again, with a code, rather than given a new session.
    const hello = await fetch(`${b!.base}/poll?v=1`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify([8, { sid: raw.sid, ack: 0 }]),
    })
    expect(hello.status).toBe(503)
    expect(await hello.json()).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
  })
})
