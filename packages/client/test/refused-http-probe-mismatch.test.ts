// An SSE probe whose HELLO never reached the server (its POST could not connect: refused, here by
// the application's `fetch`, as a network refuses a new connection while the old ones still work)
// cannot have been taken: the server cannot have moved the session onto it. A request of the
// transport in use refused PARLEY_TRANSPORT_MISMATCH afterwards is then the server having let
// that transport go (its heartbeat gave up on a poll a proxy held back): the transport is lost,
// and the application hears so by `transport_error`, as after a WebSocket probe refused at its
// upgrade (refused-probe-mismatch.test.ts). Real client, real server, the fault proxy refusing
// WebSockets and holding the polls.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { client, next, until } from './helpers.js'
import { mismatchScenes, transportStory } from './probe-mismatch-scene.js'

const scene = mismatchScenes()

/** A fetch whose SSE handshakes (a POST without `sid`) fail before connecting, as refused. */
function refusingSseHellos(): { fetch: typeof fetch; refused: () => number } {
  let refused = 0
  return {
    refused: () => refused,
    fetch: (input, init) => {
      const url = String(input)
      if (init?.method === 'POST' && url.includes('/sse?') && !url.includes('sid=')) {
        refused++
        const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        return Promise.reject(new TypeError('fetch failed', { cause }))
      }
      return fetch(input, init)
    },
  }
}

describe('a request refused PARLEY_TRANSPORT_MISMATCH after an SSE probe that could not connect', () => {
  it('is a lost transport: transport_error, then the resume, nothing lost or doubled', async () => {
    // WebSockets refused. The server's first PING goes 4 s after the attach; unanswered, it lets
    // the transport go 1 s later. The client gives the server 5 s from the last thing it received.
    const { proxy: p, peers, received } = await scene()
    const sse = refusingSseHellos()
    const socket = client(p.url, {
      // Polling first: the climb probes WebSocket (refused at its upgrade), then SSE (refused
      // before connecting), 500 ms after the attach, then 1, 2, 4 s after each failure: at about
      // 0.5, 1.5, 3.5 and 7.5 s.
      transports: ['polling', 'websocket', 'sse'],
      fetch: sse.fetch,
      upgradeDelay: 500,
      upgradeDelayMax: 60_000,
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    const said = transportStory(socket)
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    const peer = peers[0]!
    // Three probes, each refused twice over: the next comes about 2.5 s after the server's
    // heartbeat gives up below, well after the refusal this test waits for.
    await until(() => sse.refused() >= 3, 8000, 'probes refused')
    expect(p.upgrades).toBe(3)
    // Something for the client, unnumbered (no ACK owed: nothing goes up that the server would
    // take for a sign of life), about 3.5 s after the attach: its silence bound now ends about
    // 3.5 s after the server's heartbeat gives up. From it on, the proxy holds the polls.
    let release = () => {}
    socket.on('mark', () => {
      release = p.hold()
    })
    peer.volatile.emit('mark')
    await until(() => peer.transport === null, 8000, 'the server to let the poll go')
    said.length = 0
    // Its POST is refused: the session is on no transport.
    socket.emit('n', 0)
    const [name, error] = await next<[string, ParleyError<string>]>(socket, 'transport_error', 8000)
    release()
    // Taken for the probe's move, the refusal went unheard: what came instead says so.
    const story = `${error.message}; ${said.join(', ')}`
    expect([name, error.code], story).toEqual(['polling', ErrorCode.TRANSPORT_MISMATCH])
    // The resume: the others first (WebSocket refused, SSE refused), then polling again.
    await until(() => said.some((line) => line.includes('->')), 8000, 'the resume')
    expect(said).toEqual([
      `transport_error polling ${ErrorCode.TRANSPORT_MISMATCH}`,
      `transport_error websocket ${ErrorCode.TRANSPORT_ERROR}`,
      `transport_error sse ${ErrorCode.TRANSPORT_ERROR}`,
      'polling -> polling (resume)',
    ])
    socket.emit('n', 1)
    await until(() => received.length >= 2, 5000, 'both messages')
    expect(received).toEqual([0, 1])
    expect(peers).toHaveLength(1)
    expect(socket.recovered).toBe(true)
  })
})
