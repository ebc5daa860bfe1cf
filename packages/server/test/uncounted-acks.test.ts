// An adapter of the application's that never gives the count of a broadcast with acks (a node
// of its own that did not answer, a bug): the sender still hears at its timeout, with the
// replies that came, and is told that the adapter gave no count, never a negative number of
// sockets. The built-in adapters always count.
import { connect } from '@parley/client'
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { type AdapterFactory, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'

const opened = closedAfterEach()

/**
 * What `emitWithAck('ask')` at a 300 ms timeout fails with, on a server with `adapter` and a
 * WebSocket client for each of `answers`, which replies it (or never, for `undefined`).
 */
async function askedAtTimeout(adapter: AdapterFactory, answers: (string | undefined)[]) {
  const started = await startServer({ adapter })
  opened.started = started
  const parley = started.app.parley
  let connected = 0
  parley.on('connection', () => connected++)
  for (const answer of answers) {
    const client = connect(started.base, { transports: ['websocket'], reconnection: false })
    opened.parleyClients.push(client)
    client.on('ask', (_value: unknown, ack: (reply: string) => void) => {
      if (answer !== undefined) ack(answer)
    })
  }
  await until(() => connected === answers.length, 3000, `${answers.length} clients`)
  return within(
    parley
      .timeout(300)
      .emitWithAck('ask', 1)
      .then(
        () => undefined,
        (err: ParleyError<string>) => err,
      ),
    5000,
    'the answer at the timeout',
  )
}

/** A memory adapter whose broadcasts with acks reach the sockets and reply, but never count them. */
const silentCount: AdapterFactory = (sockets) => {
  const memory = new MemoryAdapter(sockets)
  memory.broadcastWithAck = (
    (ask) => (message, options, timeout, _expect, reply) =>
      ask(message, options, timeout, () => {}, reply)
  )(memory.broadcastWithAck.bind(memory))
  return memory
}

describe('a broadcast with acks whose adapter gives no count', () => {
  it('answers at its timeout with the replies that came, saying the count never came', async () => {
    const error = await askedAtTimeout(silentCount, ['a', 'b'])
    expect(error?.code).toBe(ErrorCode.ACK_TIMEOUT)
    expect(error?.message).toBe(
      'the adapter gave no count of the sockets it reached within 300 ms: 2 replied',
    )
    expect(error?.message).not.toMatch(/-\d/)
    expect([...((error?.details?.replies as unknown[] | undefined) ?? [])].sort()).toEqual(['a', 'b'])
    expect(error?.details?.counted).toBe(false)
  })
})

/**
 * A memory adapter that counts at its own bound, as an adapter across nodes does when a node's
 * count has not come: set once its sockets were asked, which takes a while (`busyMs` here), its
 * verdict given `turns` turns of the event loop after its timer ran (an adapter whose bound
 * waits for input read after a stall, as the server's own deadlines do, waits two).
 */
const countsAtItsBound =
  (busyMs: number, turns = 0): AdapterFactory =>
  (sockets) => {
    const memory = new MemoryAdapter(sockets)
    memory.broadcastWithAck = ((ask) => (message, options, timeout, expect, reply) => {
      let count = 0
      ask(message, options, timeout, (total) => (count = total), reply)
      // The sockets asked took a moment; bounded in count and in time.
      const until = performance.now() + busyMs
      for (let i = 0; i < 1e9 && performance.now() < until; i++);
      const after = (left: number): void => {
        if (left === 0) expect(count)
        else setImmediate(after, left - 1)
      }
      setTimeout(after, timeout, turns)
    })(memory.broadcastWithAck.bind(memory))
    return memory
  }

describe('a broadcast with acks whose adapter counts at its own bound', () => {
  it('hears that count at the timeout, however long the adapter took to set its bound', async () => {
    // The second never replies.
    const error = await askedAtTimeout(countsAtItsBound(20), ['a', undefined])
    // Counted: the silent socket's own timeout failed its reply by then, or it is timed out now.
    expect(error?.message).toMatch(/^1 socket\(s\) did not reply( within 300 ms)?: 1 timed out$/)
    expect(error?.details?.replies).toEqual(['a'])
  })

  it('hears it when the bound gives it two turns after its timer, as one that waits for input does', async () => {
    const error = await askedAtTimeout(countsAtItsBound(20, 2), ['a', undefined])
    expect(error?.message).toMatch(/^1 socket\(s\) did not reply( within 300 ms)?: 1 timed out$/)
    expect(error?.details?.replies).toEqual(['a'])
  })
})
