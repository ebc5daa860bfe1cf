// Redis delivers a PUBLISH only to the connections subscribed as it runs it. A broadcast with
// acks sent while another node's subscriber is reconnecting never reaches that node, and the
// counts sent while the asking node's own subscriber is never reach the asker: either way the
// total must still have that node's sockets once it hears again, not end short of them at
// requestTimeout; and no socket may be asked twice, on a node that had the first ask after all.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import type { TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { allLive, deafen, deafenable, ranInRedis } from './deaf-subscriber.js'
import { GHOST, haunt, published } from './ghost-node.js'
import { type FakeNode, handoffScenes, message, repliesAs, to } from './handoff-support.js'

const scene = handoffScenes()

/** Far longer than the test takes with every count in: a total given by then lacks one. */
const REQUEST_TIMEOUT = 8000

/** The broadcast's own timeout: longer still, so that only requestTimeout could end it short. */
const TIMEOUT = 30_000

/** The counts among them. */
function counts(node: FakeNode, channel: string): string[][] {
  return published(node, channel).filter(([, , text]) => text!.includes('"k":"count"'))
}

/** Socket `id` of `node`, in room `room`, replying with its id. */
function inRoom(node: FakeNode, id: string) {
  const socket = node.sockets.add(id)
  node.adapter.addAll(id, [id, 'room'])
  repliesAs(socket, id)
  return socket
}

/** `a` asks room `room`, with acks; its total to come, and the replies as they come. */
function ask(a: FakeNode) {
  const replies: BroadcastReply[] = []
  const total = new Promise<number>((counted) => {
    a.adapter.broadcastWithAck(message('ask', [1]), to(['room']), TIMEOUT, counted, (reply) =>
      replies.push(reply),
    )
  })
  return { total, replies }
}

/**
 * b's subscriber is cut, then `a` asks: resolves once Redis ran a's request (under `prefix`),
 * which b's subscriber missed, with what `ask` gave.
 */
async function askedWhileBDeaf(a: FakeNode, b: FakeNode, proxy: TcpProxy, prefix: string) {
  await deafen(b, proxy)
  const asked = ask(a)
  await until(() => published(a, `${prefix}:request`).length === 1, 5000, "a's broadcast sent")
  await ranInRedis(a)
  return asked
}

/** b's subscriber hears again, and b says so to `a`: until b sent its note on `toA`. */
async function bHearsAgain(b: FakeNode, proxy: TcpProxy, toA: string): Promise<void> {
  proxy.offline = false
  await until(
    () => published(b, toA).some(([, , text]) => text!.includes('"k":"resubscribed"')),
    5000,
    "b's note to a",
  )
}

describe.skipIf(skipRedisSuites())('a broadcast with acks around a subscriber that reconnects', () => {
  it("counts a live node's sockets when that node's subscriber was reconnecting as it went out", async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'b', REQUEST_TIMEOUT)
    const c = await cluster.node()
    await allLive([a, b, c])
    inRoom(a, 'a0')
    const b0 = inRoom(b, 'b0')
    const c0 = inRoom(c, 'c0')

    // b's subscriber is down; b's own connection beats on, so b stays live to a.
    const { total, replies } = await askedWhileBDeaf(a, b, proxy, cluster.prefix)
    expect(a.adapter.liveNodes).toContain(b.adapter.node)

    // b hears again: a's broadcast, which it missed, reaches it, and the total is whole.
    proxy.offline = false
    expect(await within(total, REQUEST_TIMEOUT + 2000, "a's total")).toBe(3)
    await until(() => replies.length === 3, 5000, 'the three replies')
    expect(replies.map((reply) => (reply.ok ? reply.value : reply.error.code)).sort()).toEqual([
      'a0',
      'b0',
      'c0',
    ])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(a.warnings.filter((w) => w.includes('broadcast with acks'))).toEqual([])
    // Asked again of b alone: c, which had counted, is not asked twice, nor is its socket.
    expect(b0.got).toEqual([1])
    expect(c0.got).toEqual([1])
    expect(counts(c, `${cluster.prefix}:response:${a.adapter.node}`)).toHaveLength(1)
  })

  it("counts the other nodes' sockets when the asking node's own subscriber was reconnecting as they counted, asking none twice", async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'a', REQUEST_TIMEOUT)
    await allLive([a, b])
    inRoom(a, 'a0')
    const b0 = inRoom(b, 'b0')

    // a's subscriber is down as b counts: the count is lost to a.
    await deafen(a, proxy)
    const { total } = ask(a)
    const toA = `${cluster.prefix}:response:${a.adapter.node}`
    await until(() => counts(b, toA).length === 1, 5000, "b's count sent")
    await ranInRedis(b)

    // a hears again and asks b again: b, which had the first ask, gives its count again, and
    // does not ask its socket a second time.
    proxy.offline = false
    expect(await within(total, REQUEST_TIMEOUT + 2000, "a's total")).toBe(2)
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(counts(b, toA)).toHaveLength(2)
    expect(b0.got).toEqual([1])
  })

  it('asks again a node heard subscribing again before Redis answered the PUBLISH of the request', async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'b', REQUEST_TIMEOUT)
    await allLive([a, b])
    inRoom(a, 'a0')
    const b0 = inRoom(b, 'b0')
    const request = `${cluster.prefix}:request`
    // Redis runs a's request at once, but its answer reaches a only once let go.
    let answer = () => {}
    const answered = new Promise<void>((resolve) => {
      answer = resolve
    })
    a.hold = (args) => {
      if (args[0] !== 'PUBLISH' || args[1] !== request) return undefined
      const ran = a.redis.sendCommand(args)
      return answered.then(() => ran)
    }

    const { total } = await askedWhileBDeaf(a, b, proxy, cluster.prefix)

    // b hears again, and says so to a, before a knows that Redis took its request.
    const toA = `${cluster.prefix}:response:${a.adapter.node}`
    await bHearsAgain(b, proxy, toA)
    await ranInRedis(b)
    // A message a cannot read, PUBLISHed after b's note: once a said so, it read the note.
    await a.redis.sendCommand(['PUBLISH', toA, 'after the note'])
    await until(() => a.warnings.some((w) => w.includes('malformed')), 5000, 'the note read by a')

    answer()
    expect(await within(total, REQUEST_TIMEOUT + 2000, "a's total")).toBe(2)
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(b0.got).toEqual([1])
  })

  it('asks no node again while a node of an earlier version is live, which would ask its sockets twice', async () => {
    const { proxy, cluster, a, b } = await deafenable(scene, 'b', REQUEST_TIMEOUT)
    // A node whose record has no note beside it: of an earlier version, that would run an ask
    // meant for b alone as one of its own. It never counts.
    await haunt(a.redis, cluster.prefix)
    await until(
      () => a.adapter.liveNodes.includes(GHOST) && a.adapter.liveNodes.includes(b.adapter.node),
      5000,
      'b and the old node live to a',
    )
    inRoom(a, 'a0')
    const b0 = inRoom(b, 'b0')

    const { total } = await askedWhileBDeaf(a, b, proxy, cluster.prefix)

    // b hears again, and says so to a; a asks nobody again, and its total lacks b's socket.
    await bHearsAgain(b, proxy, `${cluster.prefix}:response:${a.adapter.node}`)
    expect(await within(total, REQUEST_TIMEOUT + 2000, "a's total")).toBe(1)
    expect(published(a, `${cluster.prefix}:request`)).toHaveLength(1)
    expect(b0.got).toEqual([])
    expect(a.adapter.stats.incompleteRequests).toBe(1)
  })
})
