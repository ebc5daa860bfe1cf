// The connection of an answer a closing instance gives one of its own sessions' requests, while an
// instance restarted at its path (its successor) serves the server's other requests: kept alive,
// for that successor to serve the connection's next requests, pipelined behind it or sent later.
// With `Connection: close` on that answer, Node ended the connection after it, the requests
// pipelined behind dropped unanswered; the answer ends the connection only when no successor
// serves the path.

import { decodeText, encodeText, PacketType } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { holding } from './held-events.js'
import { within } from './helpers.js'
import { head, type RawAnswer, RawHttp } from './raw-http.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'

const HELLO = '[8,{}]'

/** The sid of the one session of `instance`. */
function sidOf(instance: FastifyInstance): string {
  const socket = [...instance.parley.sockets.values()][0]
  if (!socket) throw new Error('no session')
  return socket.session.sid
}

const TEXT = { 'Content-Type': 'text/plain' }

/** A handshake POST, as a raw client sends it. */
const HANDSHAKE = head('POST', '/a/poll?v=1', { ...TEXT, 'Content-Length': String(HELLO.length) }) + HELLO

/** A POST of the old instance's polling session `sid` (its client's PONG): a handshake pipelined behind. */
function pongThenHandshake(sid: string): string {
  const pong = encodeText({ type: PacketType.PONG })
  return (
    head('POST', `/a/poll?v=1&sid=${sid}`, { ...TEXT, 'Content-Length': String(Buffer.byteLength(pong)) }) +
    pong +
    HANDSHAKE
  )
}

/** A polling session of `/a` opened by its handshake POST alone: no GET of its client waits. */
async function pollingHandshake(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/a/poll?v=1`, {
    method: 'POST',
    headers: TEXT,
    body: HELLO,
  })
  const decoded = decodeText(await res.text())
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
  return decoded.packet.sid
}

/**
 * An instance on a restartable server with a polling client, whose close is begun and held by
 * that client's event; `opened` runs before the close (a session of the test's own, say).
 */
async function closingOld<T>(opened: (shared: Shared, old: FastifyInstance) => Promise<T>) {
  const shared = await restartableServer(true)
  const olds = holding()
  const old = await shared.make('old', olds.onConnection)
  shared.serve(old)
  const { client } = await shared.connect('polling')
  const made = await opened(shared, old)
  await beginHeldClose(old, olds, client, 'the old instance')
  return { shared, made }
}

type Shared = Awaited<ReturnType<typeof restartableServer>>

/** A connection to `shared` on which `text` is written. */
async function sending(shared: Shared, text: string): Promise<RawHttp> {
  const connection = await RawHttp.open(shared.port)
  onTestFinished(() => connection.destroy())
  connection.write(text)
  return connection
}

/** The answer that comes after `first` on `connection`. */
function answerAfter(connection: RawHttp, first: RawAnswer): Promise<RawAnswer> {
  connection.received = connection.received.slice(
    connection.received.indexOf('\r\n\r\n') + 4 + Buffer.byteLength(first.body),
  )
  return connection.answer()
}

describe('a closing instance answering its own session', () => {
  it('keeps the connection alive for its successor, which answers the request pipelined behind', async () => {
    const { shared, made: sid } = await closingOld(async (_, old) => sidOf(old))
    const restarted = await shared.make('new')
    shared.serve(restarted)

    const connection = await sending(shared, pongThenHandshake(sid))
    // The old instance's own session: heard there, as on its route.
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 204,
      connection: 'keep-alive',
    })
    // The handshake behind it is the successor's: a new session there.
    expect((await answerAfter(connection, first)).status).toBe(200)
    expect(restarted.parley.sockets.size).toBe(1)
  })

  it('keeps the connection alive after the last words of a session its close ended', async () => {
    // Ended by the close with no GET of its client waiting: its CLOSE is kept for that GET.
    const { shared, made: sid } = await closingOld((shared) => pollingHandshake(shared.port))
    const restarted = await shared.make('new')
    shared.serve(restarted)

    const connection = await sending(shared, head('GET', `/a/poll?v=1&sid=${sid}`) + HANDSHAKE)
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 200,
      connection: 'keep-alive',
    })
    expect(packetsOf(first.body)).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    // The handshake behind it is the successor's: a new session there.
    expect((await answerAfter(connection, first)).status).toBe(200)
    expect(restarted.parley.sockets.size).toBe(1)
  })

  it('ends the connection with its answer once no successor serves the path', async () => {
    const { shared, made: sid } = await closingOld(async (_, old) => sidOf(old))

    const connection = await sending(shared, pongThenHandshake(sid))
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 204,
      connection: 'close',
    })
    await within(connection.closed, 3000, 'the connection to end after the answer')
  })
})
