// `onNodesChange`: an application hears that the set of the other live nodes changed, once per
// change: a node joined, left with a goodbye, lapsed, or came back. Three nodes on a real Redis;
// a node lapses as in lapsed-owner.test.ts: its record removed and its heartbeats failing. A
// goodbye a node does not hear (its subscriber held behind a proxy) is read from the mark the
// leaving node left in Redis.
import { defaults, type NodesChange, RedisErrorCode } from '@parley/redis'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import { NOTE_VERSION } from '../src/nodes.js'
import { holding } from './handoff-support.js'
import { HEARTBEAT, Nodes, redisSuite, type TestNode } from './nodes.js'

/** Each change a node's listener was told, in order. */
function heard(node: TestNode): NodesChange[] {
  const changes: NodesChange[] = []
  node.adapter.onNodesChange((change) => void changes.push(change))
  return changes
}

/** A change with `nodes` live, of which `what` (the rest empty). */
function change(nodes: string[], what: Partial<Omit<NodesChange, 'nodes'>>): NodesChange {
  return { nodes, joined: [], left: [], lapsed: [], ...what }
}

/** A change as compared: every list sorted (the live set has no order). */
function sorted(change: NodesChange | undefined): NodesChange | undefined {
  if (!change) return undefined
  const s = (ids: readonly string[]) => [...ids].sort()
  return { nodes: s(change.nodes), joined: s(change.joined), left: s(change.left), lapsed: s(change.lapsed) }
}

describe.skipIf(skipRedisSuites())('onNodesChange', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const extraClients: { destroy(): void; isOpen: boolean }[] = []
  let proxy: TcpProxy | undefined

  // Runs before the suite's own (hooks run last added, first run): the nodes close first, so that
  // a node on one of these clients still says goodbye on it.
  afterEach(async () => {
    await nodes?.closeAll()
    for (const client of extraClients.splice(0)) if (client.isOpen) client.destroy()
    await proxy?.close()
    proxy = undefined
  })

  /** A heartbeat of a node's, as sent. */
  const isBeat = (args: string[]) => args[0] === 'EVAL' && !!args[1]?.includes("'ZREMRANGEBYSCORE'")

  /**
   * A node whose subscriber reaches Redis through `proxy` (its commands go straight): holding
   * what Redis sends there, it hears nothing published, as while its subscriber reconnects.
   * Its heartbeats fail while `failing()` says so.
   */
  async function deafNode(failing = () => false): Promise<{ node: TestNode; deaf(): () => void }> {
    proxy = await startTcpProxy(suite.redis.port)
    const client = createClient({ url: suite.redis.url })
    client.on('error', () => {})
    await client.connect()
    extraClients.push(client)
    const url = `redis://127.0.0.1:${new URL(proxy.url).port}`
    const node = await nodes!.start(suite.redis.url, {
      client: {
        get isOpen() {
          return client.isOpen
        },
        get isReady() {
          return client.isReady
        },
        options: client.options,
        sendCommand: (args) =>
          failing() && isBeat(args)
            ? Promise.reject(new Error('the heartbeat fails (test)'))
            : client.sendCommand(args),
        duplicate: () => client.duplicate({ url }),
      },
    })
    const held = proxy
    return { node, deaf: () => held.holdDownstream() }
  }

  /** A node whose heartbeats fail while `lapse.on` (its own record removed by `lapse.start`). */
  async function lapsingNode(): Promise<{ node: TestNode; start(): Promise<void>; stop(): void }> {
    const client = createClient({ url: suite.redis.url })
    client.on('error', () => {})
    await client.connect()
    extraClients.push(client)
    let failing = false
    const node = await nodes!.start(suite.redis.url, {
      client: holding(client, (args) =>
        failing && isBeat(args) ? Promise.reject(new Error('the heartbeat lapses (test)')) : undefined,
      ),
    })
    return {
      node,
      async start() {
        failing = true
        // On the adapter's own connection, after any heartbeat sent before: none writes it again.
        await client.sendCommand(['DEL', `${defaults.prefix}:node:${node.adapter.node}`])
      },
      stop() {
        failing = false
      },
    }
  }

  /**
   * Resolves once a key set now to last as long as a node's record (three heartbeats) is gone in
   * Redis: so would be a goodbye mark set before, had it lasted only that long.
   */
  async function pastRecordLifetime(): Promise<void> {
    const probe = createClient({ url: suite.redis.url })
    probe.on('error', () => {})
    await probe.connect()
    extraClients.push(probe)
    const key = `${defaults.prefix}:test:record-lifetime`
    await probe.sendCommand(['SET', key, '1', 'PX', String(3 * HEARTBEAT)])
    let gone = false
    const past = setInterval(() => {
      void probe.sendCommand(['EXISTS', key]).then((n) => {
        gone ||= Number(n) === 0
      })
    }, 50)
    await until(() => gone, 5000, 'a record lifetime past').finally(() => clearInterval(past))
  }

  it('tells a join, a goodbye, a lapse and a return once each, never the node itself', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    const onA = heard(a)
    const lapsing = await lapsingNode()
    const b = lapsing.node
    const [idA, idB] = [a.adapter.node, b.adapter.node]
    await until(() => onA.length === 1, 5000, 'A told that B joined')
    expect(onA).toEqual([change([idB], { joined: [idB] })])
    // B starts from the set its first heartbeat read: A there already is no change.
    const onB = heard(b)

    const c = await nodes.start(suite.redis.url)
    const idC = c.adapter.node
    await until(() => onA.length === 2 && onB.length === 1, 5000, 'A and B told that C joined')
    // The next change is the next call: the heartbeats between told nothing again.
    expect(sorted(onA[1])).toEqual(sorted(change([idB, idC], { joined: [idC] })))
    expect(onB).toEqual([change([idA, idC], { joined: [idC] })])

    await nodes.stop(c)
    await until(() => onA.length === 3 && onB.length === 2, 5000, 'A and B told that C left')
    expect(onA[2]).toEqual(change([idB], { left: [idC] }))
    expect(onB[1]).toEqual(change([idA], { left: [idC] }))

    await lapsing.start()
    await until(() => onA.length === 4, 5000, 'A told that B lapsed')
    expect(onA[3]).toEqual(change([], { lapsed: [idB] }))
    expect(a.adapter.liveNodes).toEqual([])

    lapsing.stop()
    await until(() => onA.length === 5, 5000, 'A told that B is back')
    expect(onA[4]).toEqual(change([idB], { joined: [idB] }))
    expect(a.adapter.liveNodes).toEqual([idB])

    // B, cut off and back, heard nothing of itself; nor did A, ever.
    expect(onB).toHaveLength(2)
    for (const told of onA)
      expect([...told.nodes, ...told.joined, ...told.left, ...told.lapsed]).not.toContain(idA)
    for (const told of onB)
      expect([...told.nodes, ...told.joined, ...told.left, ...told.lapsed]).not.toContain(idB)
  }, 30_000)

  it('tells a goodbye it did not hear as one, read from the mark the node left', async () => {
    nodes = new Nodes()
    const { node: a, deaf } = await deafNode()
    const onA = heard(a)
    const c = await nodes.start(suite.redis.url)
    const idC = c.adapter.node
    await until(() => onA.length === 1, 5000, 'A told that C joined')
    // C handed nothing off and claimed nothing: its mark is the record lifetime's alone.
    const hear = deaf()
    await nodes.stop(c)
    await until(() => onA.length === 2, 5000, 'A told that C is gone, at its next heartbeat')
    expect(onA[1]).toEqual(change([], { left: [idC] }))
    expect(a.adapter.liveNodes).toEqual([])
    // The goodbye, heard at last, is no change.
    hear()
    const d = await nodes.start(suite.redis.url)
    await until(() => onA.length === 3, 5000, 'A told that D joined')
    expect(onA[2]).toEqual(change([d.adapter.node], { joined: [d.adapter.node] }))
  })

  it('tells a goodbye as one when its own heartbeats failed for longer than a record lasts', async () => {
    nodes = new Nodes()
    let failing = false
    const { node: a, deaf } = await deafNode(() => failing)
    const onA = heard(a)
    const c = await nodes.start(suite.redis.url)
    const idC = c.adapter.node
    await until(() => onA.length === 1, 5000, 'A told that C joined')
    const hear = deaf()
    failing = true
    await nodes.stop(c)
    // A reads the live set only once a mark that lasted a record lifetime would be gone.
    await pastRecordLifetime()
    expect(onA).toHaveLength(1)
    failing = false
    await until(() => onA.length === 2, 5000, 'A told that C is gone, once its heartbeats go through')
    expect(onA[1]).toEqual(change([], { left: [idC] }))
    hear()
  })

  it('tells as one the goodbye of a node of an earlier version, whose own mark is short, once a node heard it', async () => {
    nodes = new Nodes()
    let failing = false
    const { node: a, deaf } = await deafNode(() => failing)
    const onA = heard(a)
    const b = await nodes.start(suite.redis.url)
    const onB = heard(b)
    // C as a node of the version before: its note says v 2, its mark lasts a record lifetime.
    const client = createClient({ url: suite.redis.url })
    client.on('error', () => {})
    await client.connect()
    extraClients.push(client)
    // Its note (in the heartbeat) and its word that it joined say v 2.
    const ours = new RegExp(`^(\\{"(?:n":"[^"]*","k":"joined","a":"[^"]*",")?v":)${NOTE_VERSION}\\b`)
    const v2 = (arg: string) => arg.replace(ours, (_, head: string) => `${head}2`)
    const older = (args: string[]) => args.map(v2)
    const c = await nodes.start(suite.redis.url, {
      client: holding(client, (args) => {
        if (args[0] === 'SET' && args[1]?.endsWith(':left') === true)
          return client.sendCommand([...args.slice(0, 4), String(3 * HEARTBEAT)])
        return isBeat(args) || args[0] === 'PUBLISH' ? client.sendCommand(older(args)) : undefined
      }),
    })
    const idB = b.adapter.node
    const idC = c.adapter.node
    await until(() => onA.length === 2 && onB.length === 1, 5000, 'A and B told that C joined')
    const told = onA.length
    const hear = deaf()
    failing = true
    await nodes.stop(c)
    // B heard it, and makes C's mark last.
    await until(() => onB.length === 2, 5000, 'B told that C left')
    expect(onB[1]).toEqual(change([a.adapter.node], { left: [idC] }))
    await pastRecordLifetime()
    expect(onA).toHaveLength(told)
    failing = false
    await until(() => onA.length === told + 1, 5000, 'A told that C is gone, once its heartbeats go through')
    expect(onA[told]).toEqual(change([idB], { left: [idC] }))
    hear()
  })

  it('tells a goodbye it did not hear, and whose mark Redis refused, as a lapse; the node says why', async () => {
    nodes = new Nodes()
    const { node: a, deaf } = await deafNode()
    const onA = heard(a)
    const client = createClient({ url: suite.redis.url })
    client.on('error', () => {})
    await client.connect()
    extraClients.push(client)
    const refused = (args: string[]) => args[0] === 'SET' && args[1]?.endsWith(':left') === true
    const c = await nodes.start(suite.redis.url, {
      client: holding(client, (args) =>
        refused(args) ? Promise.reject(new Error('NOPERM the mark is refused (test)')) : undefined,
      ),
    })
    const idC = c.adapter.node
    await until(() => onA.length === 1, 5000, 'A told that C joined')
    deaf()
    await nodes.stop(c)
    await until(() => onA.length === 2, 5000, 'A told that C is gone, at its next heartbeat')
    expect(onA[1]).toEqual(change([], { lapsed: [idC] }))
    expect(c.warnings.filter((w) => w.includes('could not leave the mark'))).toEqual([
      expect.stringContaining('tells its onNodesChange listeners that this node lapsed, not that it left'),
    ])
  })

  // What each failing listener throws: the warning must log that very error, not another's.
  const thrown = new Error('a listener that throws (test)')
  const rejected = new Error('a listener that rejects (test)')
  const thenThrown = new Error('a thenable that throws (test)')
  it.each([
    [
      'throws',
      thrown,
      () => {
        throw thrown
      },
    ],
    [
      'rejects',
      rejected,
      async () => {
        throw rejected
      },
    ],
    // A thenable whose `then` throws is read as a promise that rejects.
    [
      'returns a thenable that throws',
      thenThrown,
      () =>
        ({
          // biome-ignore lint/suspicious/noThenProperty: the odd value under test
          then() {
            throw thenThrown
          },
        }) as never,
    ],
  ])('logs a listener that %s, and tells the others all the same', async (_, error, failing: () => void) => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    // Alone of its kind on the node: the warning, at most one per interval, is its own.
    a.adapter.onNodesChange(failing)
    const told = heard(a)
    const b = await nodes.start(suite.redis.url)
    await until(() => told.length === 1, 5000, 'the listener after the failing one told')
    expect(told).toEqual([change([b.adapter.node], { joined: [b.adapter.node] })])
    await until(() => a.warnings.some((w) => w.includes('onNodesChange listener')), 3000, 'the warning')
    const line = a.warned.find((w) => w.message.includes('onNodesChange listener'))
    expect(line?.message).toContain(RedisErrorCode.LISTENER_FAILED)
    expect(line?.details.err).toBe(error)
    // The heartbeat that ran the listeners goes on: C's join is heard too.
    const c = await nodes.start(suite.redis.url)
    await until(() => told.length === 2, 5000, 'the next change told')
    expect(told[1]?.joined).toEqual([c.adapter.node])
  })

  it('stops calling a listener removed, and every listener once the adapter closes', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    const removed: NodesChange[] = []
    const remove = a.adapter.onNodesChange((change) => void removed.push(change))
    remove()
    remove()
    const kept = heard(a)
    const [b, c] = [await nodes.start(suite.redis.url), await nodes.start(suite.redis.url)]
    await until(() => kept.length === 2, 5000, 'B and C joined')
    expect(removed).toEqual([])

    const closing = a.adapter.close()
    const late: NodesChange[] = []
    a.adapter.onNodesChange((change) => void late.push(change))
    await closing
    await nodes.stop(b)
    // C hears A and B go: A, closed, hears nothing of B.
    await until(() => c.adapter.liveNodes.length === 0, 5000, 'A and B gone for C')
    expect(kept).toHaveLength(2)
    expect(late).toEqual([])
  })

  it('refuses a listener that is not a function, with a code', async () => {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url)
    for (const value of [42, null, undefined, 'listener', {}]) {
      expect(() => a.adapter.onNodesChange(value as never)).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'PARLEY_INVALID_ARGUMENT' }),
      )
    }
  })
})
