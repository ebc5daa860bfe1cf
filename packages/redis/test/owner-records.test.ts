// The owner records of a node's sessions over a real Redis that refuses some of their writes: a
// record that could not be written or removed is written or removed once Redis takes it.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until } from '../../server/test/helpers.js'
import { type FakeNode, fakeClusterSuite } from './handoff-support.js'

/** The script that removes an owner record only while it names its node (see sessions.ts). */
const isRemoval = (args: string[]) =>
  args[0] === 'EVAL' && args[1]?.includes("redis.call('DEL', KEYS[1])") === true

/** Waits, at most `ms`, until `node` reads no owner record at `key`. */
async function recordGone(node: FakeNode, key: string, ms: number): Promise<void> {
  const end = performance.now() + ms
  while ((await node.redis.get(key)) !== null) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${key} to be removed`)
    await sleep(20)
  }
}

describe.skipIf(skipRedisSuites())('session owner records', () => {
  const suite = fakeClusterSuite()

  it('removes the record of a session that ended once Redis takes the removal, however often it refused it', async () => {
    const cluster = suite.cluster()
    const [a] = await cluster.start(1)
    a!.sockets.add('s1', 'sid-1')
    await a!.adapter.sessionOpened('sid-1')
    const key = `${cluster.prefix}:session:${createHash('sha256').update('sid-1').digest('base64url')}`
    expect(await a!.redis.get(key)).toBe(a!.adapter.node)

    // Refused at the session's end, and again when the next heartbeat sends it once more.
    let refused = 0
    a!.hold = (args) => {
      if (!isRemoval(args) || refused >= 2) return undefined
      refused++
      return Promise.reject(new Error('ERR refused by the test'))
    }
    a!.sockets.sessions.delete('sid-1')
    a!.adapter.sessionClosed('sid-1')
    await until(() => refused === 2, 5000, 'the removal refused twice')
    expect(await a!.redis.get(key)).toBe(a!.adapter.node)

    // A later heartbeat sends it again, and Redis takes it.
    await recordGone(a!, key, 5000)
    expect(a!.commands.filter(isRemoval).length).toBeGreaterThanOrEqual(3)
  })

  it("writes a session's route parameters beside its record, and both again once Redis lost them", async () => {
    const cluster = suite.cluster()
    const [a] = await cluster.start(1)
    a!.sockets.add('s1', 'sid-1')
    await a!.adapter.sessionOpened('sid-1', { tenant: 'acme' })
    const hash = createHash('sha256').update('sid-1').digest('base64url')
    const keys = [`${cluster.prefix}:session:${hash}`, `${cluster.prefix}:params:${hash}`]
    const both = [a!.adapter.node, '[["tenant","acme"]]']
    expect(await a!.redis.mGet(keys)).toEqual(both)
    // Lost (as by a restart of an empty Redis): the next heartbeats find it so, and write them again.
    await a!.redis.sendCommand(['FLUSHDB'])
    const end = performance.now() + 5000
    while ((await a!.redis.mGet(keys)).some((value) => value === null)) {
      if (performance.now() > end) throw new Error('timed out waiting for the record and its parameters')
      await sleep(20)
    }
    expect(await a!.redis.mGet(keys)).toEqual(both)
    // Gone with the session's end.
    a!.sockets.sessions.delete('sid-1')
    a!.adapter.sessionClosed('sid-1')
    await recordGone(a!, keys[1]!, 5000)
  })

  it('names a live owner without a url when it published no address', async () => {
    const cluster = suite.cluster()
    const [a, b] = await cluster.start(2)
    b!.sockets.add('s1', 'sid-1')
    await b!.adapter.sessionOpened('sid-1')
    expect(await a!.adapter.sessionOwner('sid-1')).toEqual({
      node: b!.adapter.node,
      url: 'http://127.0.0.1:1',
    })

    // b's server has no address any more (as one that does not listen): its heartbeats say so.
    b!.sockets.address = undefined
    const end = performance.now() + 5000
    let owner = await a!.adapter.sessionOwner('sid-1')
    while (typeof owner === 'object' && owner.url !== undefined && performance.now() < end) {
      await sleep(20)
      owner = await a!.adapter.sessionOwner('sid-1')
    }
    expect(owner).toEqual({ node: b!.adapter.node })
  })
})
