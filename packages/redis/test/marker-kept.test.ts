// A claim marker back while the session handed off awaits an own broadcast Redis may still run:
// the seal waits for it (at most 1 s), the socket out of its rooms, since what is read past the
// marker is the claimer's. Should the server give the write up meanwhile (the session goes on
// on this node, the claim revoked), the socket must still get what its rooms got while it was
// out of them: another node's broadcast read past the marker, and this node's own.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { MAX_MISSED_PAST_MARKER } from '../src/past-marker.js'
import { argOf, fakeClusterSuite, message, to } from './handoff-support.js'
import { claimedPastGiven } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a seal held at a claim marker whose write the server gives up', () => {
  const suite = fakeClusterSuite()

  /**
   * Socket s1's session handed off by a, claimed by b, its seal on a held at the marker for an
   * own broadcast given up, and its write then given up by the server: the session goes on on a.
   * `witnessThrows`: a's socket in the room throws at c's broadcast read past the marker.
   */
  async function keptAtMarker(witnessThrows = false) {
    const cluster = suite.cluster({ requestTimeout: 300 })
    // c sends the bursts of broadcasts: with a's short requestTimeout, a burst still unanswered
    // after it (a loaded machine) would make c take Redis for silent and send no more of it.
    const [a, b, c] = [
      await cluster.node(),
      await cluster.node(),
      await cluster.node(undefined, { requestTimeout: 5000 }),
    ]
    await until(() => [a, b, c].every((n) => n.adapter.liveNodes.length >= 2), 5000, 'live nodes')
    const sid = 'sid-kept'
    // What the socket gets, whether into its tail or live once the session stays on a.
    const got: unknown[] = []
    let threw = false
    // b claims the session; its marker runs, then c's broadcast: a reads them in that order,
    // which a socket of a's own in the room, not handed over, tells.
    const { witness, taking, markerRan } = await claimedPastGiven(a!, b!, sid, {
      socket(socket) {
        socket.handedOff = (text) => got.push(argOf(text))
      },
      witness(witness) {
        if (witnessThrows)
          witness.deliver = (event) => {
            threw ||= event.args[0] === 'other'
            if (threw) throw new Error('the socket threw at other')
            witness.got.push(event.args[0])
          }
      },
    })
    await until(markerRan, 5000, 'the marker run')
    c!.adapter.broadcast(message('news', ['other']), to(['r']))
    await until(() => threw || witness.got.includes('other'), 5000, "c's broadcast read on a past the marker")
    expect(got).toEqual([])

    // The server gives the write up: the session goes on on a.
    await within(a!.adapter.withdrawHandOff(sid), 5000, 'the write given up')
    return { a: a!, c: c!, sid, got, taking, witness }
  }

  it('gives the socket, kept on its node, what its rooms got while it was out of them', async () => {
    const { a, got, taking } = await keptAtMarker()
    // a's own, emitted now: back past the marker, it proves the one awaited never ran, and the
    // seal's wait is over.
    a.adapter.broadcast(message('news', ['own']), to(['r']))
    // The claim is answered once the seal's wait is over: revoked, the session kept on a.
    await within(taking, 5000, 'the claim answered')
    await until(() => got.length >= 3, 3000, `what the socket missed (got ${JSON.stringify(got)})`)
    expect(got).toEqual(['given', 'other', 'own'])
  })

  it('gives it what its rooms got though a socket in them threw at it', async () => {
    const { a, got, taking, witness } = await keptAtMarker(true)
    // The throw lost c's broadcast to that socket alone, and was logged; s1, out of the room,
    // still kept it aside.
    expect(a.warnings).toContain(
      '@parley/redis: a broadcast failed at its delivery to a socket, and is lost to its session',
    )
    Reflect.deleteProperty(witness, 'deliver')
    a.adapter.broadcast(message('news', ['own']), to(['r']))
    await within(taking, 5000, 'the claim answered')
    await until(() => got.length >= 3, 3000, `what the socket missed (got ${JSON.stringify(got)})`)
    expect(got).toEqual(['given', 'other', 'own'])
    expect(witness.got).toEqual(['own'])
  })

  it('leaves no rooms behind for a socket whose session ended while the seal waited', async () => {
    const { a, sid, taking } = await keptAtMarker()
    // The session ends on a, as the server ends one: the socket gone, then out of its rooms
    // (none now: it is out of them while the seal waits).
    a.sockets.sessions.delete(sid)
    a.sockets.sockets.delete('s1')
    a.adapter.delAll('s1')
    a.adapter.broadcast(message('news', ['own']), to(['r']))
    await within(taking, 5000, 'the claim answered')
    expect(a.adapter.socketRooms('s1')).toBeUndefined()
  })

  it('ends the wait once the socket has as many kept aside as it may hold, and loses none', async () => {
    const { a, c, got, taking, witness } = await keptAtMarker()
    // c's broadcasts, read on a past the marker, fill what the socket keeps aside: at the bound
    // its wait ends there and then, and it has them all, while the probes are still lost.
    const sent = Array.from({ length: MAX_MISSED_PAST_MARKER - 1 }, (_, i) => `c${i}`)
    // In two halves, each read on a before the next: all at once, they and c's heartbeat in
    // flight would pass the commands c leaves unanswered at once (MAX_UNANSWERED_COMMANDS,
    // as many), and the last would not be sent.
    const half = Math.ceil(sent.length / 2)
    for (const part of [sent.slice(0, half), sent.slice(half)]) {
      for (const text of part) c.adapter.broadcast(message('news', [text]), to(['r']))
      const last = part.at(-1)
      await until(() => witness.got.includes(last), 10_000, "c's broadcasts read on a")
    }
    expect(c.adapter.stats.lostBroadcasts).toBe(0)
    expect(got).toEqual(['other', ...sent])
    await within(taking, 5000, 'the claim answered')
    a.adapter.broadcast(message('news', ['own']), to(['r']))
    await until(() => got.includes('own'), 3000, "a's own, live")
  }, 35_000)
})
