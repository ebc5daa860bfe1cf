// A plain broadcast of the old node whose PUBLISH was given up (no answer within requestTimeout)
// while the session is handed over: Redis runs it late, before the claim marker or after it, or
// never. The session's client must get each broadcast once, in order, whichever. Three Parley
// servers on one real Redis behind a round-robin proxy, and the real client; Redis commands are
// held back to set the order of the claim marker and the broadcast.
import type { RedisAdapter } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import {
  claimRaceSuite,
  heldBack,
  isMarker,
  joinedOn,
  type RaceNode as Node,
  untilInTail,
} from './claim-race.js'

/** The PUBLISH of the broadcast whose first argument is `what`. */
const isNews = (what: string) => (args: string[]) =>
  args[0] === 'PUBLISH' &&
  (args[1] ?? '').endsWith(':broadcast') &&
  (args[2] ?? '').includes(JSON.stringify(what).slice(1, -1))

/**
 * The note a PUBLISHes to itself behind a broadcast given up (its probe): held behind that
 * broadcast, as a Redis slow to answer its connection would hold it.
 */
const isProbe = (args: string[]) =>
  args[0] === 'PUBLISH' && (args[1] ?? '').includes(':response:') && (args[2] ?? '').includes('"id":"probe"')

describe.skipIf(skipRedisSuites())('a plain broadcast given up while its session is handed over', () => {
  // The client keeps the argument of each `news` it gets, in order: `got`.
  const { scene } = claimRaceSuite((client) => {
    const got: string[] = []
    client.on('news', (what: string) => {
      got.push(what)
    })
    return { got }
  })

  /** Broadcasts `news` with `what` to every socket in `room` from `node`. */
  function send(node: Node, what: string): void {
    node.started.app.parley.to('room').emit('news', what)
  }

  /**
   * a's broadcast `one` held back past a's requestTimeout while b's marker waits: the session
   * is being handed over from a when a gives it up.
   */
  async function givenUp(prefix: string) {
    const aHold = heldBack(isNews('one'), isProbe)
    const bHold = heldBack(isMarker, () => false)
    const scene_ = await scene(prefix, { a: aHold, b: bHold }, 500)
    await until(() => bHold.held.length === 1, 5000, "b's marker held")
    const adapterA = scene_.a.started.app.parley.adapter as RedisAdapter
    send(scene_.a, 'one')
    await until(() => aHold.held.length === 1, 3000, "a's broadcast held")
    await until(() => adapterA.stats.lostBroadcasts === 1, 3000, "a's broadcast given up")
    return { ...scene_, aHold, bHold }
  }

  /** a broadcasts `news` with `what`, and it goes into the tail of the session a hands over. */
  async function intoTail(a: Node, what: string): Promise<void> {
    const appended = a.commands.length
    send(a, what)
    await untilInTail(a, appended, what)
  }

  /**
   * b's marker let go: once b took the session over, `two` reaches the client, then `three`,
   * which a sends after it.
   */
  async function markerThenThree({ a, b, got, id, bHold }: Awaited<ReturnType<typeof givenUp>>) {
    await bHold.runAll()
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    await until(() => got.includes('two'), 5000, `the next broadcast at the client (got ${got})`)
    send(a, 'three')
    await until(() => got.includes('three'), 5000, 'the last broadcast at the client')
  }

  it('reaches the session once when Redis runs it after the marker', async () => {
    const { a, b, got, id, aHold, bHold } = await givenUp('given-up-after')
    await bHold.runAll()
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    // Redis runs it now, after the marker: b's to deliver.
    await aHold.runAll()
    send(a, 'two')
    await until(() => got.includes('two'), 5000, 'the next broadcast at the client')
    expect(got).toEqual(['one', 'two'])
  })

  it('reaches the session once when Redis runs it before the marker', async () => {
    const given = await givenUp('given-up-before')
    const { a, got, aHold } = given
    // Redis runs it now, before the marker: a's, into the tail.
    await aHold.runAll()
    await intoTail(a, 'two')
    await markerThenThree(given)
    expect(got).toEqual(['one', 'two', 'three'])
  })

  it('reaches the session once when Redis never runs it and a later one comes back first', async () => {
    const given = await givenUp('given-up-never')
    const { a, got, aHold } = given
    // Answered, not run: as a command lost with its connection, but for the connection. Its
    // answer is read before the next broadcast goes.
    aHold.dropAll(0)
    await new Promise((resolve) => setImmediate(resolve))
    // Back before the marker, a's next broadcast says that the first never ran.
    await intoTail(a, 'two')
    await markerThenThree(given)
    expect(got).toEqual(['one', 'two', 'three'])
  })

  it('misses the one that never ran when the marker comes first, not those given up behind it', async () => {
    const given = await givenUp('given-up-unknown')
    const { a, b, got, id, aHold, bHold } = given
    // Not sent while a's first broadcast is unanswered: it waits behind that one.
    send(a, 'two')
    await until(
      () => (a.started.app.parley.adapter as RedisAdapter).stats.lostBroadcasts === 2,
      3000,
      'two lost',
    )
    // The marker comes back before anything says that the first never ran (its probe's note is
    // held behind it): a lets the session go there.
    await bHold.runAll()
    const adapterA = a.started.app.parley.adapter as RedisAdapter
    await until(() => adapterA.handingOver === 0, 5000, 'the marker read on a')
    // Answered at last, unrun: a's next probe settles it after the marker, which reaches no one.
    aHold.dropAll(0)
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    await until(() => got.includes('two'), 5000, `the next broadcast at the client (got ${got})`)
    send(a, 'three')
    await until(() => got.includes('three'), 5000, 'the last broadcast at the client')
    // The first never ran: nothing told a in time, which cannot deliver it without risking it
    // twice.
    expect(got).toEqual(['two', 'three'])
  }, 30_000)
})
