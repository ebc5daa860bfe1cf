// A resume over SSE or polling whose OPEN reaches the client late (a loaded machine, a node that
// relays the answer). The server waits for the transport's first GET handshakeTimeout +
// pingInterval + pingTimeout after the HELLO, and times the heartbeat from it: a GET within that
// is taken as any. One later still finds the session detached, waiting for a resume: that GET is
// refused 400 PARLEY_TRANSPORT_MISMATCH, and the client says HELLO again at once, resumes it, and
// tells its application nothing. Real client, real server; the network between them (`fetch`)
// cuts the stream or poll, then holds back the answer to the resume's HELLO.
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

/** PING 200 ms after an attach, its PONG checked 200 ms later: the OPEN is held back longer. */
const HEARTBEAT = { pingInterval: 200, pingTimeout: 200 }
const LATE_MS = 900
/** The server waits for a first GET 700 ms after the HELLO: the OPEN is held back longer. */
const SHORT_WAIT = { ...HEARTBEAT, handshakeTimeout: 300 }

/**
 * The network: `cut()` breaks the GET under way, and holds back the answer to the next HELLO (a
 * POST without a sid) LATE_MS.
 */
function network() {
  let current: AbortController | undefined
  let holdNext = false
  let held = 0
  const wrapped: typeof fetch = async (input, init) => {
    if ((init?.method ?? 'GET') !== 'GET') {
      const hello = !String(input).includes('sid=')
      const answer = await fetch(input, init)
      if (hello && holdNext) {
        holdNext = false
        held++
        await new Promise((resolve) => setTimeout(resolve, LATE_MS))
      }
      return answer
    }
    const own = new AbortController()
    current = own
    init?.signal?.addEventListener('abort', () => own.abort(init.signal?.reason))
    return fetch(input, { ...init, signal: own.signal })
  }
  return {
    fetch: wrapped,
    cut() {
      holdNext = true
      current?.abort(new Error('cut'))
    },
    held: () => held,
  }
}

describe.each([
  ['after the server gave up on it', SHORT_WAIT, ['PARLEY_TRANSPORT_MISMATCH']],
  ['past the first heartbeat, within the wait for it', HEARTBEAT, []],
] as const)('a resume whose first GET comes %s', (_, options, refusals) => {
  it.each(['polling', 'sse'] as const)(
    'over %s: resumed, no disconnect',
    async (transport) => {
      let peer: ServerSocket | undefined
      const server = await startServer((app) => {
        parleyOf(app).on('connection', (socket) => {
          peer = socket
        })
      }, options)
      const net = network()
      const socket = client(server.url, { transports: [transport], fetch: net.fetch, connectTimeout: 3000 })
      const disconnects: string[] = []
      const refused: string[] = []
      socket.on('disconnect', (reason: string) => disconnects.push(reason))
      socket.on('transport_error', (_t: string, error: { code: string }) => refused.push(error.code))
      const got: number[] = []
      socket.on('news', (n: number) => got.push(n))
      await next(socket, 'connect')
      await until(() => peer !== undefined)
      const id = socket.id
      peer!.emit('news', 1)
      await until(() => got.length === 1)

      net.cut()
      await until(() => net.held() === 1, 3000, 'the held-back OPEN')
      peer!.emit('news', 2)
      // Past the server's wait, the first GET is refused, the session detached, alive: the client
      // says HELLO again. Within it, the GET is taken.
      const mismatches = () => refused.filter((code) => code === 'PARLEY_TRANSPORT_MISMATCH')
      if (refusals.length > 0) await until(() => mismatches().length > 0, 3000, 'the late GET refused')
      await until(() => socket.connected && got.length === 2, 3000, 'resumed')
      peer!.emit('news', 3)
      await until(() => got.length === 3, 3000, 'after the resume')
      expect(got).toEqual([1, 2, 3])
      expect(socket.id).toBe(id)
      expect(socket.recovered).toBe(true)
      expect(disconnects).toEqual([])
      expect(mismatches()).toEqual(refusals)
    },
    30_000,
  )
})
