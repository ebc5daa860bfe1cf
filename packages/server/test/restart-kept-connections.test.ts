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
import { head, RawHttp } from './raw-http.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'

const HELLO = '[8,{}]'

/** The sid of the one session of `instance`. */
function sidOf(instance: FastifyInstance): string {
  const socket = [...instance.parley.sockets.values()][0]
  if (!socket) throw new Error('no session')
  return socket.session.sid
}

const TEXT = { 'Content-Type': 'text/plain' }

/**
 * A POST of the old instance's polling session `sid` (its client's PONG), then a handshake POST,
 * pipelined on one connection.
 */
function pipelined(sid: string): string {
  const pong = encodeText({ type: PacketType.PONG })
  return (
    head('POST', `/a/poll?v=1&sid=${sid}`, { ...TEXT, 'Content-Length': String(Buffer.byteLength(pong)) }) +
    pong +
    head('POST', '/a/poll?v=1', { ...TEXT, 'Content-Length': String(HELLO.length) }) +
    HELLO
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

describe('a closing instance answering its own session', () => {
  it('keeps the connection alive for its successor, which answers the request pipelined behind', async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection)
    shared.serve(old)
    const { client } = await shared.connect('polling')
    const sid = sidOf(old)
    await beginHeldClose(old, olds, client, 'the old instance')
    const restarted = await shared.make('new')
    shared.serve(restarted)

    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    connection.write(pipelined(sid))
    // The old instance's own session: heard there, as on its route.
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 204,
      connection: 'keep-alive',
    })
    // The handshake behind it is the successor's: a new session there.
    connection.received = connection.received.slice(
      connection.received.indexOf('\r\n\r\n') + 4 + first.body.length,
    )
    const second = await connection.answer()
    expect(second.status).toBe(200)
    expect(restarted.parley.sockets.size).toBe(1)
    connection.destroy()
  })

  it('keeps the connection alive after the last words of a session its close ended', async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection)
    shared.serve(old)
    const { client } = await shared.connect('polling')
    // Ended by the close with no GET of its client waiting: its CLOSE is kept for that GET.
    const sid = await pollingHandshake(shared.port)
    await beginHeldClose(old, olds, client, 'the old instance')
    const restarted = await shared.make('new')
    shared.serve(restarted)

    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    connection.write(
      head('GET', `/a/poll?v=1&sid=${sid}`) +
        head('POST', '/a/poll?v=1', { ...TEXT, 'Content-Length': String(HELLO.length) }) +
        HELLO,
    )
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 200,
      connection: 'keep-alive',
    })
    expect(packetsOf(first.body)).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    // The handshake behind it is the successor's: a new session there.
    connection.received = connection.received.slice(
      connection.received.indexOf('\r\n\r\n') + 4 + Buffer.byteLength(first.body),
    )
    const second = await connection.answer()
    expect(second.status).toBe(200)
    expect(restarted.parley.sockets.size).toBe(1)
    connection.destroy()
  })

  it('ends the connection with its answer once no successor serves the path', async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection)
    shared.serve(old)
    const { client } = await shared.connect('polling')
    const sid = sidOf(old)
    await beginHeldClose(old, olds, client, 'the old instance')

    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    connection.write(pipelined(sid))
    const first = await connection.answer()
    expect({ status: first.status, connection: first.headers.connection }).toEqual({
      status: 204,
      connection: 'close',
    })
    await within(connection.closed, 3000, 'the connection to end after the answer')
  })
})
