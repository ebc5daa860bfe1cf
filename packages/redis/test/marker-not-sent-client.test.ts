// A claim marker that could not be sent (Redis took no command from the claimer for its whole
// wait), with real servers and the real client: the claimer gives the claim back and tells the
// client to try again; the next try, once Redis answers, takes the session over with its cut.
// Every broadcast of a third node reaches the client once, in order: none is lost with a tail
// read without a cut, none repeated from the tail and live.
import { connect } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { holding } from './handoff-support.js'

const REQUEST_TIMEOUT = 300

describe.skipIf(skipRedisSuites())('a claim whose marker could not be sent', () => {
  const { suite, balance } = balancedSuite<TrafficNode>()
  const { nodes, clients } = suite

  it('is given back, and the client’s next try takes the session over: every broadcast once, in order', async () => {
    // b's commands can be held, none sent, as a Redis that takes none of them would.
    let holdingAll = false
    let unclaimed = false
    const held: (() => void)[] = []
    const release = () => {
      holdingAll = false
      for (const send of held.splice(0)) send()
    }
    const a = await startTrafficNode(suite.redis.url, nodes)
    let stallNext = false
    const b = await startTrafficNode(suite.redis.url, nodes, {
      requestTimeout: REQUEST_TIMEOUT,
      view: (client) =>
        holding(client, (args) => {
          if (!holdingAll) return undefined
          const sent = new Promise<unknown>((answer) => held.push(() => answer(client.sendCommand(args))))
          // The take-back of the claim: Redis answers again from here on.
          if (args[0] === 'EVAL' && (args[1] ?? '').includes("'HDEL', KEYS[1], 'claimed', 'claim'")) {
            unclaimed = true
            release()
          }
          return sent
        }),
      setup: (app) =>
        // After the claim won, before the marker: Redis stops taking b's commands, until one of
        // them has waited for an answer past requestTimeout.
        app.parley.use(async () => {
          if (!stallNext) return
          stallNext = false
          holdingAll = true
          app.parley.to('nobody').emit('probe')
          await sleep(REQUEST_TIMEOUT + 200)
        }),
    })
    const c = await startTrafficNode(suite.redis.url, nodes, { seen: true })
    const balancer = await balance([a, b])
    const client = connect(`${balancer.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(client)
    const events: string[] = []
    client.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
    const got: number[] = []
    client.on('room', (n: number) => got.push(n))
    balancer.avoid.add(1)
    client.connect()
    await until(() => client.connected, 3000, 'connect to a')
    balancer.avoid.clear()
    const id = client.id!

    let down = 0
    const traffic = setInterval(() => c.started.app.parley.to('room').emit('room', ++down), 10)
    await sleep(100)
    stallNext = true
    balancer.avoid.add(0)
    const draining = a.started.app.close()
    try {
      await until(() => unclaimed || b.restored.length > 0, 8000, 'the claim given back, or a takeover')
    } finally {
      release()
    }
    await until(() => b.restored.length === 1, 8000, 'restored on b')
    await draining
    await sleep(100)
    clearInterval(traffic)
    // The last is sent after the takeover: it comes live, behind every earlier one.
    await until(() => client.connected && got.includes(down), 5000, 'the last broadcast')
    await sleep(100)

    expect(client.recovered).toBe(true)
    expect(client.id).toBe(id)
    expect(got).toEqual(Array.from({ length: down }, (_, i) => i + 1))
    expect(unclaimed).toBe(true)
    expect(events).toEqual([])
  }, 30_000)
})
