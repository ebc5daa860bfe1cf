// What a polling answer carries when broadcast copies wait beside packets of the session's own:
// the copies wait as they are and become their lines only when an answer goes.
import { CloseReason, PacketType, prepareEvent } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { response } from '../../test/fake-response.js'
import { PollingTransport } from './polling.js'
import { keptAsUtf8, outgoing, preparedOutgoing } from './transport.js'

const utf8Bytes = (text: string) => Buffer.byteLength(text)
const bigEvent = (seq: number, text: string) =>
  outgoing({ type: PacketType.EVENT, seq, name: 'big', args: [text], ackId: 0 })

describe('a polling transport with broadcast copies waiting', () => {
  const news = prepareEvent('news', ['é€😀 hello', { n: 1 }])
  const own = outgoing({ type: PacketType.EVENT, seq: 3, name: 'own', args: ['ü'], ackId: 0 })
  const copies = [preparedOutgoing(news, 1, 0), preparedOutgoing(news, 2, 0)]
  const withReply = preparedOutgoing(news, 4, 7)
  const lines = [copies[0]!.text, copies[1]!.text, own.text, withReply.text]

  it('answers the next GET with every line, in order, and counts their UTF-8 bytes', () => {
    const transport = new PollingTransport(1e6)
    for (const out of [...copies, own, withReply]) transport.send(out)
    expect(transport.bufferedAmount).toBe(lines.reduce((sum, line) => sum + utf8Bytes(line) + 1, 0))

    const get = response()
    transport.http.downstream(get, {})
    expect(get.body).toBe(lines.join('\n'))
    expect(transport.bufferedAmount).toBe(0)
  })

  it('stops an answer at maxBody by the copies’ UTF-8 size, not their length in characters', () => {
    const euros = prepareEvent('news', ['€'.repeat(30)])
    // Room for two copies in bytes; in characters (three bytes each) a third would fit as well.
    const copy = euros.text(1, 0)
    const maxBody = 2 * (utf8Bytes(copy) + 1) + 2
    expect(3 * (copy.length + 1)).toBeLessThanOrEqual(maxBody)
    const transport = new PollingTransport(maxBody)
    for (let seq = 1; seq <= 3; seq++) transport.send(preparedOutgoing(euros, seq, 0))

    const first = response()
    transport.http.downstream(first, {})
    expect(first.body).toBe([euros.text(1, 0), euros.text(2, 0)].join('\n'))
    const second = response()
    transport.http.downstream(second, {})
    expect(second.body).toBe(euros.text(3, 0))
  })

  it('splits a mixed queue at maxBody without losing or reordering a packet', () => {
    const file = prepareEvent('file', [new Uint8Array([1, 2, 3])])
    const mixed = [
      copies[0]!,
      own,
      preparedOutgoing(file, 5, 0),
      keptAsUtf8(bigEvent(6, 'ß'.repeat(300)).text),
      withReply,
      copies[1]!,
    ]
    const sizes = mixed.map((out) => utf8Bytes(out.text) + 1)
    // Each answer has room for any one packet and for no two of the larger ones.
    const transport = new PollingTransport(Math.max(...sizes) + 10)
    for (const out of mixed) transport.send(out)
    expect(transport.bufferedAmount).toBe(sizes.reduce((a, b) => a + b, 0))

    const answered: string[] = []
    let gets = 0
    for (; gets < mixed.length && transport.bufferedAmount > 0; gets++) {
      const get = response()
      transport.http.downstream(get, {})
      answered.push(...String(get.body).split('\n'))
    }
    expect(gets).toBeGreaterThan(2)
    expect(answered).toEqual(mixed.map((out) => out.text))
    expect(transport.bufferedAmount).toBe(0)
  })

  it('writes a long packet kept as UTF-8 as its text', () => {
    const text = bigEvent(1, 'ß'.repeat(20_000)).text
    const transport = new PollingTransport(1e6)
    transport.send(keptAsUtf8(text))
    expect(transport.bufferedAmount).toBe(utf8Bytes(text) + 1)
    const get = response()
    transport.http.downstream(get, {})
    expect(get.body).toBe(text)
  })

  it('builds a long answer as bytes: copies, kept-as-UTF-8 and own packets, in order', () => {
    const big = bigEvent(5, '€'.repeat(12_000))
    const long = [copies[0]!, big, own, keptAsUtf8(big.text), copies[1]!, withReply]
    const transport = new PollingTransport(1e6)
    for (const out of long) transport.send(out)
    const bytes = transport.bufferedAmount
    expect(bytes).toBeGreaterThan(64 * 1024)

    const get = response()
    transport.http.downstream(get, {})
    expect(get.ended).toBeInstanceOf(Buffer)
    // Every packet's bytes, a newline between each two: the sizes counted, less the last newline.
    expect((get.ended as Buffer).length).toBe(bytes - 1)
    expect(get.body).toBe(long.map((out) => out.text).join('\n'))
  })

  it('answers a short poll as one string', () => {
    const transport = new PollingTransport(1e6)
    for (const out of [...copies, own]) transport.send(out)
    const get = response()
    transport.http.downstream(get, {})
    expect(get.ended).toBe([copies[0]!.text, copies[1]!.text, own.text].join('\n'))
  })

  it('keeps only the CLOSE for the next GET when the client stopped polling', () => {
    const transport = new PollingTransport(1e6)
    for (const out of copies) transport.send(out)
    const close = outgoing({ type: PacketType.CLOSE, reason: CloseReason.SERVER_SHUTDOWN, message: 'bye' })
    transport.send(close)
    transport.close('overflow')
    expect(transport.lingering).toBe(true)

    const late = response()
    transport.http.serveLast(late, {})
    expect(late.body).toBe(close.text)
  })

  it('tells its owner what an answer the client never read carried, up to where it stopped', () => {
    const event = (seq: number, text = 'x') =>
      outgoing({ type: PacketType.EVENT, seq, name: 'e', args: [text], ackId: 0 })
    const volatile = event(0, 'v')
    const numbered = [1, 2, 3].map((seq) => event(seq, 'y'.repeat(100)))
    // Room for two of the numbered ones (and the volatile one between them), not three.
    const transport = new PollingTransport(2 * (numbered[0]!.text.length + 1) + volatile.text.length + 1)
    const missed: [number, number][] = []
    transport.bind({
      transportPacket: () => {},
      transportInvalid: () => {},
      transportLost: () => {},
      transportMissed: (_, after, through) => {
        missed.push([after, through])
        for (let seq = after + 1; seq <= through; seq++) transport.send(numbered[seq - 1]!, seq)
      },
    })
    transport.send(numbered[0]!, 1)
    transport.send(volatile)
    transport.send(numbered[1]!, 2)
    transport.send(numbered[2]!, 3)
    const lost = response()
    transport.http.downstream(lost, {}, 0)
    expect(lost.body).toBe([numbered[0]!.text, volatile.text, numbered[1]!.text].join('\n'))
    // The next GET says the client has nothing: what the lost answer carried goes again, first.
    const again = response()
    transport.http.downstream(again, {}, 0)
    expect(missed).toEqual([[0, 2]])
    expect(again.body).toBe([numbered[0]!.text, numbered[1]!.text].join('\n'))
    const rest = response()
    transport.http.downstream(rest, {}, 2)
    expect(rest.body).toBe(numbered[2]!.text)
    // Read: an ack that covers the answers asks for nothing.
    transport.http.downstream(response(), {}, 3)
    expect(missed).toEqual([[0, 2]])
  })
})

describe('a polling transport with an ACK kept for the next answer', () => {
  const ack = (n: number) => outgoing({ type: PacketType.ACK, ack: n }).text
  const ping = outgoing({ type: PacketType.PING })

  it('answers no GET for it alone, and puts it first in the next answer', () => {
    const transport = new PollingTransport(1e6)
    const get = response()
    transport.http.downstream(get, {})
    transport.ackWithNext(3)
    transport.ackWithNext(4)
    expect(get.writableEnded).toBe(false)
    transport.send(ping)
    transport.flushScheduled()
    expect(get.body).toBe([ack(4), ping.text].join('\n'))
    expect(transport.bufferedAmount).toBe(0)
  })

  it('gives way to an ACK sent as any packet, which is newer', () => {
    const transport = new PollingTransport(1e6)
    transport.ackWithNext(4)
    transport.send(outgoing({ type: PacketType.ACK, ack: 6 }))
    const get = response()
    transport.http.downstream(get, {})
    expect(get.body).toBe(ack(6))
  })

  it('is the last ACK a client that stopped polling gets before the CLOSE', () => {
    const transport = new PollingTransport(1e6)
    transport.ackWithNext(5)
    transport.send(ping)
    const close = outgoing({ type: PacketType.CLOSE, reason: CloseReason.SERVER_SHUTDOWN, message: '' })
    transport.send(close)
    transport.close('overflow')
    const get = response()
    transport.http.serveLast(get, {})
    expect(get.body).toBe([ack(5), close.text].join('\n'))
  })
})
