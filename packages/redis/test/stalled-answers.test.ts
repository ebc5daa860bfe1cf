// A stall of a node's own event loop (a long synchronous task, a major GC, a debugger's pause)
// past requestTimeout, while another node's answer to its cluster query, or its count for its
// broadcast with acks, is on its way: Node runs the bound's timer, run out meanwhile, before it
// reads that answer. The verdict waits one turn of the event loop, and one is enough here: the
// answer comes on this node's subscriber connection, open long before the stall, which the poll
// phase of that turn reads before its check phase runs the verdict. (Two turns are for requests
// on connections accepted during a stall, which a node's Redis connections never are.) The node
// runs in this thread, which the test blocks; the other node answers from a thread of its own
// (stall-answer-worker.ts), held by the gate of stall-gate.ts until the stall has begun.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { HOLD } from '../../server/test/stall-gate.js'
import { packValue } from '../src/wire.js'
import { haunt } from './ghost-node.js'
import { to } from './handoff-support.js'
import { Nodes, redisSuite, type TestNode } from './nodes.js'
import { rawRedisEach } from './raw-redis.js'

const REQUEST_TIMEOUT = 500
/** The stall: past requestTimeout, whose verdict falls in it. */
const STALL_MS = REQUEST_TIMEOUT + 1000
/** The other node, live in the index, whose answers come from the worker. */
const OTHER = 'other'

const entry = fileURLToPath(new URL('./stall-answer-worker.ts', import.meta.url))

describe.skipIf(skipRedisSuites())("another node's answer that came while this node's thread stalled", () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const raw = rawRedisEach(() => suite.redis.url)
  const closers: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const close of closers.splice(0)) await close()
  })

  /**
   * Node `a` with `OTHER` live beside it, answering requests of `kind` with `answer` once the
   * stall has begun; `stalled` resolves once `a`'s request reached it and the stall after it ended.
   */
  async function scene(
    prefix: string,
    kind: string,
    answer: Record<string, unknown> | Record<string, unknown>[],
  ) {
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { requestTimeout: REQUEST_TIMEOUT, prefix })
    const gate = new Int32Array(new SharedArrayBuffer(8))
    Atomics.store(gate, 0, HOLD)
    const worker = new Worker(await compiledScript(entry), {
      workerData: { url: suite.redis.url, prefix, node: OTHER, kind, answer, gate },
    })
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    closers.push(async () => {
      worker.postMessage('close')
      await within(exited, 5000, 'the answering thread to exit').catch(() => worker.terminate())
    })
    let subscribed = false
    worker.on('message', (message: { subscribed?: true }) => {
      if (message.subscribed) subscribed = true
    })
    await until(() => subscribed, 5000, 'the other node to subscribe')
    await haunt(await raw(), prefix, OTHER)
    await until(() => a.adapter.liveNodes.includes(OTHER), 5000, 'the other node live')
    // The stall begins once Redis answered `a`'s PUBLISH of the request, in that turn: the bound
    // of a count runs from then, a query's from just before; either ends in the stall however
    // slow the machine, and the other node, which has the request by then, answers in it.
    let stalled: Promise<boolean> | undefined
    const sendCommand = a.redis.sendCommand.bind(a.redis)
    const spy = vi.spyOn(a.redis, 'sendCommand').mockImplementation((...args) => {
      const sent = sendCommand(...args)
      const [command, channel] = args[0]
      if (stalled === undefined && command === 'PUBLISH' && channel === `${prefix}:request`)
        stalled = sent.then(() => stallFromCheckPhase(gate, HOLD, STALL_MS))
      return sent
    })
    closers.push(async () => spy.mockRestore())
    return {
      a,
      stalled: async () => {
        await until(() => stalled !== undefined, 3000, 'the request sent')
        return within(stalled!, 4000, 'the stall')
      },
    }
  }

  const short = (a: TestNode) => ({
    incompleteRequests: a.adapter.stats.incompleteRequests,
    warnings: a.warnings,
  })

  it('takes the answer to a cluster query, not a timeout', async () => {
    const { a, stalled } = await scene('stallq', 'join', { k: 'done' })
    const joined = a.adapter.addSockets(to(), ['room'])
    expect(await stalled()).toBe(true)
    await within(joined, 3000, 'the query')
    expect(short(a)).toEqual({ incompleteRequests: 0, warnings: [] })
  }, 22_000)

  it('takes the count for a broadcast with acks, not a count late', async () => {
    const { a, stalled } = await scene('stalla', 'ack', { k: 'count', c: 0 })
    // The sender's own timeout far past the stall: requestTimeout alone bounds the count.
    const replies = a.app.parley.timeout(20_000).emitWithAck('vote')
    expect(await stalled()).toBe(true)
    expect(await within(replies, 3000, 'the replies')).toEqual([])
    expect(short(a)).toEqual({ incompleteRequests: 0, warnings: [] })
  }, 22_000)

  it("takes another node's word that it handed a session off, not the wait's bound", async () => {
    // The other node (of no known version, so not asked to say it got the request first) is
    // given twice requestTimeout: the stall runs past it.
    const { a, stalled } = await scene('stallh', 'handoff', { k: 'handoff', ok: true })
    const handedOff = a.adapter.requestHandOff(OTHER, 'sid-stalled-handoff')
    expect(await stalled()).toBe(true)
    expect(await within(handedOff, 3000, 'the handoff asked')).toBe(true)
  }, 22_000)

  it("takes another node's reply to a broadcast with acks, not the caller's own timeout", async () => {
    const { a, stalled } = await scene('stallr', 'ack', [
      { k: 'count', c: 1 },
      { k: 'reply', ok: true, v: packValue('yes') },
    ])
    // The caller's timeout, as short as requestTimeout: the stall runs past both.
    const replies = a.app.parley.timeout(REQUEST_TIMEOUT).emitWithAck('vote')
    expect(await stalled()).toBe(true)
    expect(await within(replies, 3000, 'the replies')).toEqual(['yes'])
    expect(short(a)).toEqual({ incompleteRequests: 0, warnings: [] })
  }, 22_000)
})
