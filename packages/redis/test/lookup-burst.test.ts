// A look-up's last reads on a node in a burst (`MAX_UNANSWERED_COMMANDS` commands in flight on
// its Redis connection, and more waiting their turn: a thousand sessions opening at once) wait
// their turn behind them instead of being refused: the address of an owner whose heartbeat
// lapsed, read when this node never saw it live, and the route parameters of a handed-off
// session kept in its handoff's hash (none beside its record: it opened under a route without
// any, or on a node of an earlier version). Refused, the look-up rejected, and the request was
// answered without its owner: a resume told to try again, any other request as one of an
// unknown session. Parley servers on one Redis, the real client behind a round-robin proxy; the
// owner's record removed and its heartbeats failing, as lapsed-owner.test.ts does, and a real
// Redis holding the burst's writes for a moment (see `burstOn`).
import { connect } from '@parley/client'
import { defaults, MAX_UNANSWERED_COMMANDS } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { until, within } from '../../server/test/helpers.js'
import { HANDING_OFF, sidHash } from '../src/sessions.js'
import { burstOn } from './burst.js'
import { adapterOf, cleanedSuite, startTrafficNode, type TrafficNode, toldTo } from './e2e-suite.js'
import { holding } from './handoff-support.js'
import { type RawRedis, rawRedis } from './raw-redis.js'

/** The longest Redis holds the burst, should the test fail before it lets it go. */
const PAUSE_MS = 5000

/**
 * How many sessions open on the node in a burst as a request reaches it: more than its
 * connection holds at once, so that some still wait their turn when the look-up's first reads
 * are answered.
 */
const OPENING = 2 * MAX_UNANSWERED_COMMANDS

/** A node's heartbeat, as it sends it. */
const heartbeat = (args: string[]) => args[0] === 'EVAL' && !!args[1]?.includes("'ZREMRANGEBYSCORE'")

describe.skipIf(skipRedisSuites())("a look-up's last read in a burst", () => {
  const { suite, balance, cleanups } = cleanedSuite<TrafficNode>()
  const { nodes, clients } = suite

  /**
   * A node in a burst when a request reaches it: Redis holds its writes (see `burstOn`), and the
   * moment it asks where a session lives, `OPENING` sessions open on it too, their owner records
   * waiting their turn behind the look-up's first reads; then Redis answers again. Each answer
   * frees a place that the next record takes: the connection stays full while the look-up goes
   * on. `lookups` counts the look-ups asked of it, `opened` the records' writes.
   */
  async function burstingAtLookup(raw: RawRedis) {
    // Its heartbeats far apart: none is in flight in the burst for the look-up to wait for.
    const node = await startTrafficNode(suite.redis.url, nodes, { heartbeatInterval: 10_000 })
    const adapter = adapterOf(node)
    await adapter.ready()
    const state = { node, lookups: 0, opened: [] as Promise<void>[] }
    const lookUp = adapter.sessionOwner.bind(adapter)
    adapter.sessionOwner = (sid) => {
      const answer = lookUp(sid)
      if (state.lookups++ === 0) {
        for (let i = 0; i < OPENING; i++) state.opened.push(adapter.sessionOpened(`sid-opening-${i}`))
        void raw.sendCommand(['CLIENT', 'UNPAUSE'])
      }
      return answer
    }
    await burstOn(raw, node.started, PAUSE_MS)
    return state
  }

  it('an owner whose heartbeat lapsed: its address, read on a node in a burst, waits its turn, and the resume reaches the owner', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    let lapsing = false
    const owner = await startTrafficNode(suite.redis.url, nodes, {
      view: (redis) =>
        holding(redis, (args) =>
          lapsing && heartbeat(args) ? Promise.reject(new Error('the heartbeat lapses (test)')) : undefined,
        ),
    })
    await adapterOf(owner).ready()
    const proxy = await balance([owner])
    const client = connect(`${proxy.url}/parley`, { transports: ['polling'], storage: memoryStorage() })
    clients.push(client)
    // What the client was told: the proxy's cut below is a transport error; a refusal is another code.
    const { refused, lost } = toldTo(client)
    await until(() => client.connected && owner.connections.length === 1, 3000, 'the client on the owner')
    const id = client.id

    // The owner's record goes, and its heartbeats fail: to the other nodes, it is gone.
    lapsing = true
    await owner.redis.del(`${defaults.prefix}:node:${adapterOf(owner).node}`)
    // A node started after the lapse never saw the owner live: it reads the owner's address.
    const late = await burstingAtLookup(raw)
    expect(adapterOf(late.node).liveNodes).toEqual([])
    try {
      // Every request from now on reaches the late node; the poll cut, the client resumes there.
      const index = proxy.add(Number(new URL(late.node.started.base).port))
      proxy.avoid.add(0)
      proxy.cut()
      for (let n = 1; n <= 3; n++) client.emit('up', n)
      // The resume waits out the client's backoff behind two thousand writes: on a loaded
      // machine, seconds.
      await until(() => owner.received.length === 3, 12_000, 'the messages on the owner')
      expect(owner.received).toEqual([1, 2, 3])
      expect(late.lookups).toBeGreaterThanOrEqual(1)
      expect(proxy.forwarded[index]).toBeGreaterThanOrEqual(1)
      // The same session, on the owner, found at the first look-up: no refusal on the way.
      expect(client.id).toBe(id)
      expect(late.node.connections).toHaveLength(0)
      expect(refused).toEqual([])
      expect(lost).toEqual([])
      expect(late.node.warnings.filter((line) => line.includes('could not be looked up'))).toEqual([])
      await within(Promise.all(late.opened), 5000, 'the records of the sessions opening')
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  }, 30_000)

  it('a session handed off without route parameters beside its record: their read in its handoff, on a node in a burst, waits its turn', async () => {
    const raw = await rawRedis(suite.redis.url, cleanups)
    const old = await startTrafficNode(suite.redis.url, nodes)
    await adapterOf(old).ready()
    // Its owner record as a node handing it off writes it, for a session that opened under a
    // route without parameters: none beside the record, so a look-up reads its handoff's hash.
    const sid = 'sid-handed-off'
    await raw.set(`${defaults.prefix}:session:${sidHash(sid)}`, `${adapterOf(old).node}${HANDING_OFF}`, {
      EX: 60,
    })
    const other = await burstingAtLookup(raw)
    try {
      expect(await within(adapterOf(other.node).sessionOwner(sid), 5000, 'the look-up')).toEqual({
        node: adapterOf(old).node,
        url: new URL(old.started.base).origin,
        handingOff: true,
      })
      expect(other.lookups).toBe(1)
      await within(Promise.all(other.opened), 5000, 'the records of the sessions opening')
    } finally {
      await raw.sendCommand(['CLIENT', 'UNPAUSE'])
    }
  })
})
