// Requests and resumes naming a session this node does not know are counted and logged, so that
// a load balancer without session affinity shows in the logs.
import { Writable } from 'node:stream'
import { encodeText, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
const UNKNOWN = 'V1StGXR8_Z5jdHi6B-myT'

let app: FastifyInstance | undefined
const clients: RawClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await closeApp(app)
  app = undefined
})

/** A server whose log lines (at warn and above) the test reads. */
async function serveWithLog() {
  const lines: { level: number; msg: string; count?: number; total?: number; example?: string }[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)))
      done()
    },
  })
  app = Fastify({ forceCloseConnections: true, logger: { level: 'warn', stream } })
  await app.register(parley)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  return { app, lines, base: `http://127.0.0.1:${address.port}/parley` }
}

const unknownLines = <Line extends { msg: string }>(lines: Line[]) =>
  lines.filter((l) => l.msg.includes('does not know'))

it('counts a goodbye another node sent on here for a session this node does not hold', async () => {
  const { app, base } = await serveWithLog()
  const goodbye = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
  const post = await fetch(`${base}/poll?v=1&sid=${UNKNOWN}`, {
    method: 'POST',
    headers: { 'x-parley-routed': 'goodbye-on' },
    body: goodbye,
  })
  expect([post.status, ((await post.json()) as { code: string }).code]).toEqual([
    400,
    'PARLEY_UNKNOWN_SESSION',
  ])
  expect(app.parley.unknownSessionCount).toBe(1)
})

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('counts requests and resumes naming an unknown session, and logs one line with a sid prefix', async () => {
    const { app, lines, base } = await serveWithLog()
    const resumed = await rawConnect(transport, base, { sid: UNKNOWN, ack: 0 })
    clients.push(resumed)
    expect(resumed.open.recovered).toBe(false)
    let expected = 1
    if (transport !== 'websocket') {
      const url = `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${UNKNOWN}`
      const get = await fetch(url)
      await get.arrayBuffer()
      expect(get.status).toBe(400)
      const post = await fetch(url, { method: 'POST', body: JSON.stringify([PacketType.PONG]) })
      await post.arrayBuffer()
      expect(post.status).toBe(400)
      expected += 2
    }
    expect(app.parley.unknownSessionCount).toBe(expected)
    await until(() => unknownLines(lines).length === 1, 3000, 'the log line')
    const [line] = unknownLines(lines)
    expect(line).toMatchObject({ level: 40, count: 1, example: 'V1StGX…' })
    // One line per 10 s at most, and never the whole sid.
    expect(unknownLines(lines)).toHaveLength(1)
    expect(JSON.stringify(lines)).not.toContain(UNKNOWN)
  })

  it('logs the rest of a burst when the server closes', async () => {
    const { app, lines, base } = await serveWithLog()
    for (let i = 0; i < 3; i++) {
      clients.push(await rawConnect(transport, base, { sid: UNKNOWN, ack: 0 }))
    }
    await until(() => unknownLines(lines).length === 1, 3000, 'the first line')
    for (const c of clients.splice(0)) c.close()
    await app.close()
    expect(unknownLines(lines).map((l) => [l.count, l.total])).toEqual([
      [1, 1],
      [2, 3],
    ])
  })

  it('does not count a session it knows, alive, nor a resume answered with the CLOSE of one lately ended', async () => {
    const { app, base } = await serveWithLog()
    const c = await rawConnect(transport, base)
    clients.push(c)
    expect(app.parley.unknownSessionCount).toBe(0)
    const [socket] = [...app.parley.sockets.values()]
    socket!.disconnect()
    // A polling client's GET after the CLOSE is answered 400, and counted: over before the resume.
    await within(c.ended, 3000, 'the client to stop')
    const before = app.parley.unknownSessionCount
    await expect(rawConnect(transport, base, { sid: c.sid, ack: 0 })).rejects.toThrow(/server disconnect/)
    expect(app.parley.unknownSessionCount - before).toBe(0)
  })
})
