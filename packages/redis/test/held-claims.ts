// Resumes that race each other for one session, set up alike by the suites that hold them
// (hostile-forwarding.test.ts, same-node-resumes.test.ts, claim-misses.test.ts): a WebSocket
// session that sent news and left, the claims of it a node makes held at a door the test opens,
// a node's first look-up of the owner held likewise, the replay a resume that took it over gets,
// and a probe of whether a session answers.
import { PacketType } from '@parley/protocol'
import type { SessionOwnerAnswer } from '@parley/server'
import { expect } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { type RawClient, rawConnect } from '../../server/test/raw-client.js'
import type { RawWebSocket } from '../../server/test/raw-websocket.js'
import type { TestNode } from './nodes.js'

/**
 * Holds `node`'s claims of handed-off sessions, each at its own door: the first once it has won
 * in Redis (the owner record names `node`, the session is not restored yet), or, with `before`,
 * before it reaches Redis; every later one before it reaches Redis.
 */
export function holdClaims(node: TestNode, before = false) {
  const adapter = node.adapter
  const claim = adapter.claimSession.bind(adapter)
  const doors: (() => void)[] = []
  let won = false
  let calls = 0
  let allOpen = false
  adapter.claimSession = async (sid: string) => {
    const first = calls++ === 0
    if (allOpen) return claim(sid)
    const door = new Promise<void>((resolve) => doors.push(resolve))
    if (first && !before) {
      const result = await claim(sid)
      won = true
      await door
      return result
    }
    await door
    return claim(sid)
  }
  return {
    /** How many claims came to the door. */
    entered: () => calls,
    /** True once the first claim won in Redis (without `before`). */
    won: () => won,
    /** Lets claim `n` (from 0) go on. */
    open: (n: number) => doors[n]?.(),
    /** Lets every claim go on, those to come too. */
    openAll: () => {
      allOpen = true
      for (const door of doors) door()
    },
  }
}

/**
 * Holds `node`'s claims of handed-off sessions at one door until `open()`: the node looked the
 * session up and found it handed off, and its claim has not reached Redis. `entered()` says one
 * waits there.
 */
export function holdClaim(node: TestNode): { entered: () => boolean; open: () => void } {
  const claims = holdClaims(node, true)
  return { entered: () => claims.entered() > 0, open: claims.openAll }
}

/**
 * A WebSocket session on `node` that sent news 1 to 5, which its client took, then left: the
 * client (put in `kept` when given, for the suite to close) and the HELLO that resumes it having
 * acknowledged 2.
 */
export async function fiveSentThenLeft(node: TestNode, kept?: RawClient[]) {
  const first = await rawConnect('websocket', node.base)
  kept?.push(first)
  const socket = node.app.parley.sockets.get(first.id)!
  for (let n = 1; n <= 5; n++) socket.emit('news', n)
  await first.next((p) => p.type === PacketType.EVENT && p.seq === 5)
  first.close()
  return { first, hello: `[8,{"sid":"${first.sid}","ack":2}]` }
}

/**
 * The WebSocket resume `raw` took session `id` over whole: the OPEN, then news 3 to 5 in order
 * (and, with `only`, nothing else yet).
 */
export async function replayed(
  raw: RawWebSocket,
  id: string,
  what = 'the replay',
  only = false,
): Promise<void> {
  await until(() => (only ? raw.packets.length === 4 : raw.packets.length >= 4), 2000, what)
  expect(only ? raw.packets : raw.packets.slice(0, 4)).toMatchObject([
    { type: PacketType.OPEN, recovered: true, id },
    { seq: 3, args: [3] },
    { seq: 4, args: [4] },
    { seq: 5, args: [5] },
  ])
}

let probes = 1
/**
 * True when the session answers a request from `client` (an unnumbered EVENT `probe` with an ack
 * id, which the nodes of these suites answer).
 */
export async function answers(client: RawClient): Promise<boolean> {
  const ackId = probes++
  await client.send({ type: PacketType.EVENT, seq: 0, name: 'probe', args: [ackId], ackId }).catch(() => 0)
  return client
    .next((p) => p.type === PacketType.REPLY && p.ackId === ackId, 1500)
    .then(
      () => true,
      () => false,
    )
}

/**
 * Holds `node`'s first look-up of a session's owner once Redis answered it, until `goOn()`: as
 * a loaded node may, it acts on an answer the other nodes have made stale by then. `looked()`
 * says it waits there; `answer` may change what it goes on with. Later look-ups go through.
 */
export function stallOwnerLookUp(
  node: TestNode,
  answer: (owner: SessionOwnerAnswer) => SessionOwnerAnswer = (owner) => owner,
): { looked: () => boolean; goOn: () => void } {
  const adapter = node.adapter
  const lookUp = adapter.sessionOwner.bind(adapter)
  let looked = false
  let goOn: () => void = () => {}
  const stalled = new Promise<void>((resolve) => {
    goOn = resolve
  })
  adapter.sessionOwner = async (sid: string) => {
    if (looked) return lookUp(sid)
    const owner = await lookUp(sid)
    looked = true
    await stalled
    return answer(owner)
  }
  return { looked: () => looked, goOn: () => goOn() }
}
