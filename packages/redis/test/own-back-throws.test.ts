// A socket being handed over that throws at an own broadcast of its node as it comes back on the
// channel (see src/deliver-each.ts) loses that one alone: the other sockets still get it, and the
// cut's step after it still happens, so that the next broadcast reaches both sessions in order.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until } from '../../server/test/helpers.js'
import { type FakeNode, fakeClusterSuite, message, to } from './handoff-support.js'
import { handedOff } from './throwing-session.js'

describe.skipIf(skipRedisSuites())('a socket that throws at an own broadcast coming back', () => {
  const suite = fakeClusterSuite()

  it('loses it alone: the other session gets it, and the next one reaches both', async () => {
    const [a] = await suite.cluster().start(2)
    const node = a as FakeNode
    // s1 first in room 'r': it is given the broadcast before s2.
    const first = await handedOff(node, 's1', 'sid-throws', 'one')
    const second = await handedOff(node, 's2', 'sid-takes')
    const left = await unheard(async () => {
      node.adapter.broadcast(message('news', ['one']), to(['r']))
      await until(() => second.includes('one'), 3000, 'the broadcast back at s2')
      node.adapter.broadcast(message('news', ['two']), to(['r']))
      await until(() => second.includes('two') && first.includes('two'), 3000, 'the next broadcast at both')
    })
    expect(left).toEqual([])
    expect(second).toEqual(['one', 'two'])
    expect(first).toEqual(['two'])
    expect(node.warnings.filter((line) => line.includes('a broadcast failed at its delivery'))).toHaveLength(
      1,
    )
    expect(node.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })
})
