// A claim marker Redis refused never runs: without it on the channel there is no cut, the old
// node never hears of the claim and goes on numbering into the tail what reaches its socket,
// while the claimer, joined, gets the same broadcasts live. The claimer sends the marker again,
// and the session gets each broadcast once, in order: through the tail, or live after the join.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { markerPauses } from '../src/takeover.js'
import {
  argOf,
  dropConnection,
  type FakeNode,
  HeldInOrder,
  HeldOnDroppedLink,
  handedOffSession,
  handoffNodes,
  handoffScenes,
  message,
  reachesLive,
  takeOverOn,
  to,
  untilTailHolds,
  won,
  x1HeldFromClaimer,
} from './handoff-support.js'
import { isProbe } from './published.js'

const isMarker = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('"k":"claim"')

const scene = handoffScenes()

const isFinish = (args: string[]) =>
  args[0] === 'EVAL' && (args[1] ?? '').includes("redis.call('HSET', KEYS[1], 'read', '1')")

/**
 * On `node`: every claim marker refused, and commands that `refuse` matches; from the first
 * command `first` matches (the read of the tail, after the join), that one and every command
 * after it wait, in order, until `run()`, as on one connection: a command sent after another is
 * answered after it, a refusal too. Not sent meanwhile (a link that stalls from it on), or,
 * `sent`, run on Redis as they come, only their answers held (a connection slow to answer).
 */
function heldFinish(
  node: FakeNode,
  refuse: (args: string[]) => boolean = () => false,
  { first = isFinish, sent = false }: { first?: (args: string[]) => boolean; sent?: boolean } = {},
) {
  const refused = Symbol('refused')
  const refuses = (args: string[]) => isMarker(args) || refuse(args)
  const held = new HeldInOrder(
    {
      sendCommand: (args) => (refuses(args) ? Promise.resolve(refused) : node.redis.sendCommand(args)),
    },
    first,
    () => true,
  )
  if (sent) held.sendAll()
  node.hold = (args) =>
    (held.hold(args) ?? (refuses(args) ? Promise.resolve(refused) : undefined))?.then((reply) =>
      reply === refused ? Promise.reject(new Error('ERR refused')) : reply,
    )
  return {
    /** Whether the read of the tail is among the commands held. */
    get held() {
      return held.held.some(isFinish)
    },
    run: () => held.runAll(),
  }
}

describe.skipIf(skipRedisSuites())('a takeover whose claim marker Redis refused', () => {
  it('sends the marker again: the old node seals at the cut, and each broadcast reaches the session once', async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { proxy, cluster } = await scene()
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, {
        subscriberVia: proxy,
      })

      // a hands session `sid` off to b's claim; b's subscriber stops reading: c's x1 reaches
      // a's socket (into the tail), not b yet.
      const sid = 'sid-refused'
      const held = await x1HeldFromClaimer([a, b, c], proxy, sid)
      release = held.release
      const { claim } = held
      await untilTailHolds(cluster, a, 1, 'x1 in the tail')

      // Redis refuses b's first marker.
      let refused = 0
      b.hold = (args) => {
        if (!isMarker(args) || refused > 0) return undefined
        refused++
        return Promise.reject(new Error('ERR the first marker is refused'))
      }
      const { taken, done } = takeOverOn(b, claim, sid)
      // Refused (logged as it is handled): x1 comes to b after that.
      await until(() => b.warnings.includes('@parley/redis: PUBLISH failed'), 5000, 'the marker refused')
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')
      expect(refused).toBe(1)

      // Later ones reach the socket live.
      await reachesLive(c, 'x2', taken)
      await reachesLive(b, 'x3', taken)
      await reachesLive(c, 'x4', taken)

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3', 'x4'])
      // The old node heard the claim, and sealed the tail at the cut.
      expect(a.sockets.claims).toEqual([sid])
      expect(result).toMatchObject({ complete: true, late: false })
    } finally {
      release?.()
    }
  })

  it('sends the marker again once a dropped connection is back: the old node seals at the cut', async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { proxy, cluster } = await scene()
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, {
        subscriberVia: proxy,
      })

      const sid = 'sid-dropped'
      const held = await x1HeldFromClaimer([a, b, c], proxy, sid)
      release = held.release
      const { claim } = held
      await untilTailHolds(cluster, a, 1, 'x1 in the tail')

      // b's first marker is lost with its connection: its link stalls from it on (what b sends
      // after it waits behind it), then drops, and none of it ever runs.
      const lost = new HeldOnDroppedLink(b, isMarker)
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => lost.held.length > 0, 5000, 'the marker on its way')
      await dropConnection(b)
      await until(() => a.sockets.claims.includes(sid), 5000, 'the marker sent again, at a')
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')
      expect(b.commands.filter(isMarker)).toHaveLength(2)
      expect(result).toMatchObject({ complete: true, late: false })

      await reachesLive(c, 'x2', taken)
      await reachesLive(b, 'x3', taken)
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
    } finally {
      release?.()
    }
  })

  it('stops after five markers all refused: the takeover goes on without a cut, within its bound', async () => {
    const { cluster } = await scene()
    const [a, b] = await cluster.start(2)
    const sid = 'sid-refused-always'
    await handedOffSession(a!, sid)
    const claim = won(await b!.adapter.claimSession(sid))
    b!.hold = (args) =>
      isMarker(args) ? Promise.reject(new Error('ERR every marker is refused')) : undefined
    let joins = 0
    const result = await within(
      claim.takeOver(() => joins++),
      5000,
      'the takeover',
    )
    expect(b!.commands.filter(isMarker)).toHaveLength(5)
    expect(joins).toBe(1)
    // Read without the old node's seal: it never heard of the claim.
    expect(result).toMatchObject({ tail: [], complete: false, late: false })
    expect(a!.sockets.claims).toEqual([])
  })

  it('joined without a cut after five refused markers: what the old node put in the tail reaches the session once', async () => {
    const { proxy, cluster } = await scene()
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, { subscriberVia: proxy })
      const sid = 'sid-refused-tail'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      // b's subscriber stops reading: b's and c's broadcasts reach a's tail, and wait for b.
      release = proxy.holdDownstream()
      b.adapter.broadcast(message('news', ['x1']), to(['r']))
      c.adapter.broadcast(message('news', ['x2']), to(['r']))
      await untilTailHolds(cluster, a, 2, 'x1 and x2 in the tail')

      // Every marker is refused: b joins the socket without a cut, and reads the tail unsealed.
      b.hold = (args) =>
        isMarker(args) ? Promise.reject(new Error('ERR every marker is refused')) : undefined
      const { taken, done } = takeOverOn(b, claim, sid)
      const result = await within(done, 5000, 'the takeover')
      expect(result.tail.map(argOf)).toEqual(['x1', 'x2'])
      expect(result.complete).toBe(false)

      // b then reads x1 (its own) and x2 back: the tail has them, the socket does not take them.
      release()
      release = undefined
      await reachesLive(c, 'x3', taken)
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
    } finally {
      release?.()
    }
  })

  it('joined without a cut after five refused markers: its own broadcast emitted before the tail is read reaches the session once', async () => {
    const { cluster } = await scene()
    const [a, b] = await cluster.start(2)
    const sid = 'sid-refused-own'
    const atA = await handedOffSession(a!, sid)
    const claim = won(await b!.adapter.claimSession(sid))

    // Every marker is refused, and b's link stalls from the read of the tail on: b joins the
    // socket without a cut. x1, emitted by b as it joins, goes before the read on b's connection:
    // it reaches a's socket, which puts it into the tail b is about to read.
    const finish = heldFinish(b!)
    const { taken, done } = takeOverOn(b!, claim, sid, () => {
      b!.adapter.addAll('s1', ['s1', 'r'])
      b!.adapter.broadcast(message('news', ['x1']), to(['r']))
    })
    await until(() => finish.held, 5000, 'the read of the tail, after the join')
    await untilTailHolds(cluster, a!, 1, 'x1 in the tail')
    expect(atA.map(argOf)).toEqual(['x1'])
    await finish.run()
    const result = await within(done, 5000, 'the takeover')
    expect(result.tail.map(argOf)).toEqual(['x1'])

    await reachesLive(b!, 'x2', taken)
    expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2'])
  })

  it('joined without a cut: its own broadcast whose PUBLISH is refused before the tail is read still reaches the session', async () => {
    const { cluster } = await scene()
    const [a, b] = await cluster.start(2)
    const sid = 'sid-refused-own-lost'
    await handedOffSession(a!, sid)
    const claim = won(await b!.adapter.claimSession(sid))
    // x1, emitted by b as it joins the socket, goes before the read on b's connection, and the
    // read waits (a link that stalls from it on).
    const finish = heldFinish(b!, (args) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('x1'))
    const { taken, done } = takeOverOn(b!, claim, sid, () => {
      b!.adapter.addAll('s1', ['s1', 'r'])
      b!.adapter.broadcast(message('news', ['x1']), to(['r']))
    })
    await until(() => finish.held, 5000, 'the read of the tail, after the join')

    // x1 never crosses Redis: a never has it, and the socket, left out when it was emitted, takes it.
    await until(() => b!.adapter.stats.lostBroadcasts === 1, 5000, 'x1 refused')
    await finish.run()
    const result = await within(done, 5000, 'the takeover')
    expect(result.tail).toEqual([])

    await reachesLive(b!, 'x2', taken)
    expect(taken.got).toEqual(['x1', 'x2'])
  })

  it('joined without a cut while an own broadcast may still run: one refused before the tail is read reaches the session after what it holds', async () => {
    const { cluster } = await scene()
    const [a, b, c] = await handoffNodes(cluster)
    const sid = 'sid-refused-own-positioned'
    await handedOffSession(a, sid)
    const claim = won(await b.adapter.claimSession(sid))
    // A socket of b's that takes b's broadcasts when emitted, and c's as b reads them.
    const watch = b.sockets.add('w', 'sid-watch')
    b.adapter.addAll('w', ['w', 'b-only'])
    // y0 is lost with b's connection, which drops under it: Redis never runs it, and b cannot
    // tell (every probe that could prove it is lost). On its way, it keeps the socket positioned
    // from the join on (see cut.ts).
    const y0 = new HeldOnDroppedLink(b, (args) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('y0'))
    b.lose = isProbe
    b.adapter.broadcast(message('news', ['y0']), to(['nobody']))
    await until(() => y0.held.length > 0, 5000, 'y0 on its way')
    await dropConnection(b)
    await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'y0 given up')
    // Every marker is refused, and so is x2, emitted by b as it joins the socket: Redis runs x2,
    // then the read of the tail behind it, and their answers are slow to come, in order.
    const isX2 = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('x2')
    const finish = heldFinish(b, isX2, { first: isX2, sent: true })
    try {
      const { taken, done } = takeOverOn(b, claim, sid, () => {
        b.adapter.addAll('s1', ['s1', 'r', 'b-only'])
        b.adapter.broadcast(message('news', ['x2']), to(['b-only']))
      })
      await until(() => finish.held, 5000, 'the read of the tail, after the join')

      // c1 (to a room a's socket is not in: no tail has it) is read by b before the tail: the
      // socket holds it meanwhile.
      c.adapter.broadcast(message('news', ['c1']), to(['b-only']))
      await until(() => watch.got.includes('c1'), 5000, 'c1 read by b')
      expect(taken.got).toEqual([])

      // x2 never crosses Redis: refused before the tail is read, the socket takes it, after c1.
      expect(b.adapter.stats.lostBroadcasts).toBe(1)
      await finish.run()
      // Its line waits behind y0's (one of a kind every 10 s): counted, it is given up.
      await until(() => b.adapter.stats.lostBroadcasts === 2, 5000, 'x2 refused')
      const result = await within(done, 5000, 'the takeover')
      expect(result.tail).toEqual([])
      expect(taken.got).toEqual(['c1', 'x2'])
    } finally {
      b.hold = undefined
      b.lose = undefined
    }
  }, 35_000)

  it('ends the pause before the next marker when the adapter closes: the takeover settles then', async () => {
    const { cluster } = await scene()
    const [a, b] = await cluster.start(2)
    const sid = 'sid-refused-closing'
    await handedOffSession(a!, sid)
    const claim = won(await b!.adapter.claimSession(sid))
    b!.hold = (args) => (isMarker(args) ? Promise.reject(new Error('ERR the marker is refused')) : undefined)
    // The pause made endless: nothing but the close can end it.
    let pauses = 0
    const pause = vi.spyOn(markerPauses, 'start').mockImplementation(() => {
      pauses++
      return () => {}
    })
    try {
      let joins = 0
      const done = claim.takeOver(() => joins++)
      await until(() => pauses === 1, 5000, 'the pause after the refused marker')
      const closed = b!.adapter.close()
      const result = await within(done, 5000, 'the takeover, once the adapter closed')
      expect(b!.commands.filter(isMarker)).toHaveLength(1)
      expect(pauses).toBe(1)
      expect(joins).toBe(1)
      expect(result).toMatchObject({ complete: false })
      await within(closed, 5000, 'the close')
    } finally {
      pause.mockRestore()
    }
  })
})
