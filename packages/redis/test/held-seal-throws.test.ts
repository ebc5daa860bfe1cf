// A socket that throws while this node's own broadcasts that never ran go into its tail at its
// seal (here a seal held at a claim marker, ended by its limit) loses that one alone: the others
// reach the tail, a question is counted with a failed reply, and the seal and the claim's answer
// go on, so the claimer gets the whole tail.
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, fakeClusterSuite, message, to } from './handoff-support.js'
import { ask, heldSeal } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a socket that throws into its tail at a seal held at its marker', () => {
  const suite = fakeClusterSuite()

  it('loses that one alone, and the seal and the claim answer go on', async () => {
    let asked: ReturnType<typeof ask> | undefined
    // Never sent, behind the broadcast s1 awaits: a plain one, a question, and a plain one.
    const { a, sid, socket, tail, taking, limit } = await heldSeal(suite.cluster(), (a) => {
      a.adapter.broadcast(message('news', ['throws']), to(['r']))
      asked = ask(a, 'asked', ['r'])
      a.adapter.broadcast(message('news', ['after']), to(['r']))
    })
    expect(a.adapter.stats.lostBroadcasts).toBe(4)
    const into = socket.handedOff
    socket.handedOff = (text) => {
      const arg = argOf(text)
      if (arg === 'throws' || arg === 'asked') throw new Error(`the socket threw at ${String(arg)}`)
      into?.(text)
    }
    a.sockets.last = () => ['[5,20,"news",["last"],0]']
    const left = await unheard(async () => {
      // Nothing settles the broadcast awaited: the wait ends at its limit, and the seal goes.
      limit.runOut()
      const taken = await within(taking, 5000, 'the claim answered')
      expect(tail).toEqual(['after'])
      expect(a.sockets.claims).toEqual([sid])
      expect(taken.complete).toBe(true)
      expect(taken.tail.map(argOf)).toEqual(['after', 'last'])
      // The question: s1 counted (its count joins a's, given once no other socket waits for
      // it), its reply failed at once, never left to the question's timeout.
      await until(() => asked?.replies.length === 1, 3000, 'the reply to the question')
      expect(asked?.replies[0]).toMatchObject({ ok: false, error: { code: 'PARLEY_DISCONNECTED' } })
    })
    expect(left).toEqual([])
    expect(a.warnings.filter((line) => line.includes('as that tail was sealed'))).not.toHaveLength(0)
    expect(a.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })

  it('counts once a question the socket registered before it threw at it', async () => {
    let asked: ReturnType<typeof ask> | undefined
    const { socket, taking, limit } = await heldSeal(suite.cluster(), (a) => {
      asked = ask(a, 'asked', ['r'])
    })
    // The server's socket registers the question, then sends it: here the send throws.
    let registered: ((reply: BroadcastReply) => void) | undefined
    socket.deliverWithAck = (_event, _timeout, settle) => {
      registered = settle
      throw new Error('the socket threw as it sent the question')
    }
    const left = await unheard(async () => {
      // Nothing settles the broadcast awaited: the wait ends at its limit, and the seal goes.
      limit.runOut()
      await within(taking, 5000, 'the claim answered')
      await until(() => asked?.replies.length === 1, 3000, 'the reply to the question')
      // Its session ends: the question it registered is settled there, and not counted again.
      registered?.({ ok: false, error: new ParleyError(ErrorCode.DISCONNECTED, 'the session ended') })
    })
    expect(left).toEqual([])
    expect(asked?.replies).toHaveLength(1)
    expect(asked?.replies[0]).toMatchObject({ ok: false, error: { code: 'PARLEY_DISCONNECTED' } })
  })

  it('loses alone what is proved never run while the seal waits, and the seal goes', async () => {
    const { a, socket, tail, taking } = await heldSeal(suite.cluster(), (a) => {
      a.adapter.broadcast(message('news', ['behind']), to(['r']))
    })
    const into = socket.handedOff
    socket.handedOff = (text) => {
      if (argOf(text) === 'given') throw new Error('the socket threw at given')
      into?.(text)
    }
    const left = await unheard(async () => {
      // A later own broadcast comes back first: the one s1 awaits never ran, and reaches it
      // now, directly into its tail (it is out of its rooms), with the one behind it.
      a.lose = undefined
      a.adapter.broadcast(message('news', ['proof']), to(['r']))
      const taken = await within(taking, 5000, 'the claim answered')
      expect(tail).toEqual(['behind'])
      expect(taken.complete).toBe(true)
      expect(taken.tail.map(argOf)).toEqual(['behind'])
    })
    expect(left).toEqual([])
    expect(a.warnings.filter((line) => line.includes('as that tail was sealed'))).not.toHaveLength(0)
    expect(a.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })
})
