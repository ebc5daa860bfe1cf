// The scene of the tests of a request refused PARLEY_TRANSPORT_MISMATCH after a probe the server
// cannot have taken (refused-probe-mismatch.test.ts, refused-http-probe-mismatch.test.ts,
// coded-probe-refusal.test.ts): one server whose heartbeat lets a silent transport go, behind a
// fault proxy refusing WebSockets.
import type { ParleyError } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { expect } from 'vitest'
import type { FaultProxy } from '../../../test/support/fault-proxy.js'
import type { Socket } from '../src/socket.js'
import { next, parleyOf, proxiedServers, until } from './helpers.js'

/** The part of the server's socket these tests read besides ServerSocket's. */
export interface Peer {
  readonly transport: string | null
  volatile: { emit(event: string): void }
  on(event: string, fn: (...args: never[]) => void): void
}

export interface MismatchScene {
  /** In front of the server; every WebSocket upgrade refused. */
  proxy: FaultProxy
  /** The server's sockets, one a session, in the order they came. */
  peers: Peer[]
  /** The numbers the server's sockets got on `n`, in order. */
  received: number[]
}

/**
 * Starts a test's scene (see `MismatchScene`), closed after the test: call at the file's top
 * level. The server's heartbeat: a PING every 4 s, the transport let go 1 s after one unanswered.
 * `setup`: more of the server's app (a middleware, say), before it listens.
 */
export function mismatchScenes(): (setup?: (app: FastifyInstance) => void) => Promise<MismatchScene> {
  const proxied = proxiedServers()
  return async (setup = () => {}) => {
    const peers: Peer[] = []
    const received: number[] = []
    const { proxy } = await proxied(
      (app) => {
        parleyOf(app).on('connection', (socket) => {
          const peer = socket as unknown as Peer
          peers.push(peer)
          peer.on('n', (n: number) => received.push(n))
        })
        setup(app)
      },
      { pingInterval: 4000, pingTimeout: 1000 },
    )
    proxy.ws = 'reject'
    return { proxy, peers, received }
  }
}

/** What `socket` tells the application of its transports from now on, a line an event. */
export function transportStory(socket: Socket): string[] {
  const said: string[] = []
  socket.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
  socket.on('transport_error', (name, error: ParleyError<string>) =>
    said.push(`transport_error ${name} ${error.code}`),
  )
  socket.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
  return said
}

/**
 * Lets the server's heartbeat give up on the session's transport, then sends `n` 0 on it: from
 * an unnumbered `mark` on (no ACK owed: nothing goes up that the server would take for a sign of
 * life), the proxy holds what comes down. Resolves with the `transport_error` the refused request
 * brings, the proxy released; `said` holds what the application heard from the send on.
 */
export async function refusedOnceLetGo(
  socket: Socket,
  { proxy, peers }: MismatchScene,
  said: string[],
): Promise<[string, ParleyError<string>]> {
  const peer = peers[0] as Peer
  let release = () => {}
  socket.on('mark', () => {
    release = proxy.hold()
  })
  peer.volatile.emit('mark')
  await until(() => peer.transport === null, 8000, 'the server to let the transport go')
  said.length = 0
  // Its POST is refused: the session is on no transport.
  socket.emit('n', 0)
  const refused = await next<[string, ParleyError<string>]>(socket, 'transport_error', 8000)
  release()
  return refused
}

/** After the resume: `n` 1 goes up, and the one session got both, once each, recovered. */
export async function bothOnce(socket: Socket, { peers, received }: MismatchScene): Promise<void> {
  socket.emit('n', 1)
  await until(() => received.length >= 2, 5000, 'both messages')
  expect(received).toEqual([0, 1])
  expect(peers).toHaveLength(1)
  expect(socket.recovered).toBe(true)
}
