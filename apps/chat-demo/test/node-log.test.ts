// What a chat node tells the terminal it runs in: its warnings, without LOG=1. Run without them,
// a node whose Redis went away refused every message and said nothing of why.
import { connect, type Socket } from '@parley/client'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from '../../../packages/server/test/helpers.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import type { ChatReply, ClientEvents, ServerEvents } from '../src/shared.js'
import { connected } from './connected.js'
import { type ChatNode, startNode, stopNode } from './node-process.js'

describe.skipIf(skipRedisSuites())('a chat node whose store went away', () => {
  let redis: RedisServer | undefined
  let node: ChatNode | undefined
  let client: Socket<ServerEvents, ClientEvents> | undefined

  afterEach(async () => {
    client?.disconnect()
    // Its Redis is gone: a drain would wait for it. Nothing of the node is left to keep.
    if (node) await stopNode(node, 'SIGKILL')
    await redis?.stop()
  })

  it('logs why it refused a message, with no LOG=1 asked', async () => {
    redis = await startRedis()
    node = await startNode('lone', 0, redis.url)
    const port = /listening on \S+:(\d+)/.exec(node.output())?.[1]
    client = connect<ServerEvents, ClientEvents>(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      auth: { nickname: 'una', visitor: 'una-browser-0001' },
    })
    await connected(client)
    await redis.stop()
    const reply = await new Promise<ChatReply>((resolve, reject) =>
      client
        ?.timeout(10_000)
        .emit('chat', { room: 'lobby', text: 'anyone?', key: 'k1' }, (error, answer) =>
          error ? reject(error) : resolve(answer),
        ),
    )
    expect(reply).toMatchObject({ ok: false, code: 'STORE_UNAVAILABLE' })
    // Fastify's log, one JSON object a line: the chat's own warning among them, in the words of
    // the README's table of log lines.
    const warned = () =>
      node
        ?.output()
        .split('\n')
        .some(
          (line) =>
            /"level":40/.test(line) && line.includes(`"msg":"chat: the chat's store cannot be reached (`),
        ) ?? false
    await until(warned, 5000, 'the warning on stdout')
  })
})
