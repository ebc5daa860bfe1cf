// An SSE probe whose HELLO never reached the server (its POST could not connect: refused, as a
// network refuses a new connection while the old ones still work) cannot have been taken: the
// server cannot have moved the session onto it. A request of the transport in use refused
// PARLEY_TRANSPORT_MISMATCH afterwards is then the server having let that transport go (its
// heartbeat gave up on a poll a proxy held back): the transport is lost, and the application
// hears so by `transport_error`, as after a WebSocket probe refused at its upgrade
// (refused-probe-mismatch.test.ts). The client's own fetch tells (no `fetch` option: the
// platform's, whose SSE handshakes this file sends to a port where nothing listens, a refusal of
// the system's); an application's may have tried more than once (retrying-fetch-probe.test.ts).
// Real client, real server, the fault proxy refusing WebSockets and holding the polls.
import { ErrorCode } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { freePort } from '../../../test/support/ports.js'
import { client, next, until } from './helpers.js'
import { bothOnce, mismatchScenes, refusedOnceLetGo, transportStory } from './probe-mismatch-scene.js'

const scene = mismatchScenes()
afterEach(() => {
  vi.unstubAllGlobals()
})

/**
 * The platform's fetch from now on sends SSE handshakes (a POST without `sid`) to a port where
 * nothing listens: refused by the system, before anything is sent.
 */
async function refusingSseHellos(): Promise<{ refused: () => number }> {
  const platform = globalThis.fetch
  const nowhere = `http://127.0.0.1:${await freePort()}`
  let refused = 0
  vi.stubGlobal('fetch', (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input)
    if (init?.method === 'POST' && url.includes('/sse?') && !url.includes('sid=')) {
      refused++
      return platform(url.replace(/^http:\/\/[^/]+/, nowhere), init)
    }
    return platform(input, init)
  })
  return { refused: () => refused }
}

describe('a request refused PARLEY_TRANSPORT_MISMATCH after an SSE probe that could not connect', () => {
  it('is a lost transport: transport_error, then the resume, nothing lost or doubled', async () => {
    // WebSockets refused. The server's first PING goes 4 s after the attach; unanswered, it lets
    // the transport go 1 s later. The client gives the server 5 s from the last thing it received.
    const stage = await scene()
    const { proxy: p } = stage
    const sse = await refusingSseHellos()
    const socket = client(p.url, {
      // Polling first: the climb probes WebSocket (refused at its upgrade), then SSE (refused
      // before connecting), 500 ms after the attach, then 1, 2, 4 s after each failure: at about
      // 0.5, 1.5, 3.5 and 7.5 s.
      transports: ['polling', 'websocket', 'sse'],
      upgradeDelay: 500,
      upgradeDelayMax: 60_000,
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    const said = transportStory(socket)
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    // Three probes, each refused twice over: the next comes about 2.5 s after the server's
    // heartbeat gives up below, well after the refusal this test waits for.
    await until(() => sse.refused() >= 3, 8000, 'probes refused')
    expect(p.upgrades).toBe(3)
    // Something for the client, unnumbered (no ACK owed: nothing goes up that the server would
    // take for a sign of life), about 3.5 s after the attach: its silence bound now ends about
    // 3.5 s after the server's heartbeat gives up. From it on, the proxy holds the polls.
    const [name, error] = await refusedOnceLetGo(socket, stage, said)
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
    await bothOnce(socket, stage)
  }, 25_000)
})
