// Redis is marked refilling (a claim that finds nothing answers 'retry': the session's node may
// not have written its record again yet) only when it lost writes. Not when a node's own record
// lapsed because its heartbeats were held up (a stalled process, a slow connection), whether the
// node goes on or closes then: the beat that comes late finds its record gone, but Redis lost
// nothing, and every resume of a session that is truly gone would be told to try again, on every
// node, for a record lifetime (a rolling deploy's closing nodes did that to the others' resumes).
// Nor when a node was paused for more than a day, past the lifetime of its beat record: that
// record expired, as the node's owner records did, which the node writes again.
import { createHash } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { ADDRESS_KEEP_MS, stallClock } from '../src/nodes.js'
import { holding } from './handoff-support.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'
import { type RawRedis, rawRedis } from './raw-redis.js'

// Each test under a prefix of its own: a mark left by the one before it is no answer of its.
let tests = 0
let prefix = 'refill'

/** The owner record of session `sid` under the suite's prefix (see sessions.ts). */
const ownerKey = (sid: string) => `${prefix}:session:${createHash('sha256').update(sid).digest('base64url')}`

describe.skipIf(skipRedisSuites())('the mark that Redis is being refilled', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const cleanups: (() => Promise<unknown>)[] = []

  beforeEach(() => {
    prefix = `refill-${++tests}`
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  /**
   * Nodes a and b seeing each other. a's heartbeats can be held before they reach Redis (`hold`),
   * as a stalled process holds them, and let through (`release`, which resolves once Redis
   * answered them and a read the answers); `sent` lists every command a sent to Redis, in order,
   * its name and first key.
   */
  async function scene() {
    const redis = await rawRedis(suite.redis.url, cleanups)
    const held: (() => Promise<unknown>)[] = []
    const sent: string[] = []
    let hold = false
    const isBeat = (args: string[]) => args[0] === 'EVAL' && args[3] === `${prefix}:nodes`
    const client = holding(redis, (args) => {
      if (!hold || !isBeat(args)) {
        sent.push(`${args[0]} ${isBeat(args) ? 'heartbeat' : (args[1] ?? '')}`)
        return undefined
      }
      return new Promise((resolve, reject) =>
        held.push(() => {
          sent.push(`${args[0]} heartbeat`)
          const reply = redis.sendCommand(args)
          reply.then(resolve, reject)
          return reply
        }),
      )
    })
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { prefix, client })
    const b = await nodes.start(suite.redis.url, { prefix })
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    return {
      a,
      b,
      sent,
      held,
      hold: () => {
        hold = true
      },
      release: async () => {
        hold = false
        await Promise.allSettled(held.splice(0).map((send) => send()))
        // The node reads an answer in the microtasks that follow it.
        await new Promise((resolve) => setImmediate(resolve))
      },
    }
  }

  /** Waits until `node`'s record lapsed: no heartbeat of its reached Redis for a record lifetime. */
  async function lapsed(raw: RawRedis, node: TestNode): Promise<void> {
    const record = `${prefix}:node:${node.adapter.node}`
    for (let tries = 0; (await raw.exists(record)) === 1; tries++) {
      if (tries > 500) throw new Error(`the record of ${node.adapter.node} did not lapse`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /** Waits until `key` is in Redis: 5 s at most. */
  async function written(raw: RawRedis, key: string, what: string): Promise<void> {
    for (let tries = 0; (await raw.exists(key)) === 0; tries++) {
      if (tries > 500) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  it('is not left by a node whose own record lapsed while its heartbeats were held up: a gone session is gone at once, and no owner record is written again', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const { a, b, sent, held, hold, release } = await scene()
    // A session of a's, whose owner record a wrote.
    await nodes!.client(a)
    const owner = `SET ${prefix}:session:`
    await until(() => sent.some((command) => command.startsWith(owner)), 3000, 'the owner record written')
    hold()
    await until(() => held.length > 0, 5000, "a's heartbeat held")
    await lapsed(raw, a)
    const before = sent.length
    await release()
    // Nor does a write the owner records of its sessions again: Redis still has them.
    expect(sent.slice(before).filter((command) => command.startsWith(owner))).toEqual([])
    // The late beat writes a's record again: it ran.
    await until(() => a.adapter.liveNodes.length === 1, 5000, 'a reads the live set again')
    for (let tries = 0; (await raw.exists(`${prefix}:node:${a.adapter.node}`)) === 0; tries++) {
      if (tries > 500) throw new Error("a's late beat did not write its record again")
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(await raw.get(`${prefix}:refilling`), 'Redis lost nothing').toBeNull()
    expect(await b.adapter.claimSession('sid-never')).toBeNull()
  })

  it("is not left by a closing node's heartbeat held up past its record's lifetime, and no heartbeat follows its removal", async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const { a, b, sent, held, hold, release } = await scene()
    hold()
    await until(() => held.length > 0, 5000, "a's heartbeat held")
    await lapsed(raw, a)
    // a closes with that beat in flight: its goodbye waits for it, then removes the record.
    const closing = nodes!.stop(a)
    await release()
    await within(closing, 5000, 'a closes')
    expect(await raw.exists(`${prefix}:node:${a.adapter.node}`), "a's record removed").toBe(0)
    // Its beat record with it, which a node closed has no use for: kept, it would last a day.
    expect(await raw.exists(`${prefix}:node:${a.adapter.node}:beat`), "a's beat record removed").toBe(0)
    const removal = sent.indexOf(`DEL ${prefix}:node:${a.adapter.node}`)
    expect(removal, 'the removal sent').toBeGreaterThan(-1)
    expect(sent.slice(removal), 'no heartbeat after the removal').not.toContain('EVAL heartbeat')
    expect(await raw.get(`${prefix}:refilling`), 'Redis lost nothing').toBeNull()
    expect(await b.adapter.claimSession('sid-never')).toBeNull()
  })

  it('is left when Redis restarts from a snapshot older than the last heartbeats, though every record in it is still there', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    nodes = new Nodes()
    // Records that outlive the test by far: only what Redis lost can say it lost them.
    const options = { prefix, heartbeatInterval: 10_000 }
    const a = await nodes.start(suite.redis.url, options)
    const b = await nodes.start(suite.redis.url, options)
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    // One heartbeat of a's now, answered: a lookup of a session of a node a never heard of reads
    // the live set first.
    const beatNow = async (ghost: string) => {
      await raw.set(ownerKey(`sid-${ghost}`), ghost, { EX: 60 })
      expect(await a.adapter.sessionOwner(`sid-${ghost}`)).toBe('unknown')
    }
    await raw.sendCommand(['SAVE'])
    await beatNow('ghost-1')
    // The snapshot holds a's record and b's, the index and the filled mark: all of it but a's
    // beat after it (and whatever else came since, an owner record as much as a beat).
    await suite.redis.restart({ lastSave: true })
    await until(() => a.redis.isReady && b.redis.isReady && raw.isReady, 10_000, 'the clients reconnect')
    expect(await raw.exists(`${prefix}:node:${a.adapter.node}`), "a's record, from the snapshot").toBe(1)
    expect(await raw.get(`${prefix}:refilling`)).toBeNull()
    await beatNow('ghost-2')
    expect(await raw.get(`${prefix}:refilling`), 'Redis lost writes').toBe('1')
    expect(await b.adapter.claimSession('sid-never')).toBe('retry')
  })

  it('is not left by a node paused for more than a day, whose beat record expired, and that node writes the owner records of its sessions again', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    // a's heartbeats fail without reaching Redis while it is paused, as a stopped process sends none.
    let paused = false
    const beats = await rawRedis(suite.redis.url, cleanups)
    const client = holding(beats, (args) =>
      paused && args[0] === 'EVAL' && args[3] === `${prefix}:nodes`
        ? Promise.reject(new Error('paused'))
        : undefined,
    )
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { prefix, client })
    const b = await nodes.start(suite.redis.url, { prefix })
    await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
    const session = await rawConnect('polling', a.base)
    suite.raws.push(session)
    await written(raw, ownerKey(session.sid), 'the owner record written')
    paused = true
    const failed = a.warnings.length
    await until(() => a.warnings.length > failed, 5000, "a's heartbeat failed")
    // A day passes: what a wrote with a day's lifetime or less expires (Redis cannot be made to
    // pass a day; it drops the keys as their TTL would), and a's clock says a day went by.
    const node = `${prefix}:node:${a.adapter.node}`
    await raw.del([node, `${node}:note`, `${node}:address`, `${node}:beat`, ownerKey(session.sid)])
    const later = ADDRESS_KEEP_MS + 60_000
    vi.spyOn(stallClock, 'now').mockImplementation(() => Date.now() + later)
    cleanups.push(async () => {
      vi.restoreAllMocks()
    })
    paused = false
    await written(raw, node, "a's next heartbeat through")
    await written(raw, ownerKey(session.sid), 'the owner record written again')
    expect(await raw.get(`${prefix}:refilling`), 'Redis lost nothing').toBeNull()
    expect(await b.adapter.claimSession('sid-never')).toBeNull()
  })

  it('gives the others one record lifetime after its own record lapsed, then takes a node whose record lapsed meanwhile for gone', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const { a, b, held, hold, release } = await scene()
    const c = await nodes!.start(suite.redis.url, { prefix })
    await until(() => a.adapter.liveNodes.length === 2, 5000, 'a sees c live')
    hold()
    await until(() => held.length > 0, 5000, "a's heartbeat held")
    // c dies (its connection to Redis gone, no goodbye) while a stalls.
    c.redis.destroy()
    await lapsed(raw, c)
    await lapsed(raw, a)
    await release()
    // Read by a's late beat: c's record lapsed, as a's own did. What held a's beats may have held
    // c's (Redis blocked, the host paused): c keeps its place for one record lifetime, to beat
    // again; it does not, and is gone then. No refilling: Redis lost nothing.
    expect([...a.adapter.liveNodes].sort()).toEqual([b.adapter.node, c.adapter.node].sort())
    expect(await raw.get(`${prefix}:refilling`)).toBeNull()
    await until(() => a.adapter.liveNodes.length === 1, 5000, 'c gone from a after the grace')
    expect(a.adapter.liveNodes).toEqual([b.adapter.node])
  })
})
