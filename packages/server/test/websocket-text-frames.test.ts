// The server frames its own short texts itself over WebSocket (header and UTF-8 in one write)
// and leaves longer ones to ws: every length a frame header spells differently, in ASCII and in
// multi-byte UTF-8, on both sides of that line, must reach a client that reads frames by the
// book (ws checks each frame's length and UTF-8) as the very packets the server emitted.
import { type EventPacket, PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

/** `[5,seq,"t",["` and `"],0]` around the text: 15 bytes for a one-digit seq. */
const texts: string[] = [
  // Payloads of 118 to 132 bytes: the last one-byte length (125) and the first of two (126).
  ...Array.from({ length: 15 }, (_, i) => 'a'.repeat(100 + i)),
  // The same line crossed with three-byte characters.
  ...Array.from({ length: 6 }, (_, i) => '€'.repeat(36 + i)),
  // Four-byte characters (two UTF-16 units each).
  '😀'.repeat(40),
  // Around the longest text the server frames itself (16 Ki UTF-16 units), in both directions.
  ...Array.from({ length: 5 }, (_, i) => 'b'.repeat(16 * 1024 - 2 + i)),
  '€'.repeat(16 * 1024 - 40),
  // Two-byte lengths past 65 535 bytes: eight-byte lengths (ws frames these).
  '€'.repeat(21_840),
  '€'.repeat(21_850),
  'c'.repeat(70_000),
]

describe('own texts over WebSocket', () => {
  const opened = closedAfterEach()

  it('reach the client whole, in order, at every frame length', async () => {
    opened.started = await startServer({}, (a) => {
      a.parley.on('connection', (socket) => {
        socket.on('send', () => {
          for (const text of texts) socket.emit('t', text)
        })
      })
    })
    const client = await rawConnect('websocket', opened.started.base)
    await client.send({ type: PacketType.EVENT, seq: 1, name: 'send', args: [], ackId: 0 })
    const events = () => client.received.filter((p): p is EventPacket => p.type === PacketType.EVENT)
    await until(() => events().length === texts.length, 5000, 'every text')
    expect(events().map((p) => p.args[0])).toEqual(texts)
    expect(events().map((p) => p.seq)).toEqual(texts.map((_, i) => i + 1))
    client.close()
  })
})
