// A session handed off to a node with a smaller maxPayload (a rolling deploy that lowers it):
// what the client still keeps for the server, within the old node's limit but past the new
// one's, is refused on the client (its emitter hears PARLEY_PAYLOAD_TOO_LARGE), never sent to
// end the session; what follows it arrives, in order. The error names the event an emit was of,
// or that a reply answers. Two Parley servers on the in-process test
// adapter (cluster-adapter.ts) behind a round-robin proxy, and the real client.
import { connect } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, sleep, startServer, until, within } from './helpers.js'

const opened = handoffScene()
const { nodes, clients } = opened

const OLD_LIMIT = 200_000
const NEW_LIMIT = 20_000

interface Node {
  started: Started
  /** What each socket sent, in order, as this node's handlers got it. */
  received: string[]
  ended: string[]
  /** The sockets of the sessions this node began. */
  connected: ServerSocket[]
  restored: ServerSocket[]
}

async function twoNodes(cluster: Cluster) {
  const list: Node[] = []
  for (const [name, maxPayload] of [
    ['a', OLD_LIMIT],
    ['b', NEW_LIMIT],
  ] as const) {
    const node: Node = {
      started: undefined as unknown as Started,
      received: [],
      ended: [],
      connected: [],
      restored: [],
    }
    const setup = (socket: ServerSocket) => {
      socket.on('up', (text: string, ack?: (reply: string) => void) => {
        node.received.push(`${text.slice(0, 5)} (${text.length})`)
        ack?.(`${name} took it`)
      })
      socket.on('disconnect', (reason: string) => node.ended.push(reason))
    }
    node.started = await startServer(
      { adapter: cluster.adapter(name), maxPayload, handoff: { timeout: 3000, retrySpread: 0 } },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connected.push(socket)
          setup(socket)
        })
        app.parley.on('restored', (socket) => {
          node.restored.push(socket)
          setup(socket)
        })
      },
      { return503OnClosing: false },
    )
    nodes.push(node.started)
    list.push(node)
  }
  const proxy = await startRoundRobin(list.map((n) => Number(new URL(n.started.base).port)))
  opened.proxy = proxy
  return { list, proxy, base: `${proxy.url}/parley` }
}

describe('handoff to a node with a smaller maxPayload', () => {
  // On SSE and polling, what the client emitted while the session was frozen may wait in the
  // old connection's upstream, whose next POST can reach the new node after it took the session
  // over: refused 413 there, within the old limit, without ending the session.
  for (const transport of ['websocket', 'sse', 'polling'] as TransportName[]) {
    it(`refuses on the client what it kept past the new limit, and resumes with the rest (${transport})`, async () => {
      const cluster = new Cluster({ handoff: true })
      const { list, proxy, base } = await twoNodes(cluster)
      const [a, b] = list as [Node, Node]
      const c = connect(base, { transports: [transport], autoConnect: false })
      clients.push(c)
      const events: string[] = []
      c.on('connect', () => events.push('connect'))
      c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
      const errors: [string, string][] = []
      c.on('error', (error: { code: string; message: string }) => errors.push([error.code, error.message]))
      // A request of a's that the client answers while the session is frozen, past b's limit.
      let reply: ((text: string) => void) | undefined
      c.on('ask', (ack: (text: string) => void) => {
        reply = ack
      })
      proxy.avoid.add(1)
      c.connect()
      await until(() => c.connected, 3000, 'connected to a')
      const id = c.id
      // a takes a packet past b's limit while it runs.
      expect(
        await within(c.timeout(5000).emitWithAck('up', 'early'.padEnd(50_000, '.')), 5000, 'early'),
      ).toBe('a took it')
      a.connected[0]!.emitWithAck('ask').catch(() => {})
      await until(() => reply !== undefined, 3000, 'the request of a')
      // a's snapshot waits at the store: the session is frozen, and what the client sends now
      // stays in its books, unacknowledged, for the node that takes the session over.
      let answer = () => {}
      cluster.storeAnswersAfter = new Promise<void>((resolve) => {
        answer = resolve
      })
      proxy.avoid.clear()
      proxy.avoid.add(0)
      const closing = a.started.app.close()
      opened.letGo(a.started)
      await until(() => cluster.handOffSids.length === 1, 3000, 'a’s snapshot on its way')
      const outcomes: string[] = []
      const ask = (text: string) =>
        c
          .timeout(8000)
          .emitWithAck('up', text)
          .then(
            (reply) => outcomes.push(`${text.slice(0, 5)}: ${String(reply)}`),
            (error: { code: string }) => outcomes.push(`${text.slice(0, 5)}: ${error.code}`),
          )
      const asked = [ask('small 1'), ask('large'.padEnd(50_000, '.')), ask('small 2')]
      reply!('reply'.padEnd(50_000, '.'))
      await sleep(100)
      answer()
      await within(Promise.all(asked), 8000, 'every question settled')
      await closing
      expect(outcomes.sort()).toEqual([
        'large: PARLEY_PAYLOAD_TOO_LARGE',
        'small: b took it',
        'small: b took it',
      ])
      expect(b.received).toEqual(['small (7)', 'small (7)'])
      expect(b.restored).toHaveLength(1)
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
      expect(events).toEqual(['connect'])
      expect(b.ended).toEqual([])
      expect(errors).toEqual([
        ['PARLEY_PAYLOAD_TOO_LARGE', expect.stringMatching(/^event "up": \d+ bytes > maxPayload 20000$/)],
        ['PARLEY_PAYLOAD_TOO_LARGE', expect.stringMatching(/^reply to "ask": \d+ bytes > maxPayload 20000$/)],
      ])
    }, 30_000)
  }

  it('refuses a POST past the new limit but within the old one without ending the session; past the old one, the session ends', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, base } = await twoNodes(cluster)
    const [a, b] = list as [Node, Node]
    const c = connect(base, { transports: ['polling'], autoConnect: false })
    clients.push(c)
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connected to a')
    const id = c.id
    proxy.avoid.clear()
    proxy.avoid.add(0)
    await a.started.app.close()
    opened.letGo(a.started)
    await until(() => b.restored.length === 1 && c.connected, 5000, 'taken over by b')
    const sid = b.restored[0]!.session.sid
    // As the client's old connection would: a POST of the session's transport, made before the
    // client heard b's limit.
    const post = (size: number) =>
      fetch(`${b.started.base}/poll?v=1&sid=${sid}`, { method: 'POST', body: 'x'.repeat(size) })
    const inside = await post(NEW_LIMIT * 2)
    expect(inside.status).toBe(413)
    expect(((await inside.json()) as { code: string }).code).toBe('PARLEY_PAYLOAD_TOO_LARGE')
    expect(await c.timeout(5000).emitWithAck('up', 'after')).toBe('b took it')
    expect(b.ended).toEqual([])
    expect(c.id).toBe(id)
    // Past what even the old node took: the session ends, as on any node.
    const past = await post(OLD_LIMIT + 1)
    expect(past.status).toBe(413)
    await until(() => b.ended.length === 1, 3000, 'the session ended')
    expect(b.ended).toEqual(['payload too large'])
  })
})
