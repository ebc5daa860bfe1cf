// The end of a closing node's drain while a client reaches the node that holds its session
// through it (get-across-close.test.ts, resume-across-close.test.ts): the GETs it relays, held
// there, end with CLOSE 'server handoff', and the client goes on where its session is, having
// seen no transport fail.
import type { Socket } from '@parley/client'
import { PacketType } from '@parley/protocol'
import { expect } from 'vitest'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { until, within } from '../../server/test/helpers.js'
import type { RawClient } from '../../server/test/raw-client.js'
import type { SuiteNode } from './e2e-suite.js'

/** The header a node marks the requests it sends on with. */
const ROUTED = 'x-parley-routed'

/**
 * Counts, from now on, the GETs (an event stream, a held poll) relayed to `node` by another node
 * that `node` holds open; returns a reading of that count.
 */
export function relayedGetsHeld(node: SuiteNode): () => number {
  let held = 0
  node.started.app.server.on('request', (req, res) => {
    if (req.method !== 'GET' || req.headers[ROUTED] === undefined) return
    held++
    res.once('close', () => held--)
  })
  return () => held
}

/** Numbered `down` messages `client` receives, in order. */
export function received(client: Socket): number[] {
  const got: number[] = []
  client.on('down', (n: number) => got.push(n))
  return got
}

/** The codes of the transport errors `client` reports. */
export function transportErrors(client: Socket): string[] {
  const lost: string[] = []
  client.on('transport_error', (_transport, error) => lost.push(error.code))
  return lost
}

/** A closing node's drain, and what the client that reaches another node through it went through. */
export interface Drain {
  /** The closing node, the balancer's first backend. */
  a: SuiteNode
  balancer: RoundRobinProxy
  /** The session of a's own that nobody claims: a's drain waits for it. */
  held: RawClient
  /** a's close under way. */
  draining: Promise<unknown>
  /** The GETs a relays to the other node, held there (see `relayedGetsHeld`). */
  heldOnB: () => number
  /** The client's transport errors (see `transportErrors`). */
  lost: readonly string[]
}

/**
 * Ends a's drain while the client's requests reach b through a: so far no transport failed and a
 * is still closing; the GET the client sent last (its stream goes on, or its next poll) is
 * relayed by a and held on b, not still on its way as the drain ends (a request a closing node
 * has yet to send on is refused or cut then, and fails the client's transport). Then the
 * balancer turns to b and the held session says goodbye: a's drain ends, and what it relays
 * ends with CLOSE 'server handoff'.
 */
export async function endDrain({ a, balancer, held, draining, heldOnB, lost }: Drain): Promise<void> {
  expect(lost).toEqual([])
  expect(a.started.app.parley.closed).toBe(false)
  await until(() => heldOnB() === 1, 3000, 'the next GET, held on b through a')
  balancer.avoid.clear()
  balancer.avoid.add(0)
  await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
  await within(draining, 5000, 'the drain over once the held session said goodbye')
}
