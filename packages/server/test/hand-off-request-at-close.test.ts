// A WebSocket resume of a session another node holds asks that node to hand the session over
// (`Adapter.requestHandOff`) before it relays anything. Should the node it reached close while it
// waits for that answer, the WebSocket is told CLOSE 'server handoff' once the answer is in, as
// one still looking its session's owner up is (see lookup-across-close.test.ts in @parley/redis),
// and its client resumes through another node with its quiet time, where a bare close would fail
// its transport.
import {
  CloseReason,
  decodeText,
  encodeText,
  type Packet,
  PacketType,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import type { Adapter } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { Cluster } from './cluster-adapter.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const apps: FastifyInstance[] = []
const raws: RawClient[] = []
afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close()
  for (const app of apps.splice(0)) await closeApp(app)
})

it("tells a WebSocket resume CLOSE server handoff when its node closed while it asked the session's node for it", async () => {
  const cluster = new Cluster({ handoff: true })
  const a = await startServer({ adapter: cluster.adapter('a') })
  apps.push(a.app)
  const b = await startServer({ adapter: cluster.adapter('b') })
  apps.push(b.app)
  const onA = await rawConnect('polling', a.base)
  raws.push(onA)
  // b's request for the session goes unanswered until `answer`.
  let asked = false
  let answer: (stored: boolean) => void = () => {}
  const answered = new Promise<boolean>((resolve) => {
    answer = resolve
  })
  const onB: Pick<Adapter, 'requestHandOff'> = b.app.parley.adapter
  onB.requestHandOff = async () => {
    asked = true
    return answered
  }

  const ws = new WebSocket(`${b.base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
  const got: Packet[] = []
  ws.on('message', (data) => {
    const decoded = decodeText(String(data))
    if (decoded.ok) got.push(decoded.packet)
  })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  ws.once('open', () => ws.send(encodeText({ type: PacketType.HELLO, sid: onA.sid })))
  try {
    await until(() => asked, 3000, 'b asking a for the session')
    const closing = b.app.close()
    await until(() => b.app.parley.closed, 3000, 'b closed')
    answer(false)
    expect(await within(closed, 5000, 'the WebSocket closed')).toBe(1001)
    await within(closing, 5000, "b's close")
  } finally {
    answer(false)
    ws.terminate()
  }
  expect(got).toMatchObject([{ type: PacketType.CLOSE, reason: CloseReason.SERVER_HANDOFF }])
})
