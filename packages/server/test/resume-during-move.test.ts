// A resume that reaches a session's node while another node takes that session over: its
// middleware is still running on the old node when the move completes there. Two Parley
// servers on the in-process test adapter (cluster-adapter.ts, whose store stands in for Redis);
// the raw client talks to each node directly, so that each resume lands where the test says.
import type { ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { type RawClient, Refused, rawConnect } from './raw-client.js'

let nodes: Started[] = []
const clients: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  clients.push(client)
  return client
}

interface Node {
  started: Started
  connections: ServerSocket[]
  restored: ServerSocket[]
}

/**
 * Nodes `a` and `b`. Their middleware holds a resume whose auth says `hold` until the test calls
 * `release`, and tells the test (`held`) once it holds it.
 */
async function twoNodes() {
  const cluster = new Cluster({ handoff: true })
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let reached = () => {}
  const held = new Promise<void>((resolve) => {
    reached = resolve
  })
  const list: Node[] = []
  for (const name of ['a', 'b']) {
    const node: Node = { started: undefined as unknown as Started, connections: [], restored: [] }
    node.started = await startServer(
      { adapter: cluster.adapter(name), handoff: { timeout: 500, retrySpread: 0 } },
      (app) => {
        app.parley.use(async (socket) => {
          if ((socket.handshake.auth as { hold?: boolean } | undefined)?.hold) {
            reached()
            await released
          }
        })
        app.parley.on('connection', (socket) => node.connections.push(socket))
        app.parley.on('restored', (socket) => node.restored.push(socket))
      },
    )
    nodes.push(node.started)
    list.push(node)
  }
  const [a, b] = list as [Node, Node]
  return { a, b, held, release }
}

describe('a resume on the old node while another node takes the session over', () => {
  it.each(['polling', 'sse', 'websocket'] as const)(
    'is told to try again, and finds the session where it moved (%s)',
    async (transport) => {
      const { a, b, held, release } = await twoNodes()
      const first = await connect('websocket', a.started.base)
      // One resume reaches a, the session's node, and waits in its middleware...
      const onOld = connect(transport, a.started.base, {
        sid: first.sid,
        ack: 0,
        auth: { hold: true },
      }).catch((err: unknown) => err)
      await held
      // ...while another (a WebSocket probe, a retry) reaches b, which asks a for the session and
      // takes it over.
      const onNew = await connect('websocket', b.started.base, { sid: first.sid, ack: 0 })
      expect(onNew.open.recovered).toBe(true)
      await until(() => a.started.app.parley.socketsCount === 0, 3000, 'the session gone from a')
      release()
      const answer = await onOld
      expect(answer).toBeInstanceOf(Refused)
      expect(answer).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
      // No new session on a: the resume did not start one.
      expect(a.connections).toHaveLength(1)
      expect(a.started.app.parley.socketsCount).toBe(0)
      // Trying again through a, the client reaches the session on b (forwarded there).
      onNew.close()
      const again = await connect(transport === 'websocket' ? 'polling' : transport, a.started.base, {
        sid: first.sid,
        ack: 0,
      })
      expect(again.open.recovered).toBe(true)
      expect(again.id).toBe(first.id)
      expect(b.restored.map((s) => s.id)).toEqual([first.id])
    },
  )
})
