// An application's fetch may reject with a ParleyError of its own making (a refusal it read from
// an answer itself), its `details` frozen. Taken for the server's refusal of a probe, it is told
// by `error` as such a refusal is (probe-refused-by-middleware.test.ts), the session going on
// where it is. The client names the probe's transport in a refusal's details; written into frozen
// ones, that threw from the probe's failure: the refusal went unheard, the throw unhandled. Real
// client against the real server, an SSE probe from polling.
import { ParleyError } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, parleyOf, startServer } from './helpers.js'

afterEach(closeAll)

it('tells an SSE probe refused by a frozen ParleyError of the application’s fetch by `error`', async () => {
  const server = await startServer((app) => {
    parleyOf(app).on('connection', (socket) => {
      socket.on('echo', ((n: number, ack: (n: number) => void) => ack(n)) as (...args: never[]) => void)
    })
  })
  const details: Record<string, unknown> = Object.freeze({ status: 401, refused: true })
  const refusal = new ParleyError<string>('APP_TOKEN_EXPIRED', 'token expired', { details })
  const thrown = await unheard(async () => {
    const socket = client(server.url, {
      // From polling, the climb probes SSE 100 ms after the attach; its handshake POST is refused.
      transports: ['polling', 'sse'],
      upgradeDelay: 100,
      fetch: (input, init) => {
        const url = String(input)
        const sseHandshake = init?.method === 'POST' && url.includes('/sse?') && !url.includes('sid=')
        return sseHandshake ? Promise.reject(refusal) : fetch(input, init)
      },
    })
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    const [error] = await next<[ParleyError<string>]>(socket, 'error', 5000)
    expect(error).toBe(refusal)
    // The session goes on, on polling.
    expect(await socket.timeout(2000).emitWithAck('echo', 1)).toBe(1)
    expect(socket.transport).toBe('polling')
  })
  expect(thrown).toEqual([])
})
