// A WebSocket probe refused at its upgrade never sent its HELLO: the server cannot have moved the
// session onto it. A request of the transport in use refused PARLEY_TRANSPORT_MISMATCH afterwards
// is then no move of the client's making, but the server having let that transport go (here its
// heartbeat gave up on a stream a proxy held back): the transport is lost, and the application
// hears so by `transport_error`, as for any transport lost with an error. Real client, real
// server, the fault proxy refusing WebSockets and holding the stream.
import { ErrorCode } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { client, next, until } from './helpers.js'
import { bothOnce, mismatchScenes, refusedOnceLetGo, transportStory } from './probe-mismatch-scene.js'

const scene = mismatchScenes()

describe('a request refused PARLEY_TRANSPORT_MISMATCH after a WebSocket probe refused at its upgrade', () => {
  it('is a lost transport: transport_error, then the resume, nothing lost or doubled', async () => {
    // WebSockets refused. The server's first PING goes 4 s after the attach; unanswered, it lets
    // the transport go 1 s later. The client gives the server 5 s from the last thing it received.
    const stage = await scene()
    const { proxy: p } = stage
    const socket = client(p.url, {
      // Probes 500 ms after the attach, then 1, 2, 4 s after each failure: at about 0.5, 1.5, 3.5
      // and 7.5 s, every one refused.
      upgradeDelay: 500,
      upgradeDelayMax: 60_000,
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    const said = transportStory(socket)
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    // The connect's upgrade and three probes, each refused: the next comes about 2.5 s after the
    // server's heartbeat gives up below, well after the refusal this test waits for.
    await until(() => p.upgrades >= 4, 8000, 'probes refused')
    // Something for the client, unnumbered (no ACK owed: nothing goes up that the server would
    // take for a sign of life), about 3.5 s after the attach: its silence bound now ends about
    // 3.5 s after the server's heartbeat gives up. From it on, the proxy holds the stream.
    const [name, error] = await refusedOnceLetGo(socket, stage, said)
    expect([name, error.code]).toEqual(['sse', ErrorCode.TRANSPORT_MISMATCH])
    // The resume: the others first, then SSE again.
    await until(() => said.length >= 2, 8000, 'the resume')
    expect(said).toEqual([
      `transport_error sse ${ErrorCode.TRANSPORT_MISMATCH}`,
      'sse -> polling (downgrade)',
    ])
    await bothOnce(socket, stage)
  }, 25_000)
})
