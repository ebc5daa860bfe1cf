// A broadcast with acks of the draining node whose PUBLISH got no answer while a session is
// handed over: Redis may still run it, and the session is asked it when it comes back. A drain
// that nobody claimed the session in settles the session before its seal (settleHandOff): it
// waits for that question as for a plain broadcast on its way, so that, run in time, it is asked
// into the tail before the last packets, not after the seal, where it would reach nobody.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  dropConnection,
  fakeClusterSuite,
  HeldInOrder,
  HeldOnDroppedLink,
  handedOffSession,
  message,
  to,
} from './handoff-support.js'
import { isRequest } from './published.js'

describe.skipIf(skipRedisSuites())('the settle before an unclaimed seal', () => {
  const suite = fakeClusterSuite()

  it('waits for a broadcast with acks given up unanswered, and the session is asked it in its tail', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const sid = 'sid-question'
    const tail = await handedOffSession(a!, sid)

    // a's question is held unanswered, then run late by Redis (below): as on one connection,
    // every command a sends after it waits behind it, the settle's probe among them.
    const held = new HeldInOrder(a!.redis, isRequest, () => true)
    a!.hold = held.hold
    a!.adapter.broadcastWithAck(
      message('ask', ['late']),
      to(['r']),
      10_000,
      () => {},
      () => {},
    )
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the question given up')
    expect(tail).toEqual([])

    // The drain ends with the session unclaimed: the settle waits for the question.
    let atSettled: unknown[] | undefined
    const settling = a!.adapter.settleHandOff(sid, 5000).then(() => {
      atSettled = tail.map(argOf)
    })
    await within(held.runAll(), 5000, 'the question run late')
    await within(settling, 6000, 'the settle')
    expect(atSettled).toEqual(['late'])
  })

  it('ends its wait for such a question once the note behind it proves it never ran', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const sid = 'sid-never-asked'
    const tail = await handedOffSession(a!, sid)

    // Held as a link that stalls holds it, with what a sends after it: never run, refused once
    // the connection drops; a's later commands go on the next one.
    new HeldOnDroppedLink(a!, isRequest)
    a!.adapter.broadcastWithAck(
      message('ask', ['never']),
      to(['r']),
      60_000,
      () => {},
      () => {},
    )
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the question given up')
    await dropConnection(a!)

    // The settle's own bound is far: the probe, back within a round trip, ends it first. Proved
    // never run, the question is asked of the session then, into its tail before the seal, as
    // of every socket of the node.
    await within(a!.adapter.settleHandOff(sid, 60_000), 5000, 'the settle over at the probe')
    expect(tail.map(argOf)).toEqual(['never'])
  })
})
