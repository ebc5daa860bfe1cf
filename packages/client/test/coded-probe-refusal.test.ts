// An SSE probe whose handshake POST the server answered with a coded 4xx (here its middleware's
// refusal, 403 with the application's code) cannot have been taken: Parley answers a HELLO it took
// with 200 alone. A request of the transport in use refused PARLEY_TRANSPORT_MISMATCH afterwards is
// then the server having let that transport go (its heartbeat gave up on a poll a proxy held
// back): the transport is lost, and the application hears so by `transport_error`, as after a
// WebSocket probe refused at its upgrade (refused-probe-mismatch.test.ts). The middleware's
// refusal itself is heard by `error`, and no probe follows it (probe-refused-by-middleware.test.ts).
// Real client, real server, the fault proxy refusing WebSockets and holding the polls.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { client, next, parleyOf, type ServerSocket, until } from './helpers.js'
import { bothOnce, mismatchScenes, refusedOnceLetGo, transportStory } from './probe-mismatch-scene.js'

const scene = mismatchScenes()

/** The part of the server's handshake this test reads. */
type Handshaking = ServerSocket & { handshake: { transport: string } }

describe('a request refused PARLEY_TRANSPORT_MISMATCH after an SSE probe refused with a coded 403', () => {
  it('is a lost transport: transport_error, then the resume, nothing lost or doubled', async () => {
    // While `refusing`, the middleware refuses every SSE handshake, before the server moves
    // anything. `streams`: the SSE handshakes it saw, refused or not.
    let refusing = true
    let streams = 0
    const refuseStreams = (app: FastifyInstance) =>
      parleyOf(app).use(async (socket) => {
        if ((socket as Handshaking).handshake.transport !== 'sse') return
        streams++
        if (refusing) throw Object.assign(new Error('no event streams now'), { code: 'APP_NO_STREAMS' })
      })
    const stage = await scene(refuseStreams)
    const { proxy: p } = stage
    const socket = client(p.url, {
      // Polling first: the climb probes WebSocket (refused at its upgrade), then SSE (refused by
      // the middleware), 500 ms after the attach; and no more from polling.
      transports: ['polling', 'websocket', 'sse'],
      upgradeDelay: 500,
      upgradeDelayMax: 60_000,
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    const said = transportStory(socket)
    const errors: string[] = []
    socket.on('transport_error', (name, error: ParleyError<string>) => errors.push(`${name} ${error.code}`))
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    const [refusal] = await next<[ParleyError<string>]>(socket, 'error', 8000)
    expect([refusal.code, refusal.details?.transport]).toEqual(['APP_NO_STREAMS', 'sse'])
    // The probes' failures are no transport lost; the resume below may take SSE.
    refusing = false
    expect(errors).toEqual([])
    // As in refused-http-probe-mismatch.test.ts: from the mark on, the proxy holds the polls, and
    // the server's heartbeat lets the transport go about 1.5 s later.
    const [name, error] = await refusedOnceLetGo(socket, stage, said)
    // Taken for the probe's move, the refusal went unheard: what came instead says so.
    const story = `${error.message}; ${said.join(', ')}`
    expect([name, error.code], story).toEqual(['polling', ErrorCode.TRANSPORT_MISMATCH])
    // The resume: the others first (WebSocket refused, then SSE, which the server takes now).
    await until(() => said.some((line) => line.includes('->')), 8000, 'the resume')
    expect(said).toEqual([
      `transport_error polling ${ErrorCode.TRANSPORT_MISMATCH}`,
      `transport_error websocket ${ErrorCode.TRANSPORT_ERROR}`,
      'polling -> sse (downgrade)',
    ])
    // The refused probe's handshake and the resume's: none from polling in between.
    expect(streams).toBe(2)
    await bothOnce(socket, stage)
  }, 25_000)
})
