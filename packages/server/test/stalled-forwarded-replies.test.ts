// A reply to a question of a session that moved on, sent back by the node that took it over in
// time, read only after a stall of this node's thread past the bound on those waits (the handoff
// timeout, see forwarded-replies.ts): Node runs the bound, run out meanwhile, before it reads the
// reply, unless the bound's verdict waits for it. The reply comes here on a loopback connection
// open before the stall, as the adapter's are; it is written just before the stall begins.
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { AckTable, PacketType, type ParleyError, type WireValue } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { ForwardedReplies } from '../src/forwarded-replies.js'
import { until, within } from './helpers.js'
import { stallFromCheckPhase } from './stall.js'
import { MUTE } from './stall-gate.js'

/** The bound on the waits: the stall runs well past it. */
const BOUND_MS = 100
const STALL_MS = BOUND_MS + 500

const closers: (() => void)[] = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** A loopback connection: the end that writes, and the one that reads, whose data runs `heard`. */
async function loopback(heard: () => void): Promise<Socket> {
  let open = false
  const server: Server = createServer((accepted) => {
    open = true
    accepted.on('data', heard)
    closers.push(() => accepted.destroy())
  })
  closers.push(() => server.close())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const writer = createConnection(address.port, '127.0.0.1')
  closers.push(() => writer.destroy())
  await within(new Promise((resolve) => writer.once('connect', resolve)), 3000, 'the connection')
  // Accepted too before the stall: the reply is read on a connection open before it.
  await until(() => open, 3000, 'the connection accepted')
  return writer
}

it('settles a question with the reply sent back in time, read after a stall past the bound', async () => {
  const replies = new ForwardedReplies(BOUND_MS)
  const table = new AckTable(10)
  const ended: string[] = []
  const id = table.register(
    (error: ParleyError<string> | null, args: WireValue[]) =>
      void ended.push(error ? error.code : String(args[0])),
  )
  const writer = await loopback(() => {
    replies.settle('s1', { type: PacketType.REPLY, seq: 3, ackId: id, args: ['yes'] })
  })
  replies.keep('s1', table)
  writer.write('reply')
  await within(
    stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS),
    3000,
    'the stall',
  )
  await until(() => ended.length > 0, 3000, 'the wait ended')
  // Ended at the bound first, it would be PARLEY_SESSION_MOVED.
  expect(ended).toEqual(['yes'])
})
