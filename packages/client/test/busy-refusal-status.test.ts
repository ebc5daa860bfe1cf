// A busy node's code (PARLEY_SERVER_FULL, PARLEY_SERVER_SHUTTING_DOWN) in the status of a refusal
// (401, 403): an application's hook in front of Parley's routes, or its handshake middleware, that
// says the node is full or going away. That passes: the client tries again after its backoff at
// any time, as after a 503 or the same code in a WebSocket's ERROR, not only within the quiet time
// after a handoff. A refusal of the client (an application's own code, PARLEY_REFUSED) still
// stops it. Real client against the real server, over each transport (WebSocket in Node, with
// `ws`, which reads the upgrade's answer).
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { client, closeAll, next, startServer, until } from './helpers.js'

afterEach(closeAll)

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

/** A request that opens or resumes a session: a WebSocket's upgrade, or a POST without `sid`. */
const isHello = (request: { method: string; url: string }): boolean =>
  request.url.startsWith('/parley/ws') || (request.method === 'POST' && !request.url.includes('sid='))

/**
 * A server whose application hook answers the next `gate.left` HELLOs with `status` and
 * `{code, message}`, before Parley sees them; `gate.turned` counts them.
 */
async function gatedServer(status: number, code: string) {
  const gate = { left: 0, turned: 0 }
  const server = await startServer((app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (gate.left === 0 || !isHello(request)) return
      gate.left--
      gate.turned++
      return reply.code(status).send({ code, message: 'not now' })
    })
  })
  return { server, gate }
}

/** What the application heard: `connect_error`s (code and willRetry) and `disconnect`s. */
function heard(socket: ReturnType<typeof client>): string[] {
  const said: string[] = []
  socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
    said.push(`connect_error ${error.code} ${willRetry}`),
  )
  socket.on('disconnect', (reason: string) => said.push(`disconnect ${reason}`))
  return said
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  it.each([
    [403, ErrorCode.SERVER_FULL],
    [401, ErrorCode.SERVER_SHUTTING_DOWN],
  ])('a connect answered %i %s is tried again after the backoff, and connects', async (status, code) => {
    const { server, gate } = await gatedServer(status, code)
    gate.left = 2
    const socket = client(`${server.url}/parley`, { transports: [transport] })
    const said = heard(socket)
    await next(socket, 'connect', 5000)
    expect(gate.turned).toBe(2)
    // A node shutting down is tried once more at once on the same transport (a balancer sends
    // that try to another node): one attempt for both answers.
    const attempts = code === ErrorCode.SERVER_SHUTTING_DOWN ? 1 : 2
    expect(said).toEqual(Array(attempts).fill(`connect_error ${code} true`))
  })

  it('a resume after a network loss answered 403 PARLEY_SERVER_FULL is tried again, and recovers the session', async () => {
    // No handoff: the quiet time that follows one does not hold here.
    const { server, gate } = await gatedServer(403, ErrorCode.SERVER_FULL)
    const proxy = await startFaultProxy(server.port)
    try {
      const socket = client(`${proxy.url}/parley`, { transports: [transport] })
      await next(socket, 'connect')
      const id = socket.id
      const said = heard(socket)
      // Offline, then back: a polling client's next request fails too (a cut alone, it polls again).
      const lost = next(socket, 'transport_error')
      proxy.offline = true
      proxy.cut('all')
      await lost
      gate.left = 2
      proxy.offline = false
      await until(() => gate.turned === 2 && socket.connected, 5000, 'the resume past the busy answers')
      // Each told, none the last: the tries while offline, then the busy answers.
      expect(said.filter((s) => s.startsWith('connect_error')).every((s) => s.endsWith(' true'))).toBe(true)
      expect(said.filter((s) => s === `connect_error ${ErrorCode.SERVER_FULL} true`)).toHaveLength(2)
      expect(socket.id).toBe(id)
      expect(socket.recovered).toBe(true)
    } finally {
      await proxy.close()
    }
  })

  it("a connect answered 403 with the application's own code stops: a refusal", async () => {
    const { server, gate } = await gatedServer(403, 'APP_BANNED')
    gate.left = 1
    const socket = client(`${server.url}/parley`, { transports: [transport] })
    const said = heard(socket)
    await until(() => said.length > 0 && !socket.active, 3000, 'the refusal')
    expect(said).toEqual(['connect_error APP_BANNED false'])
    expect(gate.turned).toBe(1)
  })
})
