// A node killed without a drain stays in the live set for up to three heartbeats: a WebSocket
// resume of one of its sessions that reaches another node must not wait for it to leave, nor
// for the answer it never gives; only for its word that it heard the request (HANDOFF_ASKED_MS).
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { killedNode } from './killed-node.js'
import { Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())('a node killed without a drain', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const { raws } = suite

  it('lets the WebSocket client of a killed node start over on another node while it is still live', async () => {
    nodes = new Nodes()
    // With handoff on: a WebSocket resume asks the owner to hand its session over. The answer
    // is waited for twice requestTimeout: far past the test's own time here, so that only the
    // missing word that the killed node heard the request can end the wait.
    const b = await nodes.start(suite.redis.url, { requestTimeout: 60_000 }, false, {})
    // The killed node as Redis still tells it (live for as long as the test runs, as for three
    // heartbeats after a kill), holding the session.
    const sid = 'a-session-of-the-killed-node'
    const dead = await killedNode(b, sid)
    try {
      // Its answer waited for until the test's own time is out, not a bound on its speed.
      const raw = await rawConnect('websocket', b.base, { sid }, { answerWithinMs: 15_000 })
      raws.push(raw)
      expect(raw.open?.sid).not.toBe(sid)
      // Not ended by the killed node leaving the live set: it is still in it.
      expect(b.adapter.liveNodes).toContain(dead.id)
      // Its goodbye: the new session ends at once, rather than hold b's close for the whole
      // handoff timeout (a drain waiting for a claim that never comes).
      await raw.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await until(() => b.app.parley.sockets.size === 0, 3000, 'the new session ended')
    } finally {
      await dead.remove()
    }
  })
})
