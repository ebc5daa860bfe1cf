// This node's own broadcasts reach a session being handed over in the order they were emitted,
// as they reach every other socket of the node: one that cannot run (never sent, or refused)
// must not pass one emitted before it that is still on its way back on the channel.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { argOf, type FakeNode, handoffScenes, message, snapshotOf, to } from './handoff-support.js'

const scene = handoffScenes()

/** Node `a` handing off session `sid` (its socket in room `r`): what reaches the tail. */
async function handingOff(a: FakeNode, sid: string): Promise<string[]> {
  const handed = a.sockets.add('s1', sid)
  a.adapter.addAll('s1', ['s1', 'r'])
  await a.adapter.sessionOpened(sid)
  const tail: string[] = []
  handed.handedOff = (text) => tail.push(text)
  expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
  return tail
}

describe.skipIf(skipRedisSuites())(
  'an own broadcast that cannot run, for a session being handed over',
  () => {
    it.each(['plain', 'with acks'])(
      '(%s, never sent) reaches it after the one before it, still on its way back',
      async (kind) => {
        const { proxy, cluster } = await scene()
        const a = await cluster.node(undefined, {
          subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}`,
        })
        const b = await cluster.node()
        await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')
        const tail = await handingOff(a, 'sid-order')
        // a's subscriber reads nothing: 'first' runs, and is on its way back to a.
        const release = proxy.holdDownstream()
        try {
          a.adapter.broadcast(message('news', ['first']), to(['r']))
          await until(
            () => a.commands.some((args) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('first')),
            3000,
            'first sent',
          )
          // a's client is not connected: 'second' is never sent.
          a.down = true
          if (kind === 'plain') a.adapter.broadcast(message('news', ['second']), to(['r']))
          else
            a.adapter.broadcastWithAck(
              message('ask', ['second']),
              to(['r']),
              10_000,
              () => {},
              () => {},
            )
          a.down = false
          // Not in the tail yet: 'first' is still on its way back to a.
          await new Promise((resolve) => setImmediate(resolve))
          expect(tail).toEqual([])
          release()
          await until(() => tail.length === 2, 3000, 'both in the tail')
          expect(tail.map(argOf)).toEqual(['first', 'second'])
        } finally {
          release()
        }
      },
    )
  },
)
