// A WebSocket resume of a session another node holds looks that node up (`Adapter.sessionOwner`),
// then asks it to hand the session over (`Adapter.requestHandOff`) before it relays anything.
// Should the node it reached close while it waits for either answer, its close waits for that
// answer, then the WebSocket is told CLOSE 'server handoff' and closed with 1001 (as in
// lookup-across-close.test.ts in @parley/redis, with Redis and the real client), and its client
// resumes through another node with its quiet time, where a bare close would fail its transport.
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

/** Where b holds the WebSocket's resume: looking its session's owner up, or asking that node for it. */
const stages = [
  ['looks its session up', 'sessionOwner'],
  ["asks the session's node for it", 'requestHandOff'],
] as const

it.each(stages)(
  'tells a WebSocket resume CLOSE server handoff, then 1001, when its node closed while it %s',
  async (_what, held) => {
    const cluster = new Cluster({ handoff: true })
    const a = await startServer({ adapter: cluster.adapter('a') })
    apps.push(a.app)
    const b = await startServer({ adapter: cluster.adapter('b') })
    apps.push(b.app)
    const onA = await rawConnect('polling', a.base)
    raws.push(onA)
    // b's call goes unanswered until `answer`: then as the adapter answers it.
    let asked = false
    let answer: () => void = () => {}
    const answered = new Promise<void>((resolve) => {
      answer = resolve
    })
    const onB: Pick<Adapter, 'sessionOwner' | 'requestHandOff'> = b.app.parley.adapter
    const call = onB[held]!.bind(onB) as (...args: unknown[]) => Promise<unknown>
    Object.assign(onB, {
      [held]: async (...args: unknown[]) => {
        asked = true
        await answered
        return call(...args)
      },
    })

    const ws = new WebSocket(`${b.base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
    const got: Packet[] = []
    ws.on('message', (data) => {
      const decoded = decodeText(String(data))
      if (decoded.ok) got.push(decoded.packet)
    })
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
    ws.once('open', () => ws.send(encodeText({ type: PacketType.HELLO, sid: onA.sid })))
    try {
      await until(() => asked, 3000, `b's ${held} for the session`)
      const closing = b.app.close()
      await until(() => b.app.parley.closed, 3000, 'b closed')
      answer()
      expect(await within(closed, 5000, 'the WebSocket closed')).toBe(1001)
      await within(closing, 5000, "b's close")
    } finally {
      answer()
      ws.terminate()
    }
    expect(got).toMatchObject([{ type: PacketType.CLOSE, reason: CloseReason.SERVER_HANDOFF }])
  },
)
