// A session handed off on one node whose socket may throw at one delivery: the tests of a
// throwing socket costing that delivery alone stage two of them in one room.
import { expect } from 'vitest'
import { argOf, type FakeNode, snapshotOf } from './handoff-support.js'

/**
 * Socket `id` of `node` in room 'r', its session `sid` handed off: what it gets, in order. It
 * throws at the message whose first argument is `throwsAt`, which it then does not get.
 */
export async function handedOff(
  node: FakeNode,
  id: string,
  sid: string,
  throwsAt?: string,
): Promise<unknown[]> {
  const tail: unknown[] = []
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, 'r'])
  await node.adapter.sessionOpened(sid)
  socket.handedOff = (text) => {
    if (argOf(text) === throwsAt) throw new Error(`the socket threw at ${throwsAt}`)
    tail.push(argOf(text))
  }
  expect(await node.adapter.handOff(snapshotOf(sid, id, ['r']), 60_000)).toBe(true)
  return tail
}
