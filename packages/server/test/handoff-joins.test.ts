// A drain with handoff while a socket's joins and leaves are still under way at an adapter that
// answers later (its calls held by a Gate, gated-adapter.ts): the session arrives on the other
// node in the rooms as the application called them, not in those the adapter held at the
// freeze. Two Parley servers on the in-process test adapter (cluster-adapter.ts) behind a
// round-robin proxy, as in handoff-move.test.ts.
import { connect, type Socket } from '@parley/client'
import type { ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { Gate } from './gated-adapter.js'
import { type Started, sleep, startServer, until } from './helpers.js'

let nodes: Started[] = []
let proxy: RoundRobinProxy | undefined
const clients: Socket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  await sleep(50)
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.map((n) => n.app.close()))
  nodes = []
})

interface Node {
  started: Started
  connections: ServerSocket[]
  restored: ServerSocket[]
}

async function twoNodes(cluster: Cluster) {
  const list: Node[] = []
  for (const name of ['a', 'b']) {
    const node: Node = { started: undefined as unknown as Started, connections: [], restored: [] }
    node.started = await startServer(
      { adapter: cluster.adapter(name), handoff: { timeout: 2000, retrySpread: 0 } },
      (app) => {
        app.parley.on('connection', (socket) => node.connections.push(socket))
        app.parley.on('restored', (socket) => node.restored.push(socket))
      },
      // A draining node must keep answering its sessions' requests (see handoff.test.ts).
      { return503OnClosing: false },
    )
    nodes.push(node.started)
    list.push(node)
  }
  proxy = await startRoundRobin(list.map((n) => Number(new URL(n.started.base).port)))
  return { list: list as [Node, Node], proxy, base: `${proxy.url}/parley` }
}

describe('drain with handoff: joins and leaves still under way', () => {
  it('hand the session on in the rooms they leave it in', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, proxy, base } = await twoNodes(cluster)
    const [a, b] = list
    proxy.avoid.add(1)
    const c = connect(base, { transports: ['websocket'] })
    clients.push(c)
    const news: string[] = []
    c.on('news', (text: string) => news.push(text))
    await until(() => c.connected, 3000, 'connect')
    proxy.avoid.clear()
    const socket = a.connections[0]!
    await socket.join(['gone', 'stays'])
    // From here on node a's adapter answers no join or leave: all are under way at the drain.
    const gate = new Gate()
    cluster.nodes.get('a')!.gate = gate
    void socket.join('joined')
    void socket.leave('gone')
    // Waits its turn behind the socket's join, which puts the socket in the room it targets.
    void a.started.app.parley.in('joined').socketsJoin('joined too')
    expect(gate.heldNames).toEqual(['join joined'])
    proxy.avoid.add(0)
    await a.started.app.close()
    nodes = nodes.filter((n) => n !== a.started)
    await until(() => b.restored.length === 1, 5000, 'restored')
    const restored = b.restored[0]!
    const rooms = [socket.id, 'joined', 'joined too', 'stays'].sort()
    // Put back in one join at the cut point: in all of them once in one.
    await until(() => restored.rooms.has('stays'), 3000, 'the rooms joined again')
    expect([...restored.rooms].sort()).toEqual(rooms)
    // The client's end: a room left before the drain no longer reaches it, one joined does.
    const parley = b.started.app.parley
    parley.to('gone').emit('news', 'to gone')
    parley.to('joined too').emit('news', 'to joined too')
    await until(() => news.length > 0, 3000, 'the broadcast')
    await sleep(50)
    expect(news).toEqual(['to joined too'])
  })
})
