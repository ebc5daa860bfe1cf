// A claim marker back while the session handed off awaits an own broadcast Redis may still run:
// the seal waits for it (at most 1 s), the socket out of its rooms. A broadcast with acks that
// comes meanwhile must still reach the session wherever it ends: asked of the socket, in order
// with the broadcasts kept aside for it, when the server gives the write up and the session
// stays; asked into its tail when the seal goes, unless the claimer asks it (read past the
// marker). Each asked once, and counted once by its sender.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, fakeClusterSuite, message, snapshotOf, to, won } from './handoff-support.js'
import { answeredByTwo, ask, givenUpNeverRun, markerLimitByHand, markerRunOf } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a broadcast with acks while a seal waits at a claim marker', () => {
  const suite = fakeClusterSuite()

  /**
   * Socket s1's session handed off by a and claimed by b, its seal on a held at the marker for
   * an own broadcast given up that Redis never runs (its probes lost until `settle`).
   */
  async function heldAtMarker() {
    // A node's count of a question kept aside waits for the end of the seal's wait (at most
    // 1 s): its sender waits for counts requestTimeout, longer here, as by default. a's
    // heartbeats wait behind its held broadcast as long: three intervals outlast that, or the
    // others would take a for gone.
    const [a, b, c] = await suite.cluster({ requestTimeout: 1500, heartbeatInterval: 1500 }).start(3)
    const sid = 'sid-held-question'
    // What the socket gets, whether into its tail or live once the session stays on a.
    const got: unknown[] = []
    const socket = a!.sockets.add('s1', sid)
    a!.adapter.addAll('s1', ['s1', 'r'])
    await a!.adapter.sessionOpened(sid)
    socket.handedOff = (text) => got.push(argOf(text))
    expect(await a!.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)

    await givenUpNeverRun(a!)

    // The seal's wait ends by what proves the awaited broadcast never ran, or by a's close: its
    // limit, run out by hand, never here (on a loaded machine it could pass before the checks).
    const limit = markerLimitByHand()
    const markerRan = markerRunOf(b!)
    // A socket of a's own in the room, not handed over: it tells what a read, and when.
    const witness = a!.sockets.add('s2')
    a!.adapter.addAll('s2', ['s2', 'r'])
    const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
    const claimed = b!.sockets.add('s1', sid)
    const taking = claim.takeOver(() => b!.adapter.addAll('s1', ['s1', 'r']))
    await until(markerRan, 5000, 'the marker run')
    c!.adapter.broadcast(message('news', ['other']), to(['r']))
    await until(() => witness.got.includes('other'), 5000, "c's broadcast read on a past the marker")
    expect(got).toEqual([])
    expect(limit.running).toBe(1)
    return { a: a!, c: c!, sid, got, socket, taking, witness, claimed }
  }

  it('asks the socket kept on its node, in order with what its rooms got meanwhile', async () => {
    const { a, c, sid, got, taking, witness, claimed } = await heldAtMarker()
    // Read on a past the marker while the seal waits: a's s2 and b's s1 (joined at the marker)
    // are asked at once; a's s1 is out of its rooms.
    const fromC = ask(c, 'from-c', ['r'])
    await until(() => witness.got.includes('from-c'), 5000, "c's question read on a")
    // This node's own, kept to itself.
    const local = ask(a, 'local', ['r'], true)
    expect(got).toEqual([])

    // The server gives the write up: the session goes on on a. a's own question, back past the
    // marker, proves the awaited broadcast never ran, and the seal's wait is over.
    await within(a.adapter.withdrawHandOff(sid), 5000, 'the write given up')
    const own = ask(a, 'own', ['r'])
    await within(taking, 5000, 'the claim answered')
    await until(() => got.length >= 5, 3000, `what the socket missed (got ${JSON.stringify(got)})`)
    expect(got).toEqual(['given', 'other', 'from-c', 'local', 'own'])

    // Each sender counts it once: c's question and a's own a's two sockets (b asked its copy,
    // joined at the marker, but the session is a's: b counts none), a's local one a's two;
    // every one replied.
    await answeredByTwo(fromC, "the count and replies of c's question")
    expect(claimed.got).toContain('from-c')
    await answeredByTwo(local, "the replies to a's local question")
    await answeredByTwo(own, "the count and replies of a's own question")
    expect([...fromC.replies, ...local.replies, ...own.replies].every((reply) => reply.ok)).toBe(true)
  })

  it('asks the sealed session what no claimer asks, into its tail, and leaves the rest to the claimer', async () => {
    const { a, c, got, taking, witness, claimed } = await heldAtMarker()
    const fromC = ask(c, 'from-c', ['r'])
    await until(() => witness.got.includes('from-c'), 5000, "c's question read on a")
    const local = ask(a, 'local', ['r'], true)
    // a's own question: back past the marker, it proves the awaited broadcast never ran, and
    // the seal goes.
    const own = ask(a, 'own', ['r'])
    await within(taking, 5000, 'the claim answered')

    // The tail holds the awaited broadcast, then the local question, which only a could ask; c's
    // and a's own, read past the marker, are the claimer's, asked of its socket there.
    expect(got).toEqual(['given', 'local'])
    await until(() => claimed.got.includes('own'), 3000, "a's own question asked on b")
    expect(claimed.got).toContain('from-c')
    await answeredByTwo(own, "the count and replies of a's own question")
    await answeredByTwo(local, "the replies to a's local question")
    await answeredByTwo(fromC, "the count and replies of c's question")
  })

  it('loses only what a socket throws at when the session stays, and every sender gets its count', async () => {
    const { a, c, sid, got, socket, taking, witness } = await heldAtMarker()
    // The socket throws at a plain broadcast and at a question kept aside for it.
    const tail = socket.handedOff
    socket.handedOff = (text) => {
      const arg = argOf(text)
      if (arg === 'other' || arg === 'local') throw new Error(`the socket threw at ${String(arg)}`)
      tail?.(text)
    }
    const fromC = ask(c, 'from-c', ['r'])
    await until(() => witness.got.includes('from-c'), 5000, "c's question read on a")
    const local = ask(a, 'local', ['r'], true)
    const left = await unheard(async () => {
      await within(a.adapter.withdrawHandOff(sid), 5000, 'the write given up')
      const own = ask(a, 'own', ['r'])
      await within(taking, 5000, 'the claim answered')
      await until(() => got.length >= 3, 3000, `what the socket got (got ${JSON.stringify(got)})`)
      expect(got).toEqual(['given', 'from-c', 'own'])
      // The one that threw is counted, and its reply fails; the others' come as before.
      await answeredByTwo(local, "a's local question settled")
      expect(local.replies.filter((reply) => !reply.ok)).toHaveLength(1)
      // Once each: the claimer's copy, dropped, is not counted (see revoked-claim-count.test.ts).
      await answeredByTwo(fromC, "the count and replies of c's question")
      await answeredByTwo(own, "the count and replies of a's own question")
    })
    expect(left).toEqual([])
    expect(a.warnings.filter((line) => line.includes('kept aside'))).not.toHaveLength(0)
  })

  it('seals all the same when the socket throws at a question asked into its tail', async () => {
    const { a, c, got, socket, taking, witness, claimed } = await heldAtMarker()
    const tail = socket.handedOff
    socket.handedOff = (text) => {
      if (argOf(text) === 'local') throw new Error('the socket threw at local')
      tail?.(text)
    }
    const fromC = ask(c, 'from-c', ['r'])
    await until(() => witness.got.includes('from-c'), 5000, "c's question read on a")
    const local = ask(a, 'local', ['r'], true)
    const left = await unheard(async () => {
      const own = ask(a, 'own', ['r'])
      await within(taking, 5000, 'the claim answered')
      expect(got).toEqual(['given'])
      await until(() => claimed.got.includes('own'), 3000, "a's own question asked on b")
      await answeredByTwo(local, "a's local question settled")
      expect(local.replies.filter((reply) => !reply.ok)).toHaveLength(1)
      await until(() => own.replies.length === 2 && fromC.replies.length === 2, 3000, 'the other replies')
      expect([own.count, fromC.count]).toEqual([2, 2])
    })
    expect(left).toEqual([])
  })

  it('gives the sealed session what no claimer reads, plain broadcasts too, into its tail, in order', async () => {
    const { a, got, taking } = await heldAtMarker()
    // c's broadcast, read past the marker, is the claimer's. What only a has is not: its local
    // broadcast, its local question, and its own broadcast never sent (Redis out of reach).
    a.adapter.broadcast(message('news', ['plain-local']), to(['r'], true))
    const local = ask(a, 'local', ['r'], true)
    a.down = true
    a.adapter.broadcast(message('news', ['never-sent']), to(['r']))
    a.down = false
    await until(() => a.adapter.stats.lostBroadcasts === 2, 3000, 'the broadcast never sent')
    // a's own question: back past the marker, it proves the awaited broadcast never ran, and
    // the seal goes.
    ask(a, 'own', ['r'])
    await within(taking, 5000, 'the claim answered')
    expect(got).toEqual(['given', 'plain-local', 'local', 'never-sent'])
    await answeredByTwo(local, "the replies to a's local question")
  })
})
