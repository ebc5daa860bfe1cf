// The node whose replies sent back a node takes for the questions it asked a session it handed
// off: the claimer, recorded when its claim marker is read. A session sealed with no claim (a
// drain nobody claimed it in) and claimed later has its client with that late claimer all the
// same: the client's replies must come back through it. And a claim revoked after its marker
// (the server gave the write up, the session stayed on its node) must not leave its claimer
// heard: its replies would settle the questions of a session it does not hold.
import { PacketType, type ReplyPacket } from '@parley/protocol'
import type { LocalSockets } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { type FakeNode, fakeClusterSuite, message, snapshotOf, to, won } from './handoff-support.js'
import { givenUpNeverRun, markerLimitByHand, markerRunOf } from './held-seal-scene.js'

/** The replies other nodes sent back to `node` that it took, as `socket: first argument`. */
function takenReplies(node: FakeNode): string[] {
  const taken: string[] = []
  const forwardedReply: LocalSockets['forwardedReply'] = (id, reply) => {
    taken.push(`${id}: ${reply.type === PacketType.REPLY ? String(reply.args[0]) : 'error'}`)
  }
  Object.assign(node.sockets, { forwardedReply })
  return taken
}

/** A reply of the client to the old node's question with ack id 4, as the claimer's server sends it back. */
const replyTo = (answer: string): ReplyPacket => ({
  type: PacketType.REPLY,
  seq: 1,
  ackId: 4,
  args: [answer],
})

/**
 * A question of `node` to no socket: resolves once every other node counted it, so read what
 * `node` sent before it on its connection.
 */
function readBehind(node: FakeNode, text: string): Promise<void> {
  return new Promise((counted) =>
    node.adapter.broadcastWithAck(
      message('ask', [text]),
      to(['none']),
      3000,
      () => counted(),
      () => {},
    ),
  )
}

/** Socket s1's session `sid` on `node`, in room 'r', handed off. */
async function handedOff(node: FakeNode, sid: string): Promise<void> {
  const socket = node.sockets.add('s1', sid)
  node.adapter.addAll('s1', ['s1', 'r'])
  await node.adapter.sessionOpened(sid)
  socket.handedOff = () => {}
  expect(await node.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
}

describe.skipIf(skipRedisSuites())('the claimer whose replies sent back are taken', () => {
  const suite = fakeClusterSuite()

  it('is recorded when a session sealed with no claim is claimed later', async () => {
    const [a, b] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const sid = 'sid-late-claim'
    const taken = takenReplies(a!)
    await handedOff(a!, sid)
    // The drain ends with nobody having claimed it: the tail is sealed.
    await a!.adapter.sealHandOff(sid, [])

    const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the late claim'))
    b!.sockets.add('s1', sid)
    await within(
      claim.takeOver(() => b!.adapter.addAll('s1', ['s1', 'r'])),
      5000,
      'the takeover',
    )
    // Sent after the marker on b's connection: a reads the marker first.
    claim.forwardReply!(replyTo('late'))
    await until(() => taken.length === 1, 3000, 'the reply sent back, taken on a')
    expect(taken).toEqual(['s1: late'])
  })

  it('is forgotten when the write is given up after its marker, the session staying on its node', async () => {
    const [a, b] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const sid = 'sid-revoked-claim'
    const taken = takenReplies(a!)
    await handedOff(a!, sid)
    // a's broadcast given up unanswered, never run, its probes lost: the seal at b's marker
    // waits for it, and the server gives the write up meanwhile.
    await givenUpNeverRun(a!)

    // The seal's wait ends by what proves the broadcast never ran: its limit is run out by
    // hand, never here (on a loaded machine, 1 s could pass before the write is given up).
    markerLimitByHand()
    const markerRan = markerRunOf(b!)
    const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
    b!.sockets.add('s1', sid)
    const taking = claim.takeOver(() => b!.adapter.addAll('s1', ['s1', 'r']))
    await until(markerRan, 5000, 'the marker run')
    // Read on a after the marker: a has read the marker by its count.
    await within(readBehind(b!, 'sync'), 5000, "a's count of b's question")

    await within(a!.adapter.withdrawHandOff(sid), 5000, 'the write given up')
    a!.adapter.broadcast(message('news', ['own']), to(['r']))
    expect(await within(taking, 5000, 'the claim answered')).toMatchObject({ kept: true })
    expect(a!.sockets.hasSession(sid)).toBe(true)

    // b sends back a reply, then a question on its connection: once a counted that, it read the
    // reply, and dropped it.
    claim.forwardReply!(replyTo('revoked'))
    await within(readBehind(b!, 'after'), 5000, "a's count of b's question after the reply")
    expect(taken).toEqual([])
  }, 35_000)
})
