// A broadcast with acks whose sender gave a short timeout (`timeout(ms)`) while a node's count
// has not come: a claimer holding its count until a takeover's tail is read (up to three
// requestTimeouts), or a live node that never got the request (the ghost below). At its timeout
// the sender hears what the memory adapter would tell it: the counts it has, with the replies
// that came, and the counted sockets that did not reply as timed out.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())('a broadcast with acks at the end of its sender’s timeout', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  it('counts the nodes that counted, and their sockets that did not reply as timed out', async () => {
    nodes = new Nodes()
    // requestTimeout far past the sender's timeout: only the latter ends its wait.
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { requestTimeout: 20_000, prefix: 'short' })
    const voters = [await nodes.client(a!), await nodes.client(b!), await nodes.client(b!)]
    for (const [i, { client, socket }] of voters.entries()) {
      socket.join('voters')
      // The last one never replies.
      client.on('vote', (ack: (value: unknown) => void) => {
        if (i < 2) ack(`v${i}`)
      })
    }
    // A live node whose count never comes, in place of one that holds it.
    await a!.redis.sendCommand(['SET', 'short:node:ghost', 'http://127.0.0.1:9', 'PX', '60000'])
    await a!.redis.sendCommand(['ZADD', 'short:nodes', String(Date.now()), 'ghost'])
    await until(() => a!.adapter.liveNodes.includes('ghost'), 5000, 'ghost live')
    const failed = await within(
      a!.app.parley
        .timeout(500)
        .to('voters')
        .emitWithAck('vote')
        .then(
          () => undefined,
          (err: unknown) => err,
        ),
      10_000,
      'the answer at the timeout',
    )
    expect(failed).toBeInstanceOf(ParleyError)
    const error = failed as ParleyError<string>
    expect(error.code).toBe(ErrorCode.ACK_TIMEOUT)
    expect(error.message).toMatch(/^1 socket\(s\) did not reply within 500 ms/)
    const { replies } = error.details as { replies: unknown[] }
    expect([...replies].sort()).toEqual(['v0', 'v1'])
  })
})
