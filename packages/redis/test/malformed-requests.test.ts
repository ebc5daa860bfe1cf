// What another node reads on the request channel is untrusted: a message that no node of this
// version sends is refused, logged with its code and channel, and nothing of it is run or
// answered; the node goes on to answer the next request. So is a client's reply another node
// sends back on a node's response channel after a handoff.
import { encodeText, PacketType, WireLimits } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { inbox, Nodes, redisSuite } from './nodes.js'

const OPTIONS = { r: [], x: [], v: false }

describe.skipIf(skipRedisSuites())('malformed messages on the request channel', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  it('are refused with a coded warning, none run or answered, and the next request is answered', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    b0.socket.join('r')
    const got = inbox(b0.client)
    let disconnected = false
    b0.client.on('disconnect', () => {
      disconnected = true
    })
    const junk = [
      'nope',
      '[]',
      JSON.stringify({ id: '1', k: 'fetch', o: OPTIONS }),
      JSON.stringify({ n: 'x', id: '2', k: 'fetch' }),
      JSON.stringify({ n: 'x', id: '3', k: 'disconnect', o: { r: 'r', x: [], v: false } }),
      JSON.stringify({ n: 'x', id: '4', k: 'join', o: OPTIONS, rooms: [1] }),
      JSON.stringify({ n: 'x', id: '5', k: 'launch', o: OPTIONS }),
      JSON.stringify({ n: 'x', id: '6', k: 'handoff', to: b!.adapter.node, sid: '' }),
      // Well-formed but for its event, which does not decode: refused where it would be run.
      JSON.stringify({ n: 'x', id: '7', k: 'ack', o: OPTIONS, e: 'not an event', t: 1000 }),
    ]
    // The answers a node named x would read: none of the malformed requests may have one.
    const listener = a!.redis.duplicate()
    await listener.connect()
    try {
      const answers: { id: string; k: string; s?: string[] }[] = []
      await listener.subscribe('parley:response:x', (text) => answers.push(JSON.parse(text)))
      for (const text of junk) await a!.redis.sendCommand(['PUBLISH', 'parley:request', text])
      // On the same connection, so read after the junk: its answer says the junk was read.
      const fetch = { n: 'x', id: 'ok', k: 'fetch', o: { r: ['r'], x: [], v: false } }
      await a!.redis.sendCommand(['PUBLISH', 'parley:request', JSON.stringify(fetch)])
      // Both nodes read every request: each answers this one alone.
      await until(() => answers.length === 2, 5000, 'the answers to the well-formed request')
      expect(answers.map(({ id, k }) => ({ id, k }))).toEqual([
        { id: 'ok', k: 'sockets' },
        { id: 'ok', k: 'sockets' },
      ])
      expect(answers.flatMap(({ s }) => s ?? [])).toHaveLength(1)
      expect(got).toEqual([])
      expect(disconnected).toBe(false)
      for (const node of [a!, b!]) {
        expect(node.warned[0]).toMatchObject({
          message: '@parley/redis: a message from another node was malformed and was dropped',
          details: { code: 'PARLEY_REDIS_MALFORMED', channel: 'parley:request' },
        })
      }
    } finally {
      await listener.quit()
    }
    // The close says what the interval held back: every one of them refused as malformed, none
    // failing inside the node.
    for (const node of [a!, b!]) {
      await nodes.stop(node)
      const malformed = node.warned.filter(({ details }) => details.code === 'PARLEY_REDIS_MALFORMED')
      expect(malformed.reduce((sum, { details }) => sum + Number(details.times), 0)).toBe(junk.length)
      expect(node.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
    }
  })

  it('refuses a reply sent back across a handoff that is not one, and drops one nobody awaits', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    b0.socket.join('r')
    const channel = `parley:response:${b!.adapter.node}`
    const answered = (i: unknown, p: unknown) =>
      JSON.stringify({ n: a!.adapter.node, id: '', k: 'answered', i, p })
    const event = encodeText({ type: PacketType.EVENT, seq: 1, name: 'e', args: [], ackId: 1 })
    const reply = encodeText({ type: PacketType.REPLY, seq: 1, ackId: 1, args: ['late'] })
    // Past b's maxPayload (the default): no client could have sent it to a node of the same
    // maxPayload, and b does not decode it.
    const huge = encodeText({
      type: PacketType.REPLY,
      seq: 1,
      ackId: 1,
      args: ['x'.repeat(WireLimits.defaultMaxPayload)],
    })
    const junk = [
      answered(7, reply),
      answered(b0.socket.id, 'not a packet'),
      answered(b0.socket.id, event),
      answered(b0.socket.id, huge),
    ]
    const listener = a!.redis.duplicate()
    await listener.connect()
    try {
      const answers: { id: string }[] = []
      await listener.subscribe('parley:response:x', (text) => answers.push(JSON.parse(text)))
      for (const text of junk) await a!.redis.sendCommand(['PUBLISH', channel, text])
      // Well formed, for a question b does not await (its socket never moved): dropped quietly.
      await a!.redis.sendCommand(['PUBLISH', channel, answered(b0.socket.id, reply)])
      // On the same connection, so b reads it after the rest: its answer says they were read.
      const fetch = { n: 'x', id: 'ok', k: 'fetch', o: { r: ['r'], x: [], v: false } }
      await a!.redis.sendCommand(['PUBLISH', 'parley:request', JSON.stringify(fetch)])
      await until(() => answers.length === 2, 5000, 'the answers to the well-formed request')
      expect(b0.client.connected).toBe(true)
      expect(b!.warned[0]).toMatchObject({
        message: '@parley/redis: a message from another node was malformed and was dropped',
        details: { code: 'PARLEY_REDIS_MALFORMED', channel },
      })
    } finally {
      await listener.quit()
    }
    await nodes.stop(b!)
    const malformed = b!.warned.filter(({ details }) => details.code === 'PARLEY_REDIS_MALFORMED')
    expect(malformed.reduce((sum, { details }) => sum + Number(details.times), 0)).toBe(junk.length)
    expect(b!.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })
})
