// A broadcast with acks that races a claim: the session handed from node a to node b while the
// request is on its way. Its socket must be asked once, and the sender must count that one
// answer once, whichever node sent it. Three Parley servers on one real Redis behind a
// round-robin proxy, and the real client; Redis commands are held back to set the order of the
// claim marker and the request.
import type { RedisAdapter } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  claimRaceSuite,
  heldBack,
  isMarker,
  joinedOn,
  type RaceNode as Node,
  untilInTail,
} from './claim-race.js'

const isAckRequest = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('"k":"ack"')

/** What a broadcast with acks came to: its replies, or its error's code and message. */
type Outcome = { replies: unknown[] } | { code: string; message: string }

describe.skipIf(skipRedisSuites())('a broadcast with acks that races a claim', () => {
  // The client answers each question `q` at once: `asked`, the questions it was asked.
  const { scene } = claimRaceSuite((client) => {
    const asked: string[] = []
    client.on('q', (what: string, reply: (answer: string) => void) => {
      asked.push(what)
      reply(`yes ${what}`)
    })
    return { asked }
  })

  /** Asks every socket in `room` from `node`; what it came to. */
  function ask(node: Node, what: string): Promise<Outcome> {
    return node.started.app.parley
      .timeout(4000)
      .to('room')
      .emitWithAck('q', what)
      .then(
        (replies): Outcome => ({ replies }),
        (error: { code: string; message: string }): Outcome => ({ code: error.code, message: error.message }),
      )
  }

  it('asks the socket once when the old node sends it after the snapshot and Redis runs it after the marker', async () => {
    // a's request waits; b's marker waits until a asked.
    const aHold = heldBack(isAckRequest, () => false)
    const bHold = heldBack(isMarker, () => false)
    const { a, b, asked, id } = await scene('ack-cut-old', { a: aHold, b: bHold })
    await until(() => bHold.held.length === 1, 5000, "b's marker held")
    const outcome = ask(a, 'from a')
    await until(() => aHold.held.length === 1, 3000, "a's request held")
    await bHold.runAll()
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    await aHold.runAll()
    expect(await within(outcome, 8000, 'the outcome')).toEqual({ replies: ['yes from a'] })
    expect(asked).toEqual(['from a'])
  }, 30_000)

  it('asks the socket once when the old node gave its request up and Redis runs it after the marker', async () => {
    // a's request waits past a's requestTimeout (given up); b's marker waits until then.
    const aHold = heldBack(isAckRequest, () => false)
    const bHold = heldBack(isMarker, () => false)
    const { a, b, asked, id } = await scene('ack-cut-given-up', { a: aHold, b: bHold }, 500)
    await until(() => bHold.held.length === 1, 5000, "b's marker held")
    const adapterA = a.started.app.parley.adapter as RedisAdapter
    const outcome = ask(a, 'from a')
    await until(() => aHold.held.length === 1, 3000, "a's request held")
    await until(() => adapterA.stats.lostBroadcasts === 1, 3000, "a's request given up")
    await bHold.runAll()
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    // Redis runs it now, after the marker: b's to ask.
    await aHold.runAll()
    expect(await within(outcome, 8000, 'the outcome')).toEqual({ replies: ['yes from a'] })
    expect(asked).toEqual(['from a'])
  }, 30_000)

  it('asks the socket once when the claimer sends it before its marker came back', async () => {
    // b's marker waits, and b's request behind it: Redis runs the marker first.
    const bHold = heldBack(isMarker, isAckRequest)
    const { b, asked, id } = await scene('ack-cut-claimer', { b: bHold })
    await until(() => bHold.held.length === 1, 5000, "b's marker held")
    const outcome = ask(b, 'from b')
    await until(() => bHold.held.length === 2, 3000, "b's request held behind its marker")
    await bHold.runAll()
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    expect(await within(outcome, 8000, 'the outcome')).toEqual({ replies: ['yes from b'] })
    expect(asked).toEqual(['from b'])
  }, 30_000)

  it('asks the socket once when a third node’s request reaches the old node before the marker', async () => {
    const bHold = heldBack(isMarker, () => false)
    const { a, b, c, asked, id } = await scene('ack-cut-third', { b: bHold })
    await until(() => bHold.held.length === 1, 5000, "b's marker held")
    const appended = a.commands.length
    const outcome = ask(c, 'from c')
    // The question reached the session on a, before the cut: into its tail.
    await untilInTail(a, appended, 'from c', 'the question in the tail')
    await bHold.runAll()
    await until(joinedOn(b, id), 5000, 'the session joined on b')
    // Its reply reaches b, which sends it back to a (the question is a's): counted once, with
    // the client's answer.
    expect(await within(outcome, 8000, 'the outcome')).toEqual({ replies: ['yes from c'] })
    await until(() => asked.length > 0, 3000, 'the question at the client')
    expect(asked).toEqual(['from c'])
  }, 30_000)
})
