// A drain writes each session's handoff for what is left of its client's recovery window: the
// whole window for a client still connected, told to resume elsewhere, what is left of it for one
// that was away already. Written for a whole new window, an away client's session stayed in Redis,
// and a node resumed it (or, taking it over without its client, kept it) past the end of its
// client's window. One node on a real Redis drains alone (nothing claims or adopts the sessions),
// and a node started after it is where the clients come back.
import { type OpenPacket, PacketType } from '@parley/protocol'
import { redisAdapter } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, startServer, until } from '../../server/test/helpers.js'
import { type RawClient, rawConnect } from '../../server/test/raw-client.js'
import { sidHash } from '../src/sessions.js'
import { connectedClient, endToEndSuite, type SuiteNode } from './e2e-suite.js'

/** Every node's recovery window. */
const WINDOW = 4000

/** How long the away client is gone before the drain, at least: half its window. */
const AWAY_MS = 2000

describe.skipIf(skipRedisSuites())('a drained session whose client was away already', () => {
  const suite = endToEndSuite<SuiteNode>()

  async function startNode(): Promise<SuiteNode> {
    const client = await connectedClient(suite.redis.url)
    const node: SuiteNode = {
      redis: client,
      started: await startServer({
        adapter: redisAdapter({ client, heartbeatInterval: 300 }),
        handoff: { timeout: 1000, retrySpread: 0 },
        recovery: { window: WINDOW },
      }),
    }
    suite.nodes.push(node)
    return node
  }

  it('is stored for what was left of its window, and gone from Redis when that ends, while a connected client’s session is still there', async () => {
    const raws: RawClient[] = []
    try {
      const a = await startNode()
      const live = await rawConnect('websocket', a.started.base)
      const away = await rawConnect('websocket', a.started.base)
      raws.push(live, away)
      away.close()
      await until(
        () => a.started.app.parley.sockets.get(away.id)?.transport === null,
        3000,
        'the away transport gone',
      )
      // The away client's window runs from no later than now.
      const wentAt = performance.now()
      await sleep(AWAY_MS)
      const spent = Math.floor(performance.now() - wentAt)
      // Alone: sealed at once, for a node that starts later.
      await a.started.app.close()
      const closedAt = performance.now()
      const pttl = async (raw: RawClient) =>
        Number(await a.redis.sendCommand(['PTTL', `parley:handoff:${sidHash(raw.sid)}`]))
      // What a claim would be told is left of each client's window (see CLAIM).
      const awayLeft = await pttl(away)
      expect(awayLeft).toBeGreaterThan(0)
      expect(awayLeft).toBeLessThanOrEqual(WINDOW - spent)
      expect(await pttl(live)).toBeGreaterThan(WINDOW - spent)

      const b = await startNode()
      // Past the end of the away client's window, well before a new window from the drain ends.
      await sleep(closedAt + (WINDOW - spent) + 200 - performance.now())
      const opens = async (raw: RawClient): Promise<OpenPacket> => {
        const back = await rawConnect('websocket', b.started.base, { sid: raw.sid, ack: 0 })
        raws.push(back)
        return back.open
      }
      // The away client, back after its window: a new session. The connected one, within its own.
      const anew = await opens(away)
      expect(anew).toMatchObject({ type: PacketType.OPEN, recovered: false })
      expect(anew.sid).not.toBe(away.sid)
      expect(await opens(live)).toMatchObject({ type: PacketType.OPEN, sid: live.sid, recovered: true })
    } finally {
      for (const raw of raws) raw.close()
    }
  }, 20_000)
})
