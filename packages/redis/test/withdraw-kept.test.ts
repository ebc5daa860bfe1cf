// A stored handoff taken back while its session goes on at its node (a move given up on once its
// store answered): a claim that won meanwhile is told that the session stayed there, and its
// client's next try is sent there, rather than given a new session beside the one that lives on.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { fakeClusterSuite, snapshotOf, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a stored handoff withdrawn while its session goes on', () => {
  const suite = fakeClusterSuite()

  it('revokes a claim that won it: the claimer is told the session was kept, and its node owns it again', async () => {
    const cluster = suite.cluster()
    const [a, b, c] = await cluster.start(3)
    const sid = 'sid-kept-stored'
    const socket = a!.sockets.add('s1', sid)
    a!.adapter.addAll('s1', ['s1'])
    await a!.adapter.sessionOpened(sid)
    socket.handedOff = (text) => a!.adapter.appendHandOff(sid, text)
    expect(await a!.adapter.handOff(snapshotOf(sid, 's1'), 60_000)).toBe(true)
    const claim = won(await b!.adapter.claimSession(sid))

    // a's server takes the move back: the session goes on there.
    socket.handedOff = undefined
    await a!.adapter.withdrawHandOff(sid)
    const taken = await claim.takeOver(() => b!.adapter.addAll('s1', ['s1']))

    expect(taken).toMatchObject({ ended: true, kept: true })
    // a was never told the session was claimed: it holds it.
    expect(a!.sockets.claims).toEqual([])
    expect(a!.sockets.hasSession(sid)).toBe(true)
    // b's server drops its copy (see HandOffTail.kept); a resume anywhere is sent to a.
    expect(await c!.adapter.sessionOwner(sid)).toEqual({ node: a!.adapter.node, url: 'http://127.0.0.1:1' })
    expect(await c!.adapter.claimSession(sid)).toMatchObject({ missed: 'owned', node: a!.adapter.node })
  })
})
