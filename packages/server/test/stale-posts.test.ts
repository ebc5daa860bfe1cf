// Upstream POSTs (SSE, polling) that belong to a transport the session has left: the client
// resumed on another transport, or lost this one and has not come back yet. Whatever their body,
// they are refused with PARLEY_TRANSPORT_MISMATCH and leave the live session alone; a body past
// maxPayload too, which ends the session only on the transport it is attached to.
import { request } from 'node:http'
import { PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { announcePost, RawHttp } from './raw-http.js'

const MAX_PAYLOAD = 1000

const opened = closedAfterEach()

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  opened.clients.push(client)
  return client
}

/** A server with a small maxPayload; the sockets it opened, and their `disconnect` reasons. */
async function serve() {
  const sockets: ServerSocket[] = []
  const reasons: string[] = []
  opened.started = await startServer({ maxPayload: MAX_PAYLOAD }, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('disconnect', (reason) => reasons.push(reason))
    })
  })
  return { base: opened.started.base, sockets, reasons }
}

/** A POST on `url` whose head announces a body past maxPayload, sent without the body. */
async function announcedTooLarge(url: string) {
  const raw = await RawHttp.open(Number(new URL(url).port))
  opened.rawHttp.push(raw)
  announcePost(raw, url, MAX_PAYLOAD * 5)
  return raw.answer()
}

describe.each(['sse', 'polling'] as const)('a POST on a transport the session has left (%s)', (transport) => {
  const endpoint = (base: string, sid: string) =>
    `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${sid}`

  it('is refused as stale, unread, when it announces a body past maxPayload: the session goes on', async () => {
    const { base, sockets, reasons } = await serve()
    const first = await connect(transport, base)
    const again = await connect('websocket', base, { sid: first.sid, ack: 0 })
    expect(again.open.recovered).toBe(true)
    const answer = await announcedTooLarge(endpoint(base, first.sid))
    expect(answer.status).toBe(400)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_TRANSPORT_MISMATCH' })
    expect(answer.headers.connection).toBe('close')
    // The session never heard of it.
    expect(reasons).toEqual([])
    expect(sockets[0]!.transport).toBe('websocket')
    sockets[0]!.emit('still', 'here')
    expect(await again.next((p) => p.type === PacketType.EVENT)).toMatchObject({
      name: 'still',
      args: ['here'],
    })
  })

  it('is refused as stale when it announces a body past maxPayload while the session waits for a resume', async () => {
    const { base, sockets, reasons } = await serve()
    const first = await connect(transport, base)
    const third = await connect('websocket', base, { sid: first.sid, ack: 0 })
    third.close()
    await until(() => sockets[0]!.transport === null, 3000, 'detached')
    const answer = await announcedTooLarge(endpoint(base, first.sid))
    expect(answer.status).toBe(400)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_TRANSPORT_MISMATCH' })
    expect(reasons).toEqual([])
    const back = await connect('websocket', base, { sid: first.sid, ack: 0 })
    expect(back.open.recovered).toBe(true)
  })

  it('is refused as stale when its body passes maxPayload after the client resumed elsewhere', async () => {
    const { base, sockets, reasons } = await serve()
    const first = await connect(transport, base)
    const post = request(new URL(endpoint(base, first.sid)), {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
    })
    const answered = new Promise<{ status: number; body: string; connection?: string }>((resolve, reject) => {
      post.on('response', (res) => {
        let body = ''
        res.on('data', (chunk: Buffer) => {
          body += chunk
        })
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }),
        )
      })
      post.on('error', reject)
    })
    // A chunked body under the limit so far: the server has taken the POST for the transport
    // attached now.
    post.write('x'.repeat(MAX_PAYLOAD / 2))
    await until(() => sockets.length === 1)
    const again = await connect('websocket', base, { sid: first.sid, ack: 0 })
    expect(again.open.recovered).toBe(true)
    // Then past it.
    post.write('x'.repeat(MAX_PAYLOAD))
    const { status, body, connection } = await answered
    post.destroy()
    expect(status).toBe(400)
    expect(JSON.parse(body)).toMatchObject({ code: 'PARLEY_TRANSPORT_MISMATCH' })
    expect(connection).toBe('close')
    expect(reasons).toEqual([])
    expect(sockets[0]!.connected).toBe(true)
    sockets[0]!.emit('still', 'here')
    expect(await again.next((p) => p.type === PacketType.EVENT)).toMatchObject({
      name: 'still',
      args: ['here'],
    })
  })

  it('still ends the session on the transport it is attached to', async () => {
    const { base, reasons } = await serve()
    const first = await connect(transport, base)
    const answer = await announcedTooLarge(endpoint(base, first.sid))
    expect(answer.status).toBe(413)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_PAYLOAD_TOO_LARGE' })
    await until(() => reasons.length === 1)
    expect(reasons).toEqual(['payload too large'])
  })
})
