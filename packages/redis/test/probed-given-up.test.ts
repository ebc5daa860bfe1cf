// An own broadcast given up unanswered while a session is handed over, proved never run by the
// note the node sends itself behind it (its probe): nothing waits for it any more. A session
// taken over on that node since (it was in no room when the broadcast was emitted, so it would
// take it should it come back) must then be released as when any own message comes back: kept
// positioned, it would take every own broadcast a Redis round trip late, and stay so until the
// node's next own broadcast comes back, however long that is.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  claimAgain,
  dropConnection,
  type FakeNode,
  fakeClusterSuite,
  HeldOnDroppedLink,
  message,
  snapshotOf,
  to,
} from './handoff-support.js'
import { isBroadcast, isProbe } from './published.js'

/** Session `sid` with socket `id` on `node`, in room 'r', handed off: what it gets goes to `tail`. */
async function handedOff(node: FakeNode, sid: string, id: string, tail: string[]): Promise<void> {
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, 'r'])
  await node.adapter.sessionOpened(sid)
  socket.handedOff = (text) => tail.push(text)
  expect(await node.adapter.handOff(snapshotOf(sid, id, ['r']), 60_000)).toBe(true)
}

describe.skipIf(skipRedisSuites())('an own broadcast given up that the probe proves never ran', () => {
  const suite = fakeClusterSuite()

  it('keeps no session taken over since waiting for it', async () => {
    const [a, b] = await suite.cluster({ requestTimeout: 300 }).start(2)
    // On b, a session being handed off: it waits for b's broadcast given up below.
    const tail: string[] = []
    await handedOff(b!, 'sid-x', 'x', tail)
    // On a, a session whose drain ended unclaimed (sealed): b takes it over below.
    await handedOff(a!, 'sid-y', 'y', [])
    await a!.adapter.sealHandOff('sid-y', [])

    // b's broadcast is held on a link that stalls, then drops: never run, failed once the
    // connection is gone. Its probes are lost until the takeover is done.
    let loseProbes = true
    // The link stalls from it on: what follows it waits behind it, unrun, and drops with it.
    new HeldOnDroppedLink(b!, isBroadcast)
    b!.lose = (args) => loseProbes && isProbe(args)
    b!.adapter.broadcast(message('news', ['never']), to(['r']))
    await until(() => b!.adapter.stats.lostBroadcasts === 1, 3000, 'the broadcast given up')
    // Lost with the connection, never run: the node works on its next one.
    await dropConnection(b!)

    // b takes y over now: positioned since the broadcast was given up, it would take it should
    // it come back.
    // (A claim answered 'retry' while Redis was taken for silent is tried again.)
    const claim = await claimAgain(b!, 'sid-y')
    b!.sockets.add('y', 'sid-y')
    await within(
      claim.takeOver(() => b!.adapter.addAll('y', ['y', 'r'])),
      5000,
      'the takeover',
    )

    // The probe comes back: the broadcast never ran, and reaches the session handed off.
    loseProbes = false
    await until(() => tail.length > 0, 5000, 'the broadcast at the session handed off')
    expect(tail.map(argOf)).toEqual(['never'])
    // Sealed, that session leaves the positioned ones; nothing keeps y there either.
    await b!.adapter.sealHandOff('sid-x', [])
    await until(() => b!.adapter.handingOver === 0, 3000, 'no socket positioned')
  })
})
