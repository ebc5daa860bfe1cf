// At close, a session whose events are still in its socket middleware finishes them before it
// ends (`ParleyServer.finishEvents`). A GET for it that comes meanwhile on another transport than
// the session's waits for that end over HTTP (`LastWordsAtClose`); routed in-process by another
// node (an adapter's `routeRequest`, `serveRouted`), it now waits the same. Over HTTP, a failure
// inside the server once the session has ended is answered the route's coded 503, not left
// unhandled with the GET unanswered.

import { type Packet, PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { expectFailedInside, expectWarned, frozenBug, type LoggedLine, warnLogger } from './failed-inside.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const HELD: Packet = { type: PacketType.EVENT, seq: 1, name: 'held', args: [], ackId: 0 }

let nodes: Started[] = []
const clients: RawClient[] = []
let release = () => {}

afterEach(async () => {
  vi.restoreAllMocks()
  release()
  for (const c of clients.splice(0)) c.close()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/**
 * Node `a` (its warnings in `lines`), whose socket middleware holds every event `held` until
 * `release()`, and node `b`, which routes the requests of `a`'s sessions to it through the test
 * adapter (no URL: in-process).
 */
async function twoNodes() {
  const cluster = new Cluster()
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let entered = 0
  const lines: LoggedLine[] = []
  const a = await startServer(
    { adapter: cluster.adapter('node0') },
    (app) => {
      app.parley.on('connection', (socket) => {
        socket.use(async ([event]) => {
          if (event !== 'held') return
          entered++
          await released
        })
      })
    },
    { logger: warnLogger(lines) },
  )
  const b = await startServer({ adapter: cluster.adapter('node1') })
  nodes.push(a, b)
  return { a, b, entered: () => entered, lines }
}

/**
 * `twoNodes`, with a session of `a`'s whose event is held in the middleware and whose WebSocket
 * is gone, and `a` closing: the session is finishing its events, waiting for its client's resume.
 */
async function sessionFinishingAtClose() {
  const { a, b, entered, lines } = await twoNodes()
  const client = await rawConnect('websocket', a.base)
  clients.push(client)
  const sid = client.sid
  await client.send(HELD)
  await until(() => entered() === 1, 3000, 'the event in the middleware')
  client.close()
  await until(() => a.app.parley.sessionFor(sid)?.state === 'detached', 3000, 'the WebSocket detached')
  const closing = a.app.close()
  await until(() => a.app.parley.finishing(sid) !== undefined, 3000, 'the session finishing its events')
  return { a, b, sid, closing, lines }
}

describe('a GET at close for a session finishing the events in its middleware, on another transport', () => {
  // Over HTTP, `LastWordsAtClose` holds such a GET until the session has ended, then answers it as
  // at close (its last words, when it keeps some for the GET's transport; else the coded 503).
  // Routed in-process, it was sent on at once (`forward`), and answered that 503 while the
  // session was still finishing.
  it('routed in-process by another node, waits for the session to end, as over HTTP', async () => {
    const { a, b, sid, closing } = await sessionFinishingAtClose()

    // The GET, routed by `b` to `a`, which asks whether the session is finishing; or, sent on at
    // once, answered while the session is still there.
    const asked = vi.spyOn(a.app.parley, 'finishing')
    let aliveAtAnswer: boolean | undefined
    const answer = fetch(`${b.base}/poll?v=1&sid=${sid}`).then(async (res) => {
      aliveAtAnswer = a.app.parley.sessionFor(sid) !== undefined
      return { status: res.status, body: (await res.json()) as { code?: string } }
    })
    await until(() => asked.mock.calls.length > 0 || aliveAtAnswer !== undefined, 3000, 'the GET at a')
    release()
    const got = await within(answer, 5000, 'the answer to the GET')
    // Answered once the session had ended, as over HTTP: what a GET is told at close, the same.
    expect(aliveAtAnswer).toBe(false)
    expect(got).toEqual({
      status: 503,
      body: expect.objectContaining({ code: 'PARLEY_SERVER_SHUTTING_DOWN' }),
    })
    await within(closing, 5000, 'a closed')
  })
})

it('answers such a GET over HTTP 503 PARLEY_SERVER_SHUTTING_DOWN when taking its last words fails inside', async () => {
  const { a, sid, closing, lines } = await sessionFinishingAtClose()

  const asked = vi.spyOn(a.app.parley, 'finishing')
  const answer = fetch(`${a.base}/poll?v=1&sid=${sid}`)
  await until(() => asked.mock.calls.length > 0, 3000, 'the GET at a')
  // Once the session has ended, taking its last words fails as a bug would (an error the logger
  // cannot serialize): nothing else can.
  vi.spyOn(a.app.parley, 'takeLingering').mockImplementation(() => {
    throw frozenBug('a bug in the last words')
  })
  release()
  const res = await within(answer, 5000, 'the answer to the GET')
  await expectFailedInside(res)
  expectWarned(lines, 'parley: could not hand a client its last words at close', 'a bug in the last words')
  await within(closing, 5000, 'a closed')
})
