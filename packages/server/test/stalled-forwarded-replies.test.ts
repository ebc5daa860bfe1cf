// A reply to a question of a session that moved on, sent back by the node that took it over in
// time, read only after a stall of this node's thread past the bound on those waits (the handoff
// timeout, see forwarded-replies.ts): Node runs the bound, run out meanwhile, before it reads the
// reply, unless the bound's verdict waits for it. The reply comes here on a loopback connection
// open before the stall, as the adapter's are; it is written just before the stall begins.
import { AckTable, PacketType, type ParleyError, type WireValue } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { ForwardedReplies } from '../src/forwarded-replies.js'
import { until, within } from './helpers.js'
import { loopbackInput, stallFromCheckPhase } from './stall.js'
import { MUTE } from './stall-gate.js'

/** The bound on the waits: the stall runs well past it. */
const BOUND_MS = 100
const STALL_MS = BOUND_MS + 500

const closers: (() => void)[] = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

it('settles a question with the reply sent back in time, read after a stall past the bound', async () => {
  const replies = new ForwardedReplies(BOUND_MS)
  const table = new AckTable(10)
  const ended: string[] = []
  const id = table.register(
    (error: ParleyError<string> | null, args: WireValue[]) =>
      void ended.push(error ? error.code : String(args[0])),
  )
  const link = await loopbackInput(() => {
    replies.settle('s1', { type: PacketType.REPLY, seq: 3, ackId: id, args: ['yes'] })
  })
  closers.push(link.close)
  replies.keep('s1', table)
  link.write('reply')
  await within(
    stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS),
    3000,
    'the stall',
  )
  await until(() => ended.length > 0, 3000, 'the wait ended')
  // Ended at the bound first, it would be PARLEY_SESSION_MOVED.
  expect(ended).toEqual(['yes'])
})
