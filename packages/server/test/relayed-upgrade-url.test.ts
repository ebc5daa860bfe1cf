// The URL of a WebSocket upgrade, as its client wrote it, goes on to the session's node when
// this node relays the resume there. Node's parser takes a `#` in it (a fragment, which no
// browser sends but any client may write), where the ws client refuses a URL with a fragment,
// and a target in absolute form, which put after the owner's host is no URL: the relay must
// still reach the owner, which reads the query this node read.
import { Writable } from 'node:stream'
import type { ServerSocket } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { RawHttp } from './raw-http.js'
import { rawUpgradeHead } from './raw-websocket.js'

/** One masked client frame (RFC 6455 5.2; payloads under 126 bytes): FIN, text. */
function clientFrame(text: string): string {
  const payload = Buffer.from(text)
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]!)
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]).toString('latin1')
}

let nodes: Started[] = []
const raws: RawHttp[] = []
afterEach(async () => {
  for (const raw of raws.splice(0)) raw.destroy()
  await Promise.all(nodes.map((node) => closeApp(node.app)))
  nodes = []
})

/** A log line: its level (50 for error) and message. */
type Line = { level: number; msg: string }

/** The query of each request to the WebSocket endpoint that `app` received. */
function keepQueries(app: FastifyInstance): unknown[] {
  const queries: unknown[] = []
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.url === '/parley/ws') queries.push({ ...(request.query as object) })
  })
  return queries
}

/**
 * Node `a`, which holds the sessions, and `b`, which relays their resumes to it; `b`'s log lines
 * from warn up, and the queries each read, kept.
 */
async function twoNodes() {
  const directory = new Directory()
  const onA: ServerSocket[] = []
  let queriesOfA: unknown[] = []
  let queriesOfB: unknown[] = []
  const a = await startServer({ adapter: directory.adapter('a') }, (app) => {
    app.parley.on('connection', (socket) => onA.push(socket))
    queriesOfA = keepQueries(app)
  })
  nodes.push(a)
  const lines: Line[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Line)
      done()
    },
  })
  const b = await startServer(
    { adapter: directory.adapter('b') },
    (app) => {
      queriesOfB = keepQueries(app)
    },
    { logger: { level: 'warn', stream } },
  )
  nodes.push(b)
  return { a, b, onA, lines, queriesOfA, queriesOfB }
}

describe('a WebSocket resume relayed to its session’s node', () => {
  it.each([
    ['a fragment after the query', '/parley/ws?v=1&#frag'],
    ['a fragment in the query', '/parley/ws?x#y&v=1'],
    ['a fragment before the query', '/parley/ws#&v=1'],
    ['its absolute form (RFC 9112 3.2.2)', 'http://127.0.0.1/parley/ws?v=1'],
  ])('reaches the owner from an upgrade URL with %s', async (_, target) => {
    const { a, b, onA, lines, queriesOfA, queriesOfB } = await twoNodes()
    const first = await rawConnect('websocket', a.base)
    first.close()
    await until(() => onA.length === 1, 3000, 'the session on a')

    const raw = await RawHttp.open(Number(new URL(b.base).port))
    raws.push(raw)
    raw.write(rawUpgradeHead(target))
    await until(() => raw.received.includes('\r\n\r\n'), 3000, 'the 101')
    expect(raw.received).toMatch(/^HTTP\/1\.1 101 /)
    raw.write(clientFrame(`[8,{"sid":"${first.sid}","ack":0}]`))
    await until(() => raw.received.includes('"recovered"') || raw.isClosed, 3000, 'the OPEN from a')
    expect(raw.received).toContain(`"sid":"${first.sid}"`)
    expect(raw.received).toContain('"recovered":true')
    expect(b.app.parley.socketsCount).toBe(0)
    expect(lines.filter((line) => line.level >= 50)).toEqual([])
    // The first upgrade to a opened the session; the second is the relay.
    expect(queriesOfA).toHaveLength(2)
    expect(queriesOfA[1]).toEqual(queriesOfB[0])
  })
})
