// An own broadcast with acks whose PUBLISH got no answer while a session is handed over: Redis
// may still run it, so the session is not asked at once. Proved never run (a later own message,
// or the node's note to itself, back first), it must still be asked of that session, as of every
// other socket of the node, at its place: a question given up runs on every socket of its node
// and misses only the other nodes, as a broadcast given up does. Asked of none, the session's
// client would never answer, and the sender's count would leave it out as if it were elsewhere.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  dropConnection,
  fakeClusterSuite,
  HeldOnDroppedLink,
  message,
  snapshotOf,
  to,
  won,
} from './handoff-support.js'
import { ask, markerRunOf } from './held-seal-scene.js'
import { isProbe, isRequest } from './published.js'

describe.skipIf(skipRedisSuites())('a broadcast with acks given up and proved never run', () => {
  const suite = fakeClusterSuite()

  /**
   * On a, session `sid` of socket s1 handed off (what it gets goes to `tail`), s2 beside it in
   * room 'r'; a's broadcast with acks to 'r' given up unanswered, never run, its probes lost.
   */
  async function givenUpQuestion() {
    const [a, b] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const sid = 'sid-given-up-question'
    const tail: unknown[] = []
    const socket = a!.sockets.add('s1', sid)
    a!.adapter.addAll('s1', ['s1', 'r'])
    await a!.adapter.sessionOpened(sid)
    socket.handedOff = (text) => tail.push(argOf(text))
    expect(await a!.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
    const witness = a!.sockets.add('s2')
    a!.adapter.addAll('s2', ['s2', 'r'])

    // Held on a link that stalls, then drops: never run, failed once the connection is gone.
    // The link stalls from it on: what follows it waits behind it, unrun, and drops with it.
    new HeldOnDroppedLink(a!, isRequest)
    a!.lose = isProbe
    const asked = ask(a!, 'asked', ['r'])
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the question given up')
    // Lost with the connection, never run: the node works on its next one.
    await dropConnection(a!)
    // s2 was asked at emit; s1, handed over, was left out.
    expect(witness.got).toEqual(['asked'])
    expect(tail).toEqual([])
    return { a: a!, b: b!, sid, tail, asked }
  }

  it('asks the session handed over once a later own broadcast proves it, before that one', async () => {
    const { a, tail, asked } = await givenUpQuestion()
    a.adapter.broadcast(message('news', ['after']), to(['r']))
    await until(() => tail.includes('after'), 3000, 'the later broadcast at the session')
    expect(tail).toEqual(['asked', 'after'])
    await until(() => asked.replies.length === 2, 3000, 'the replies')
    expect(asked.count).toBe(2)
    expect(asked.replies.every((reply) => reply.ok)).toBe(true)
  })

  it('asks it into the tail when a claim marker comes back first, its seal waiting for the proof', async () => {
    const { a, b, sid, tail, asked } = await givenUpQuestion()
    const markerRan = markerRunOf(b)
    const claim = won(await within(b.adapter.claimSession(sid), 5000, 'the claim'))
    b.sockets.add('s1', sid)
    const taking = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    await until(markerRan, 5000, 'the marker run')
    // The probes get through again: the next proves the question never ran, and the seal goes.
    a.lose = undefined
    await within(taking, 5000, 'the claim answered')
    expect(tail).toEqual(['asked'])
    expect(a.sockets.claims).toEqual([sid])
    await until(() => asked.replies.length === 2, 3000, 'the replies')
    expect(asked.count).toBe(2)
  })
})
