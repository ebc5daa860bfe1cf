// A question whose count waits for a socket joined without a cut (its tail not read: one round
// trip, or, read without the old node's seal, up to four requestTimeouts for the claim's
// confirm) gives its count no later than the question's own timeout: its sender stops waiting
// then, and the replies the other sockets made in time would be lost with the count. The held
// socket, counted later, is left out, its reply dropped: never more replies than counted.
import { MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { until } from '../../server/test/helpers.js'
import type { AskWithAck } from '../src/held-questions.js'
import { UncutSockets } from '../src/uncut-sockets.js'
import { askInR } from './ask-holding.js'
import { FakeSockets, repliesAs } from './handoff-support.js'

/** Sockets `first` and `second` asked at once, replying at once; `held` joined without a cut, in room r. */
function scene(timeout: number) {
  const ask: AskWithAck = (_message, _options, _timeout, expectCount, reply, only) => {
    const asked = ['first', 'second', 'held'].filter((id) => !only || only(id))
    expectCount(asked.length)
    for (const id of asked) reply({ ok: true, value: id })
    return undefined
  }
  const sockets = new FakeSockets()
  const memory = new MemoryAdapter(sockets)
  repliesAs(sockets.add('held'), 'held')
  memory.addAll('held', new Set(['held', 'r']))
  const uncut = new UncutSockets(() => undefined)
  uncut.joined('held')
  const seen: unknown[] = []
  const giveNow = askInR({ ask, uncut, timeout, seen, memory, sockets })
  return { seen, giveNow, read: () => uncut.read('held', undefined, () => undefined) }
}

describe('a question held for a socket joined without a cut, at its timeout', () => {
  it('gives the count it has, with the replies made in time, the held socket left out', async () => {
    const { seen, read } = scene(100)
    expect(seen).toEqual([])
    await until(() => seen.length > 0, 3000, 'the count at the timeout')
    expect(seen).toEqual(['count 2', 'first', 'second'])
    // Its tail read after the count: asked, its reply is not passed on.
    read()
    expect(seen).toEqual(['count 2', 'first', 'second'])
  })

  it('gives it at once when its caller’s own timeout ends first', () => {
    const { seen, giveNow, read } = scene(60_000)
    giveNow()
    expect(seen).toEqual(['count 2', 'first', 'second'])
    read()
    expect(seen).toEqual(['count 2', 'first', 'second'])
  })

  it('counts the held socket read in time, as before', () => {
    const { seen, read } = scene(60_000)
    read()
    expect(seen).toEqual(['count 3', 'first', 'second', 'held'])
  })

  it.each([
    ['beside a held socket', true],
    ['with none held', false],
  ])('drops the replies of sockets whose count came after it was given at once, %s', (_, holding) => {
    // Sockets asked whose count comes later (past their claim marker), then their replies.
    let late: (() => void) | undefined
    const ask: AskWithAck = (_message, _options, _timeout, expectCount, reply) => {
      late = () => {
        expectCount(1)
        reply({ ok: true, value: 'late' })
      }
      return undefined
    }
    const uncut = new UncutSockets(() => undefined)
    if (holding) uncut.joined('held')
    const seen: unknown[] = []
    const giveNow = askInR({ ask, uncut, timeout: 60_000, seen })
    giveNow()
    late?.()
    expect(seen).toEqual(['count 0'])
  })
})
