// `src/main.ts --handoff-retry-spread <ms>`: a cluster node's drain tells each session it hands
// off to come back within that many ms (the CLOSE 'server handoff''s retryAfter), where Parley's
// default spreads them over a second. Read from the frames the client receives, as it reads them.
import { connect, type Socket } from '@parley/client'
import { afterEach, describe, expect, it } from 'vitest'
import { CLOSE } from '../../../packages/client/src/packet-type.js'
import { resolveWebSocket } from '../../../packages/client/src/transports/websocket.js'
import { until } from '../../../packages/server/test/helpers.js'
import { onFreePort } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { connected } from './connected.js'
import { type ChatNode, startNode, stopNode } from './node-process.js'

/** The members of the client's WebSocket (Node: the `ws` package's) this test listens with. */
type Listening = new (
  url: string,
  protocols?: string | string[],
) => { addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void }

/** The client's own WebSocket, which also keeps every text frame it receives in `frames`. */
async function recordingWebSocket(frames: string[]): Promise<Listening> {
  const Platform = (await resolveWebSocket()) as Listening
  return class extends Platform {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      this.addEventListener('message', ({ data }) => {
        if (typeof data === 'string') frames.push(data)
      })
    }
  }
}

describe.skipIf(skipRedisSuites())('a chat node given --handoff-retry-spread', () => {
  let redis: RedisServer | undefined
  let node: ChatNode | undefined
  const sockets: Socket[] = []

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.disconnect()
    if (node) await stopNode(node, 'SIGKILL')
    node = undefined
    await redis?.stop()
  })

  it('tells every session its drain hands off to come back within that spread', async () => {
    redis = await startRedis()
    const url = redis.url
    node = await onFreePort((port) => startNode('spread', port, url, { handoffRetrySpread: 40 }))
    const frames: string[] = []
    const WebSocket = await recordingWebSocket(frames)
    // Twelve draws: were the spread Parley's 1000 ms, all twelve within 40 would be a chance of
    // one in 10^16.
    for (let i = 0; i < 12; i++) {
      const socket = connect(`http://127.0.0.1:${node.port}/parley`, {
        transports: ['websocket'],
        auth: { nickname: `person ${i}` },
        WebSocket,
      })
      sockets.push(socket)
      await connected(socket)
    }
    const closes = () =>
      frames
        .map((frame) => JSON.parse(frame) as unknown[])
        .filter((packet) => packet[0] === CLOSE && packet[1] === 'server handoff')
    node.child.kill('SIGTERM')
    await until(() => closes().length === 12, 10_000, "the drain's CLOSE 'server handoff' to each session")
    for (const close of closes()) {
      const retryAfter = close[3]
      expect(retryAfter).toBeGreaterThanOrEqual(0)
      expect(retryAfter).toBeLessThanOrEqual(40)
    }
  })
})
