// A node's own broadcast with acks whose PUBLISH is given up unanswered, while a session is being
// handed over, stays on its way: Redis may still run it (see src/ack-broadcast.ts). One Redis
// never runs must still end the caller's wait, without a timer of the caller's to end it
// (`timeout(Infinity)`), and without waiting for the node to broadcast again.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import {
  dropConnection,
  fakeClusterSuite,
  HeldOnDroppedLink,
  message,
  snapshotOf,
  to,
} from './handoff-support.js'

describe.skipIf(skipRedisSuites())('an own broadcast with acks given up that Redis never runs', () => {
  const suite = fakeClusterSuite()

  it('ends the wait of a caller without a timeout, the node sending nothing more', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const handed = a!.sockets.add('s1', 'sid-never')
    a!.adapter.addAll('s1', ['s1', 'r'])
    await a!.adapter.sessionOpened('sid-never')
    const tail: string[] = []
    handed.handedOff = (text) => tail.push(text)
    expect(await a!.adapter.handOff(snapshotOf('sid-never', 's1', ['r']), 60_000)).toBe(true)
    // a's link stalls from the request on: nothing a sends after it runs either (the probe
    // sent when it is given up waits behind it), and the connection then drops with them all.
    new HeldOnDroppedLink(a!, (args) => args[0] === 'PUBLISH' && args[2]?.includes('"k":"ack"') === true)
    let total: number | undefined
    const replies: BroadcastReply[] = []
    a!.adapter.broadcastWithAck(
      message('ask', ['q']),
      to(['r']),
      Number.POSITIVE_INFINITY,
      (count) => {
        total = count
      },
      (reply) => replies.push(reply),
    )
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the request given up')
    // Lost with the connection, never run: the probe goes again on the next one.
    await dropConnection(a!)
    await until(() => total !== undefined, 5000, "the broadcast's total")
    // It never ran: the other node was not asked; the socket being handed over is asked once
    // that is proved, as every socket of its node (into its tail), and its reply ends the wait.
    expect(total).toBe(1)
    await until(() => replies.length === 1, 3000, 'the reply of the socket handed over')
    expect(tail).toHaveLength(1)
  })
})
