// A resume that reaches a node which does not hold its session, and whose look-up of the owner
// named no node (Redis did not answer it in time, or it read no record at a bad moment), claims
// the session, finds nothing stored, and finds the owner record naming the node that holds it.
// That node is alive: the client is told to try again, keeps its session, and its next try
// resumes it there, with what it had not received. A node the record names that is out of the
// live set (killed, its heartbeat lapsed) gives the client a new session at once, as before.
// Two Parley servers on one Redis behind a round-robin proxy, and the real client.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import type { ParleyServerOptions, SessionOwnerAnswer } from '@parley/server'
import { beforeEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { until } from '../../server/test/helpers.js'
import { Refused, rawConnect } from '../../server/test/raw-client.js'
import { killedNode, ownerKey } from './killed-node.js'
import { inbox, Nodes, redisSuite, type TestNode } from './nodes.js'

const TRANSPORTS: TransportName[] = ['polling', 'sse', 'websocket']

/** Drain with handoff, as by default: a WebSocket resume moves its session to the node it reached. */
const SERVER: ParleyServerOptions = { handoff: { timeout: 1000, batchSize: 500, retrySpread: 0 } }

/** How the look-up of the node the resume reaches names no node, once. */
const MISSES: [string, () => Promise<SessionOwnerAnswer>][] = [
  ['fails (Redis does not answer it in time)', () => Promise.reject(new Error('no answer in time (test)'))],
  ['reads no owner record', () => Promise.resolve('unknown')],
]

describe.skipIf(skipRedisSuites())(
  'a resume whose look-up named no node, while the owner record names one',
  () => {
    let nodes: Nodes | undefined
    const suite = redisSuite(() => nodes)
    const clients: Socket[] = []
    const proxies: RoundRobinProxy[] = []

    beforeEach(() => {
      nodes = new Nodes()
      return async () => {
        for (const client of clients.splice(0)) client.disconnect()
        await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
      }
    })

    /** Two nodes that see each other live, behind a round-robin proxy. */
    async function pair(): Promise<{ a: TestNode; b: TestNode; proxy: RoundRobinProxy }> {
      const a = await nodes!.start(suite.redis.url, {}, false, SERVER)
      const b = await nodes!.start(suite.redis.url, {}, false, SERVER)
      await until(
        () => a.adapter.liveNodes.includes(b.adapter.node) && b.adapter.liveNodes.includes(a.adapter.node),
        5000,
        'the nodes to see each other',
      )
      const proxy = await startRoundRobin([a, b].map((node) => Number(new URL(node.base).port)))
      proxies.push(proxy)
      return { a, b, proxy }
    }

    /** `node`'s next look-up of `sid`'s owner answers `miss()` instead; later ones go through. */
    function missOnce(node: TestNode, sid: string, miss: () => Promise<SessionOwnerAnswer>): () => boolean {
      const adapter = node.adapter
      const lookUp = adapter.sessionOwner.bind(adapter)
      let missed = false
      adapter.sessionOwner = (asked: string) => {
        if (missed || asked !== sid) return lookUp(asked)
        missed = true
        return miss()
      }
      return () => missed
    }

    describe.each(TRANSPORTS)('over %s', (transport) => {
      it.each(MISSES)(
        'when the look-up %s and the owner is alive: told to try again, and the session is resumed whole',
        async (_how, miss) => {
          const { a, b, proxy } = await pair()
          proxy.avoid.add(1)
          const client = connect(`${proxy.url}/parley`, {
            transports: [transport],
            storage: memoryStorage(),
            reconnectionDelay: 50,
            reconnectionDelayMax: 200,
          })
          clients.push(client)
          const news = inbox(client)
          const events: string[] = []
          client.on('connect', () => events.push(`connect recovered=${client.recovered}`))
          await until(() => client.connected && a.sockets.length === 1, 3000, 'the client on a')
          const id = client.id
          const socket = a.sockets[0]!
          const sid = socket.session.sid
          socket.emit('news', 1)
          await until(() => news.length === 1, 3000, 'news 1')

          // The client loses its link; a sends on meanwhile, kept for the client's resume.
          proxy.offline = true
          proxy.cut()
          socket.emit('news', 2)
          socket.emit('news', 3)
          // The client comes back through b, whose look-up of the owner names no node, once.
          const missed = missOnce(b, sid, miss)
          proxy.avoid.clear()
          proxy.avoid.add(0)
          proxy.offline = false

          // Back on its session, its application told nothing; on a new one it would hear
          // `connect` again, and never get news 2 and 3.
          await until(() => news.length === 3 || events.length > 1, 5000, 'news 2 and 3')
          expect(missed()).toBe(true)
          expect(events).toEqual(['connect recovered=false'])
          expect(client.id).toBe(id)
          expect(news).toEqual([1, 2, 3])
          // One session in all, whichever node holds it now: none was opened for the resume.
          expect(a.sockets.length + b.sockets.length).toBe(1)
          expect(a.app.parley.socketsCount + b.app.parley.socketsCount).toBe(1)
          client.disconnect()
          await until(() => a.app.parley.socketsCount + b.app.parley.socketsCount === 0, 3000, 'the goodbye')
        },
      )
    })

    it('the answer is coded, and a try whose look-up names the owner resumes the session there', async () => {
      const { a, b } = await pair()
      const first = await rawConnect('polling', a.base)
      suite.raws.push(first)
      const missed = missOnce(b, first.sid, () => Promise.reject(new Error('no answer in time (test)')))
      const refused = await rawConnect('polling', b.base, { sid: first.sid, ack: 0 }).catch(
        (err: unknown) => err,
      )
      expect(missed()).toBe(true)
      expect(refused).toBeInstanceOf(Refused)
      expect(refused).toMatchObject({
        status: 503,
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'PARLEY_SERVER_SHUTTING_DOWN: the session lives on another node: try again',
      })
      expect(b.sockets).toHaveLength(0)
      const again = await rawConnect('polling', b.base, { sid: first.sid, ack: 0 })
      suite.raws.push(again)
      expect(again.open).toMatchObject({ recovered: true, id: first.id })
      expect(b.sockets).toHaveLength(0)
    })

    it('when the owner record names a killed node still in the live set: told to try again once, then a new session once its address does not answer', async () => {
      const { b } = await pair()
      // The killed node as Redis still tells it (see dead-node.test.ts).
      const sid = 'a-session-of-the-killed-node'
      const dead = await killedNode(b, sid)
      try {
        // b cannot tell whether it is alive: the client keeps its session and tries again.
        missOnce(b, sid, () => Promise.reject(new Error('no answer in time (test)')))
        const refused = await rawConnect('polling', b.base, { sid, ack: 0 }).catch((err: unknown) => err)
        expect(refused).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
        // Its next try is sent to the killed node's address, where nothing answers: a new session.
        const raw = await rawConnect('polling', b.base, { sid, ack: 0 })
        suite.raws.push(raw)
        expect(raw.open).toMatchObject({ recovered: false })
        expect(raw.sid).not.toBe(sid)
        expect(b.adapter.liveNodes).toContain(dead.id)
      } finally {
        await dead.remove()
      }
    })

    it('when the look-up fails and the owner record names a node out of the live set: a new session at once', async () => {
      const { b } = await pair()
      const sid = 'a-session-of-a-node-long-gone'
      await b.redis.sendCommand(['SET', ownerKey(sid), 'a-node-long-gone', 'EX', '60'])
      missOnce(b, sid, () => Promise.reject(new Error('no answer in time (test)')))
      const raw = await rawConnect('polling', b.base, { sid, ack: 0 })
      suite.raws.push(raw)
      expect(raw.open).toMatchObject({ recovered: false })
      expect(raw.sid).not.toBe(sid)
    })
  },
)
