// A session nobody claimed is sealed once its adapter settled what it still owes it
// (`settleHandOff`, waited for at most `SETTLE_WAIT_MS`): the last packets are taken after that,
// so that what the settle delivers goes before them. A settle that ended in time, read only after
// a stall of this node's thread past that bound, must still come first: Node runs the bound, run
// out meanwhile, before it reads what ends the settle, unless the bound's verdict waits for it.
// What ends it comes here on a loopback connection open before the stall, as the adapter's
// subscriber is; it is written just before the stall begins.
import { afterEach, expect, it } from 'vitest'
import type { Adapter } from '../src/adapter/adapter.js'
import { SETTLE_WAIT_MS, sealUnclaimed } from '../src/drain.js'
import { within } from './helpers.js'
import { loopbackInput, stallFromCheckPhase } from './stall.js'
import { MUTE } from './stall-gate.js'

/** The stall: well past the settle's bound. */
const STALL_MS = SETTLE_WAIT_MS + 500

const closers: (() => void)[] = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

it('takes the last packets after a settle that ended in time, read after a stall past its bound', async () => {
  const steps: string[] = []
  let settle: (() => void) | undefined
  const link = await loopbackInput(() => {
    steps.push('settled')
    settle?.()
  })
  closers.push(link.close)
  const adapter = {
    settleHandOff: () =>
      new Promise<void>((resolve) => {
        settle = resolve
      }),
    sealHandOff: (_sid: string, packets: string[]) => {
      steps.push(`sealed ${packets.join()}`)
      return Promise.resolve(true)
    },
  } as unknown as Adapter
  const sealed = sealUnclaimed(adapter, 'sid-unclaimed', true, () => {
    steps.push('last')
    return ['p']
  })
  link.write('settled')
  await within(
    stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS),
    3000,
    'the stall',
  )
  await within(sealed, 3000, 'the seal')
  // Taken at the bound first, the last packets would leave out what the settle delivered:
  // ['last', 'sealed p', 'settled'].
  expect(steps).toEqual(['settled', 'last', 'sealed p'])
})
