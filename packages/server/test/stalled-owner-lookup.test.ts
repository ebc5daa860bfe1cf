// A request for a session of another node waits for its adapter to name that node, at most
// `connectTimeout`. An answer that came in time, read only after a stall of this node's thread
// past that bound, must send the request on to the owner: Node runs the bound, run out
// meanwhile, before it reads the answer, unless the bound's verdict waits for it. The answer
// comes here on a loopback connection open before the stall, as the adapter's store connection
// is; it is written just before the stall begins.
import type { SessionOwnerAnswer } from '@parley/server'
import type { FastifyBaseLogger } from 'fastify'
import { afterEach, expect, it } from 'vitest'
import type { Adapter } from '../src/adapter/adapter.js'
import { OwnerLookup } from '../src/http/owner-lookup.js'
import { within } from './helpers.js'
import { loopbackInput, stallFromCheckPhase } from './stall.js'
import { MUTE } from './stall-gate.js'

/** The lookup's bound: the stall runs well past it. */
const CONNECT_TIMEOUT = 100
const STALL_MS = CONNECT_TIMEOUT + 500

const closers: (() => void)[] = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

it("sends a request to the owner its adapter named in time, read after a stall past the lookup's bound", async () => {
  let answer: ((owner: SessionOwnerAnswer) => void) | undefined
  const link = await loopbackInput(() => answer?.({ node: 'b', url: 'http://127.0.0.1:9' }))
  closers.push(link.close)
  const failed: unknown[] = []
  const log = { warn: (...args: unknown[]) => failed.push(args) } as unknown as FastifyBaseLogger
  const adapter = {
    sessionOwner: () =>
      new Promise<SessionOwnerAnswer>((resolve) => {
        answer = resolve
      }),
  } as unknown as Adapter
  const lookup = new OwnerLookup({ adapter, log, connectTimeout: CONNECT_TIMEOUT, noOtherNode: () => {} })
  const owner = lookup.ownerOf('sid-elsewhere', { headers: {} }, 'http', false)
  link.write('owner')
  await within(
    stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS),
    3000,
    'the stall',
  )
  // Given up at the bound first, the request would be answered here: undefined, the lookup failed.
  expect(await within(owner, 3000, 'the lookup')).toEqual({ node: 'b', url: 'http://127.0.0.1:9' })
})
