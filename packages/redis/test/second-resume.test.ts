// A second resume of a session that another node has claimed and is still taking over: the
// client gave up on its first try (a slow takeover, a loaded node) and tried again. That try must
// not open a new session, which would leave the one being restored behind with all it holds:
// it is told to try again, and finds the session once the takeover is done. At the claimer that
// try is told the session is still arriving; at a third node that found the session handed off
// and claimed it too, losing to the claimer, that it was taken over by another node.
import { connect, type Socket } from '@parley/client'
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { RawWebSocket } from '../../server/test/raw-websocket.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'

/**
 * Holds the first takeover that reaches `node`'s middleware until `release()`: its claim has won
 * in Redis, and the session is not restored yet. `holding()` says it is held.
 */
function holdFirstTakeover(node: TrafficNode) {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  let holding = false
  let armed = true
  node.started.app.parley.use(async () => {
    if (!armed) return
    armed = false
    holding = true
    await held
  })
  return { holding: () => holding, release: () => release() }
}

describe.skipIf(skipRedisSuites())('a second resume while another node takes the session over', () => {
  const { suite, balance } = balancedSuite()
  const { nodes, clients } = suite

  /**
   * A polling client that the balancer sends to `a` (of `a` and `b`), with its session id, read
   * from its polling URLs (the client keeps it to itself), and the reasons of its disconnects.
   */
  async function pollingClientOnA(a: TrafficNode, b: TrafficNode) {
    let sid: string | undefined
    const recording: typeof fetch = (input, init) => {
      sid ??=
        new URL(String(input instanceof Request ? input.url : input)).searchParams.get('sid') ?? undefined
      return fetch(input, init)
    }
    const proxy = await balance([a, b])
    proxy.avoid.add(1)
    const c = connect(`${proxy.url}/parley`, { transports: ['polling'], fetch: recording })
    clients.push(c)
    const disconnects: string[] = []
    c.on('disconnect', (reason: string) => disconnects.push(reason))
    await until(() => c.connected && sid !== undefined, 3000, 'connected to a')
    return { c, sid: sid as string, disconnects, proxy }
  }

  /**
   * Once b's takeover is let go: the session restored on b, a's drain done, and the client
   * resumed there on polling with the same session, recovered, never disconnected.
   */
  async function resumedOnB(run: {
    b: TrafficNode
    c: Socket
    id: string | undefined
    disconnects: string[]
    draining: Promise<unknown>
  }) {
    const { b, c, id, disconnects, draining } = run
    await until(() => b.restored.length === 1, 8000, 'restored on b')
    await draining
    await until(() => c.connected && c.transport === 'polling', 8000, 'resumed on b')
    expect(b.restored[0]!.id).toBe(id)
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    expect(disconnects).toEqual([])
  }

  it('is told to try again, not given a new session; the takeover goes on, recovered', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes)
    // b's middleware holds the first takeover that reaches it, until released: its claim has won
    // in Redis, and the session is not restored yet.
    const takeover = holdFirstTakeover(b)
    // The client's session id, read from its polling URLs (the client keeps it to itself).
    const { c, sid, disconnects, proxy } = await pollingClientOnA(a, b)
    const id = c.id

    // a drains, and the balancer sends the client's resume to b, whose claim wins.
    proxy.avoid.clear()
    proxy.avoid.add(0)
    const draining = a.started.app.close()
    await until(takeover.holding, 8000, 'b taking the session over')

    // The client's second try, straight to b (as a balancer may send it). Its claim finds b's
    // own won: Redis answered, and the client learns the session is arriving, not that the
    // store could not be asked.
    const hello = JSON.stringify([8, { sid, ack: 0 }])
    const second = await fetch(`${b.started.base}/poll?v=1`, { method: 'POST', body: hello })
    expect(b.connections.map((s) => s.id)).toEqual([])
    expect({ status: second.status, answer: await second.json() }).toEqual({
      status: 503,
      answer: {
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the session is still arriving from another node: try again',
      },
    })

    takeover.release()
    await resumedOnB({ b, c, id, disconnects, draining })
  })

  it('over WebSocket at a third node, whose claim another node’s beat: told it was taken over there, and no new session', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes)
    const c3 = await startTrafficNode(suite.redis.url, nodes)
    // b's middleware holds its takeover, as in the test above.
    const takeover = holdFirstTakeover(b)
    // b's and c's claims wait at their doors until the test opens them: both nodes have found the
    // session handed off (not yet owned by either), and the test picks which claim runs first.
    const gates = new Map<string, { entered: boolean; open: () => void }>()
    for (const [name, node] of [
      ['b', b],
      ['c', c3],
    ] as const) {
      const adapter = node.started.app.parley.adapter
      const claim = adapter.claimSession!.bind(adapter)
      let open: () => void = () => {}
      const door = new Promise<void>((resolve) => {
        open = resolve
      })
      const gate = { entered: false, open }
      gates.set(name, gate)
      adapter.claimSession = async (sid: string) => {
        gate.entered = true
        await door
        return claim(sid)
      }
    }
    const { c, sid, disconnects, proxy } = await pollingClientOnA(a, b)
    const id = c.id

    proxy.avoid.clear()
    proxy.avoid.add(0)
    const draining = a.started.app.close()
    await until(() => gates.get('b')!.entered, 8000, 'b claiming the session')
    // A second try of the client's reaches c over WebSocket, as a balancer may send it: the
    // session is handed off, so c claims it where it landed.
    const raw = await RawWebSocket.open(c3.started.base, JSON.stringify([8, { sid, ack: 0 }]))
    await until(() => gates.get('c')!.entered, 3000, 'c claiming the session')
    gates.get('b')!.open()
    await until(takeover.holding, 8000, 'b taking the session over')
    // c's claim runs now: Redis answers that b's won and b, live, is still taking the session
    // over ('elsewhere'). c says so, and opens no session of its own.
    gates.get('c')!.open()
    expect(await raw.first()).toMatchObject({
      type: PacketType.ERROR,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message: 'the session was taken over by another node: try again',
    })
    await raw.closed
    expect(c3.connections).toEqual([])
    expect(c3.started.app.parley.socketsCount).toBe(0)

    takeover.release()
    await resumedOnB({ b, c, id, disconnects, draining })
  }, 25_000)
})
