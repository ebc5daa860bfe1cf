// Packets of a valid shape that do not fit the session's state (docs/protocol.md, "Ordered,
// exactly-once delivery" and "Requests and replies"): an ACK of numbers never sent or going
// backwards, a duplicate in the client's numbers, a REPLY or ERROR for a request the server
// never made, an ERROR notice; and a gap in the client's numbers, which lets the transport go (its
// client resumes, and sends again what was lost). None ends the session or reaches the
// application twice, and what the server sends afterwards still arrives, and is replayed after
// a resume.
import { type Packet, PacketType } from '@parley/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Started, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

const event = (seq: number, text: string, ackId = 0): Packet => ({
  type: PacketType.EVENT,
  seq,
  name: 'say',
  args: [text],
  ackId,
})

describe.each(TRANSPORTS)('packets that do not fit the state, over %s', (transport) => {
  let started: Started
  const said: string[] = []
  const reasons: string[] = []

  beforeAll(async () => {
    started = await startServer({}, (app) => {
      app.parley.on('connection', (socket) => {
        socket.on('disconnect', (reason) => reasons.push(reason))
        socket.on('say', (text: string, ack?: (reply: string) => void) => {
          said.push(text)
          ack?.(`heard ${text}`)
        })
      })
    })
  })

  afterAll(async () => {
    await started.app.close()
  })

  it('keeps the session, delivers each event once and in order, and goes on numbering', async () => {
    const c = await rawConnect(transport, started.base)
    const socket = [...started.app.parley.sockets.values()].find((s) => s.id === c.id)!
    // One at a time: each is its own message or POST, in this order.
    const sends: Packet[] = [
      { type: PacketType.ACK, ack: 1000 },
      { type: PacketType.ACK, ack: Number.MAX_SAFE_INTEGER },
      event(1, 'one'),
      event(1, 'one again'),
      event(2, 'two', Number.MAX_SAFE_INTEGER),
      { type: PacketType.REPLY, seq: 3, ackId: 77, args: ['for nothing'] },
      { type: PacketType.ERROR, seq: 4, ackId: 78, code: 'APP_FAILED', message: 'for nothing' },
      { type: PacketType.ERROR, seq: 5, ackId: 0, code: 'APP_NOTICE', message: 'a notice' },
      { type: PacketType.ACK, ack: 0 },
      event(6, 'three', 5),
    ]
    for (const packet of sends) await c.send(packet)
    const last = await c.next((p) => p.type === PacketType.REPLY && p.ackId === 5)
    expect(said).toEqual(['one', 'two', 'three'])
    const replies = c.received.filter((p) => p.type === PacketType.REPLY)
    expect(replies).toEqual([
      { type: PacketType.REPLY, seq: 1, ackId: Number.MAX_SAFE_INTEGER, args: ['heard two'] },
      { type: PacketType.REPLY, seq: 2, ackId: 5, args: ['heard three'] },
    ])
    expect(last).toBe(replies[1])
    expect(socket.connected).toBe(true)

    // A gap (7 lost on the way): dropped, and the transport let go once nothing fills it for
    // GAP_GRACE_MS, the session kept.
    await c.send(event(8, 'after a gap'))
    await until(() => socket.transport === null, 5000, 'the transport let go')
    c.close()
    expect(socket.connected).toBe(true)

    // The server's numbers go on from its own, whatever the client acknowledged: the next one,
    // emitted while the client is away, is kept and replayed on its resume, which sends again
    // what the gap lost.
    socket.emit('news', 'missed')
    const again = await rawConnect(transport, started.base, { sid: c.sid, ack: 2 })
    try {
      expect(again.open).toMatchObject({ recovered: true, ack: 6 })
      expect(await again.next((p) => p.type === PacketType.EVENT)).toMatchObject({
        seq: 3,
        name: 'news',
        args: ['missed'],
      })
      await again.send(event(7, 'four'))
      await again.send(event(8, 'five', 9))
      await again.next((p) => p.type === PacketType.REPLY && p.ackId === 9)
      expect(said).toEqual(['one', 'two', 'three', 'four', 'five'])
      expect(reasons).toEqual([])
    } finally {
      again.close()
    }
  })
})
