// Over long-polling an ACK alone ends the client's held GET, and the client polls again for it:
// a request per quiet message. The server's timed ACK waits for the next answer instead (an
// event, the next PING), unless the packets it covers are large. docs/protocol.md, Delivery.
import { connect } from '@parley/client'
import { decodeText, PacketType } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { closeApp, sleep, startServer, until, within } from './helpers.js'

const apps: FastifyInstance[] = []
afterEach(async () => {
  for (const app of apps.splice(0)) await closeApp(app)
})

/** The server's ACK timer (200 ms) and then some: past it, a lone ACK would have gone. */
const PAST_THE_ACK_TIMER_MS = 600

/** A polling session opened by hand (docs/protocol.md): its handshake, and a way to POST. */
async function pollingSession(
  endpoint: string,
): Promise<{ sid: string; post: (line: string) => Promise<void> }> {
  const res = await fetch(`${endpoint}?v=1`, { method: 'POST', body: JSON.stringify([8, {}]) })
  const open = decodeText(await res.text())
  if (!open.ok || open.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
  const sid = open.packet.sid
  const post = async (line: string) => {
    const answer = await fetch(`${endpoint}?v=1&sid=${sid}`, { method: 'POST', body: line })
    expect(answer.status).toBe(204)
  }
  return { sid, post }
}

describe('the server ACK over polling', () => {
  it('waits for the next packet the client gets, rather than answer a GET alone', async () => {
    const { app, base } = await startServer()
    apps.push(app)
    const endpoint = `${base}/poll`
    const { sid, post } = await pollingSession(endpoint)
    const held = fetch(`${endpoint}?v=1&sid=${sid}`).then((res) => res.text())
    let answered = false
    void held.then(() => {
      answered = true
    })
    await post(JSON.stringify([5, 1, 'note', [{ text: 'hello' }], 0]))
    await sleep(PAST_THE_ACK_TIMER_MS)
    expect(answered).toBe(false)

    const socket = [...app.parley.sockets.values()][0]
    socket?.emit('news', 'later')
    const packets = packetsOf(await within(held, 3000, 'the answer'))
    expect(packets.map((packet) => packet.type)).toEqual([PacketType.ACK, PacketType.EVENT])
    expect(packets[0]).toMatchObject({ type: PacketType.ACK, ack: 1 })
  })

  it('goes with the PING when nothing else comes', async () => {
    const { app, base } = await startServer({ pingInterval: 1000, pingTimeout: 1000 })
    apps.push(app)
    const endpoint = `${base}/poll`
    const { sid, post } = await pollingSession(endpoint)
    // The session's first GET: held until the first PING, a pingInterval after the attach.
    const held = fetch(`${endpoint}?v=1&sid=${sid}`).then((res) => res.text())
    await post(JSON.stringify([5, 1, 'note', [{ text: 'hello' }], 0]))
    await post(JSON.stringify([5, 2, 'note', [{ text: 'again' }], 0]))
    const packets = packetsOf(await within(held, 3000, 'the PING'))
    expect(packets).toEqual([{ type: PacketType.ACK, ack: 2 }, { type: PacketType.PING }])
  })

  it('goes alone, on its timer, for packets of 64 KiB or more', async () => {
    const { app, base } = await startServer()
    apps.push(app)
    const endpoint = `${base}/poll`
    const { sid, post } = await pollingSession(endpoint)
    const held = fetch(`${endpoint}?v=1&sid=${sid}`).then((res) => res.text())
    await post(JSON.stringify([5, 1, 'note', ['x'.repeat(64 * 1024)], 0]))
    // Well before the first PING (20 s by default).
    const packets = packetsOf(await within(held, 3000, 'the ACK'))
    expect(packets).toEqual([{ type: PacketType.ACK, ack: 1 }])
  })

  it('costs the Parley client no GET of its own', async () => {
    let gets = 0
    const { app, base } = await startServer({}, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method === 'GET' && request.url.startsWith('/parley/poll')) gets++
      })
    })
    apps.push(app)
    const heard: string[] = []
    app.parley.on('connection', (socket) => {
      socket.on('note', (text: string) => heard.push(text))
    })
    const client = connect(base, { transports: ['polling'], reconnection: false })
    try {
      await within(
        new Promise((resolve) => client.once('connect', () => resolve(undefined))),
        3000,
        'connect',
      )
      await until(() => gets > 0, 3000, 'the first GET')
      const before = gets
      client.emit('note', 'one')
      client.emit('note', 'two')
      await until(() => heard.length === 2, 3000, 'the notes')
      await sleep(PAST_THE_ACK_TIMER_MS)
      expect(gets).toBe(before)

      // The ACK went nowhere: the next packet for the client still arrives, and with it the ACK.
      const news = new Promise((resolve) => client.once('news', resolve))
      for (const socket of app.parley.sockets.values()) socket.emit('news', 'fresh')
      expect(await within(news, 3000, 'the news')).toBe('fresh')
    } finally {
      client.disconnect()
    }
  })
})
