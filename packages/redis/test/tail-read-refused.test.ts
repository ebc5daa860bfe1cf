// A claimer whose read of the tail cannot be sent (its connection left a command unanswered for
// `requestTimeout`, and still does once the read has waited that long), with real servers and
// the real client: it gives the claim back and tells the client to try again, rather than go on
// with an empty tail, which lost what the old node sent the session after its freeze. The next
// try reads the tail, which Redis held whole: every event once, in order.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { balancedSuite, roomClientOn, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { holding } from './handoff-support.js'

const REQUEST_TIMEOUT = 300

/** The snapshot's write, as a node of this version sends it. */
const isWrite = (args: string[]) => args[0] === 'EVAL' && args[1]?.includes("'snapshot', ARGV[2]") === true

/** A claim's marker, PUBLISHed once the claim won (see claim.ts). */
const isMarker = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('"k":"claim"')

/** The take-back of a claim (see UNCLAIM in src/handoff.ts). */
const isUnclaim = (args: string[]) =>
  args[0] === 'EVAL' && (args[1] ?? '').includes("'HDEL', KEYS[1], 'claimed', 'claim'")

describe.skipIf(skipRedisSuites())('a claimer whose read of the tail cannot be sent', () => {
  const { suite, balance } = balancedSuite<TrafficNode>()
  const { nodes, clients } = suite

  it('gives the claim back, and the client’s next try reads the whole tail: every event once, in order', async () => {
    const sentByA: string[][] = []
    const a = await startTrafficNode(suite.redis.url, nodes, {
      // Its drain seals the tail unclaimed soon (no live node asked to adopt it): the claim
      // reads it at once, with no marker.
      handoffTimeout: 600,
      adopts: false,
      view: (client) =>
        holding(client, (args) => {
          sentByA.push(args)
          return undefined
        }),
    })
    // b's connection can be made to look down (node-redis not ready): nothing is sent then.
    let down = false
    let stallNext = false
    let unclaimed = false
    const b = await startTrafficNode(suite.redis.url, nodes, {
      requestTimeout: REQUEST_TIMEOUT,
      view: (client) => {
        const view = holding(client, (args) => {
          if (isUnclaim(args)) unclaimed = true
          if (!(stallNext && isMarker(args))) return undefined
          stallNext = false
          // Once the marker went, before the read: the connection looks down past the read's
          // wait for it (requestTimeout), then back: the take-back of the claim goes before
          // its next command.
          return client.sendCommand(args).then((answer) => {
            down = true
            setTimeout(() => {
              down = false
            }, 2 * REQUEST_TIMEOUT)
            return answer
          })
        })
        return Object.defineProperty(view, 'isReady', { get: () => !down && client.isReady })
      },
    })
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const { client, got } = await roomClientOn(balancer, a, clients)
    const id = client.id
    const socket = a.connections[0]!
    for (let n = 1; n <= 5; n++) socket.emit('room', n)
    await until(() => got.length === 5, 3000, 'the first five, live')

    // The client reaches no node while a drains; its resume goes to b once a sealed its tail.
    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.offline = true
    balancer.cut()
    await until(() => !client.connected, 5000, 'the client cut off')
    const closing = a.started.app.close()
    await until(() => sentByA.some(isWrite), 5000, 'a hands the session off')
    // Sent after the freeze: into the session's tail.
    for (let n = 6; n <= 10; n++) socket.emit('room', n)
    await within(closing, 8000, 'a closed, its tail sealed unclaimed')
    stallNext = true
    balancer.offline = false
    await until(() => b.restored.length === 1, 8000, 'restored on b')
    await until(() => got.length >= 10, 3000, 'the ten events')
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    expect(client.recovered).toBe(true)
    expect(client.id).toBe(id)
    expect(unclaimed).toBe(true)
    expect(b.warnings.filter((line) => line.includes('could not read the tail'))).toEqual([
      '@parley/redis: could not read the tail of a claimed session; its claim is given back for the client to try again',
    ])
  }, 40_000)
})
