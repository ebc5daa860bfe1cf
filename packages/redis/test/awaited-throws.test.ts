// A socket being handed over that throws at an own broadcast of its node proved never run, as it
// reaches the positioned sockets (see src/deliver-each.ts), loses that one alone: the other
// sockets still get it, those past their marker too, and what follows in the same read still
// happens (the broadcasts behind it, a later one, the end of the wait and a seal held for it).
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  dropConnection,
  type FakeNode,
  type FakeSocket,
  fakeClusterSuite,
  HeldOnDroppedLink,
  handedOffSession,
  message,
  snapshotOf,
  to,
} from './handoff-support.js'
import { heldSeal } from './held-seal-scene.js'
import { isBroadcast } from './published.js'

/** Socket `id` of `node`, in room 'r', its session `sid` handed off: what it gets, in order. */
async function handedOff(
  node: FakeNode,
  id: string,
  sid: string,
): Promise<{ socket: FakeSocket; tail: unknown[] }> {
  const tail: unknown[] = []
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, 'r'])
  await node.adapter.sessionOpened(sid)
  socket.handedOff = (text) => {
    tail.push(argOf(text))
    node.adapter.appendHandOff(sid, text)
  }
  if (!(await node.adapter.handOff(snapshotOf(sid, id, ['r']), 60_000))) throw new Error('not handed off')
  return { socket, tail }
}

/** `socket` throws at the broadcast whose first argument is `arg`, and takes the others as before. */
function throwsAt(socket: FakeSocket, arg: string): void {
  const into = socket.handedOff
  socket.handedOff = (text) => {
    if (argOf(text) === arg) throw new Error(`the socket threw at ${arg}`)
    into?.(text)
  }
}

describe.skipIf(skipRedisSuites())('a socket that throws at an own broadcast proved never run', () => {
  const suite = fakeClusterSuite()

  // As in given-up-probe.test.ts: each node's start twice, 5 s for the two to see each other,
  // then the waits of the test, 41 s in all, named when one fails.
  const OWN_BOUNDS_MS = 2 * (5000 + 5000) + 5000 + 3000 + 5000 + 5000 + 3000

  it('loses it alone: the other sockets being handed over get it, and the next one', {
    timeout: OWN_BOUNDS_MS + 10_000,
  }, async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const node = a as FakeNode
    // s1 first in room 'r': it is given the broadcast before s2.
    const first = await handedOffSession(node, 'sid-throws')
    const second = await handedOff(node, 's2', 'sid-takes')
    throwsAt(node.sockets.get('s1') as FakeSocket, 'one')
    new HeldOnDroppedLink(node, isBroadcast)
    node.adapter.broadcast(message('news', ['one']), to(['r']))
    await until(() => node.adapter.stats.lostBroadcasts === 1, 3000, 'the broadcast given up')
    const left = await unheard(async () => {
      // Lost with the connection, never run: the probe on the next one proves it.
      await dropConnection(node)
      await until(() => second.tail.length > 0, 5000, 'the broadcast at s2')
      node.adapter.broadcast(message('news', ['two']), to(['r']))
      await until(() => second.tail.length > 1 && first.length > 0, 3000, 'the next broadcast at both')
    })
    expect(left).toEqual([])
    expect(second.tail).toEqual(['one', 'two'])
    expect(first.map(argOf)).toEqual(['two'])
    expect(node.warnings.filter((line) => line.includes('to a session being handed over'))).toHaveLength(1)
    expect(node.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })

  it('keeps a seal held at a marker for it: the socket past its marker gets it, and the seal goes', async () => {
    let third: { socket: FakeSocket; tail: unknown[] } | undefined
    // s3, handed off too (no claim), awaits `given` as s1 does; s1's seal waits for it.
    const { a, tail, taking } = await heldSeal(
      suite.cluster(),
      (a) => {
        a.adapter.broadcast(message('news', ['behind']), to(['r']))
      },
      async (a) => {
        third = await handedOff(a, 's3', 'sid-third')
      },
    )
    if (!third) throw new Error('s3 not handed off')
    throwsAt(third.socket, 'given')
    const left = await unheard(async () => {
      // A later own broadcast comes back first: `given` never ran. s3 throws at it; s1, past
      // its marker, still takes it into its tail, then the one behind it, and the seal goes.
      a.lose = undefined
      a.adapter.broadcast(message('news', ['proof']), to(['r']))
      const taken = await within(taking, 5000, 'the claim answered')
      expect(tail).toEqual(['given', 'behind'])
      expect(taken.complete).toBe(true)
      expect(taken.tail.map(argOf)).toEqual(['given', 'behind'])
      await until(() => third?.tail.includes('proof') === true, 3000, 'the later broadcast at s3')
    })
    expect(left).toEqual([])
    expect(third.tail).toEqual(['other', 'behind', 'proof'])
    expect(a.warnings.filter((line) => line.includes('to a session being handed over'))).toHaveLength(1)
    expect(a.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })
})
