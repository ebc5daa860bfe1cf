// A client that floods its WebSocket with ping frames and does not read the pongs: ws answers
// each ping itself, and cuts the connection (1006) once 60 of its pongs wait to be written (its
// `maxPendingAutoPongs`), as docs/errors.md says. The session only loses its transport: it is
// kept for a resume within the recovery window, nothing of it lost.
import { type Packet, PacketType } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, startServer, until, within } from './helpers.js'
import { RawWebSocket } from './raw-websocket.js'

const apps: FastifyInstance[] = []
const sockets: RawWebSocket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate()
  for (const app of apps.splice(0)) await closeApp(app)
})

async function open(base: string, hello: string): Promise<{ raw: RawWebSocket; first: Packet }> {
  const raw = await RawWebSocket.open(base, hello)
  sockets.push(raw)
  return { raw, first: await raw.first() }
}

describe('a flood of WebSocket pings', () => {
  it('is cut by ws with 1006; the session stays, and a resume recovers it', async () => {
    const { app, base } = await startServer()
    apps.push(app)
    const { raw, first } = await open(base, '[8,{}]')
    if (first.type !== PacketType.OPEN) throw new Error('no OPEN')
    const socket = app.parley.sockets.get(first.id)
    if (!socket) throw new Error('no socket')
    const disconnects: string[] = []
    socket.on('disconnect', (reason: string) => disconnects.push(reason))

    // Far more than ws answers before its pongs are written: the client reads none meanwhile.
    for (let i = 0; i < 1000; i++) raw.ws.ping(Buffer.alloc(125))
    expect(await within(raw.closed, 2000, 'the close')).toBe(1006)
    await until(() => socket.transport === null, 2000, 'the transport detached')

    socket.emit('news', 'while away')
    const { raw: again, first: opened } = await open(base, `[8,{"sid":"${first.sid}","ack":0}]`)
    expect(opened).toMatchObject({ type: PacketType.OPEN, recovered: true, id: first.id })
    await until(() => again.packets.length === 2, 2000, 'the event kept for the resume')
    expect(again.packets[1]).toMatchObject({ type: PacketType.EVENT, name: 'news', args: ['while away'] })
    expect(disconnects).toEqual([])
  })
})
