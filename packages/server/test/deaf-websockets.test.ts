// WebSocket clients that never answer the server's close frame: a dead link, or a peer that
// stopped reading. ws waits 30 s for the answer before it cuts the connection, and the HTTP
// server's close waits for every connection: `app.close()` must not wait that long for them.
import { PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Directory } from './directory-adapter.js'
import { closeApp, sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { RawHttp } from './raw-http.js'
import { rawUpgradeHead } from './raw-websocket.js'

const UPGRADE = rawUpgradeHead()

/** One masked client frame (RFC 6455 5.2; payloads under 126 bytes): FIN, `opcode`, `text`. */
function clientFrame(text: string, opcode = 0x1): string {
  const payload = Buffer.from(text)
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]!)
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]).toString('latin1')
}

/** A WebSocket over a bare connection that reads everything and answers nothing, close frames neither. */
async function deafWebSocket(port: number, ...frames: string[]): Promise<RawHttp> {
  const raw = await RawHttp.open(port)
  raw.write(UPGRADE)
  await until(() => raw.received.includes('\r\n\r\n'), 3000, 'the 101')
  expect(raw.received).toMatch(/^HTTP\/1\.1 101 /)
  for (const frame of frames) raw.write(frame)
  return raw
}

/** True once `raw` received a close frame from the server (opcode 8) with status `code`. */
const closeFrameIn = (raw: RawHttp, code: number) =>
  raw.received.includes(`\x88\x02${String.fromCharCode(code >> 8, code & 0xff)}`)

let app: FastifyInstance | undefined
const raws: RawHttp[] = []
afterEach(async () => {
  for (const raw of raws.splice(0)) raw.destroy()
  await closeApp(app)
  app = undefined
})

/**
 * Fastify's pluginTimeout bounds the close hooks: Parley waits for the answers to its close
 * frames within it, leaving 1 s to the hooks after its own. At 2 s here rather than Fastify's
 * default of 10 (where the wait is Parley's own 2 s), a deaf client is cut after about 1 s: the
 * same cut, sooner, with time to spare for a polite client's answer, one round trip on loopback.
 */
const PLUGIN_TIMEOUT = 2000

/**
 * Default Fastify options but pluginTimeout: nothing of Fastify's own force closes an upgraded
 * connection. `handshakeTimeout` short only where a test waits for it: a loaded machine may
 * take longer than that to read a HELLO written at once.
 */
async function start(handshakeTimeout = 5000): Promise<number> {
  app = Fastify({ pluginTimeout: PLUGIN_TIMEOUT })
  await app.register(parley, { handshakeTimeout })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/**
 * Two nodes that find each other's sessions in a shared directory, `b` with nothing of Fastify's
 * own that force closes an upgraded connection; `resumeOnB()` opens a session on `a`, leaves it,
 * and resumes it on `b` from a deaf WebSocket (relayed to `a`, where the session is).
 */
async function twoNodes() {
  const directory = new Directory()
  const a = await startServer({ adapter: directory.adapter('a') })
  const b = await startServer({ adapter: directory.adapter('b') }, undefined, {
    forceCloseConnections: 'idle',
    pluginTimeout: PLUGIN_TIMEOUT,
  })
  async function resumeOnB(): Promise<RawHttp> {
    const first = await rawConnect('websocket', a.base)
    first.close()
    const deaf = await deafWebSocket(
      Number(new URL(b.base).port),
      clientFrame(`[8,{"sid":"${first.sid}","ack":0}]`),
    )
    raws.push(deaf)
    return deaf
  }
  return { a, b, resumeOnB }
}

/** `app.close()`, or what was still open after 10 s (ws alone would wait 30 s). */
async function closed(closing: FastifyInstance): Promise<string> {
  const outcome = await Promise.race([
    closing.close().then(() => 'closed'),
    sleep(10_000).then(() => 'still open after 10 s'),
  ])
  app = undefined
  return outcome
}

describe('a WebSocket client that never answers a close frame', () => {
  it('does not hold app.close(): it gets its CLOSE and close frame, then is cut', async () => {
    const port = await start()
    const deaf = await deafWebSocket(port, clientFrame('[8,{}]'))
    raws.push(deaf)
    await until(() => deaf.received.includes('"recovered":false'), 3000, 'the OPEN')
    // A well-behaved client beside it closes as usual.
    const polite = await rawConnect('websocket', `http://127.0.0.1:${port}/parley`)
    expect(await closed(app!)).toBe('closed')
    expect(deaf.received).toContain('"server shutdown"')
    expect(closeFrameIn(deaf, 1001)).toBe(true)
    await until(() => deaf.isClosed, 3000, 'the deaf connection cut')
    expect(polite.received.find((p) => p.type === PacketType.CLOSE)).toMatchObject({
      reason: 'server shutdown',
    })
    expect(await polite.ended).toBe(1001)
  }, 15_000)

  it.each([
    ['its handshake was refused (no HELLO first)', [clientFrame('[3]')], 1008, undefined],
    ['its handshake was refused (no HELLO in time)', [], 1008, 300],
    [
      'its session ended with its CLOSE',
      [clientFrame('[8,{}]'), clientFrame('[1,"client disconnect","bye"]')],
      1000,
      undefined,
    ],
  ])(
    'does not hold app.close() when %s',
    async (_, frames, code, handshakeTimeout) => {
      const port = await start(handshakeTimeout)
      const deaf = await deafWebSocket(port, ...frames)
      raws.push(deaf)
      await until(() => closeFrameIn(deaf, code), 3000, `the close frame ${code}`)
      expect(await closed(app!)).toBe('closed')
      await until(() => deaf.isClosed, 3000, 'the deaf connection cut')
    },
    15_000,
  )

  it('does not hold app.close() of a node that relays it to the owner of its session', async () => {
    // Two nodes that find each other's sessions in a shared directory: a resume on b is relayed
    // to a, which holds the session. Closing b closes the relay, the deaf client's side with 1001.
    const { a, b, resumeOnB } = await twoNodes()
    try {
      const deaf = await resumeOnB()
      await until(() => deaf.received.includes('"recovered":true'), 3000, 'the OPEN from a, through b')
      expect(await closed(b.app)).toBe('closed')
      expect(closeFrameIn(deaf, 1001)).toBe(true)
      await until(() => deaf.isClosed, 3000, 'the deaf connection cut')
    } finally {
      await a.app.close()
    }
  }, 15_000)

  it('does not hold app.close() of a node that was still looking its session up when it closed', async () => {
    // A resume on b of a session of a; b's lookup of its owner is held until b has closed its
    // sessions. The close waits for that lookup, then the client is told CLOSE 'server handoff'
    // with 1001, and cut when it does not answer.
    const { a, b, resumeOnB } = await twoNodes()
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    try {
      const onB = b.app.parley.adapter
      const ask = onB.sessionOwner!.bind(onB)
      let asked = false
      onB.sessionOwner = async (sid: string) => {
        asked = true
        await released
        return ask(sid)
      }
      const deaf = await resumeOnB()
      await until(() => asked, 3000, "b looking the session's owner up")
      const closing = closed(b.app)
      await until(() => b.app.parley.closed, 3000, "b's sessions closed")
      release()
      expect(await closing).toBe('closed')
      expect(deaf.received).toContain('"server handoff"')
      expect(closeFrameIn(deaf, 1001)).toBe(true)
      await until(() => deaf.isClosed, 3000, 'the deaf connection cut')
    } finally {
      release()
      await a.app.close()
    }
  }, 15_000)
})
