// A resume whose node takes a while to take the session over (the old node slow to seal its
// tail, as a node of @parley/redis waits for it up to 3 s) answers the HELLO late, within
// connectTimeout. The event stream that follows then gets connectTimeout of its own for its first
// bytes, from its GET on: it shared what the handshake had left of one bound, so a GET a moment
// slow (a loaded machine, a browser's queue of connections) ran out of it. The client took that
// stream for one a proxy buffers (`details.stalled`), marked SSE to be tried last, and stepped
// down to polling in the middle of a deploy. Polling's first GET is bounded by nothing but the
// heartbeat, before and after. Real client, real servers (the in-process adapter's store stands
// in for Redis, its slow takeover for the wait for the seal); the client's `fetch` holds back
// its first GET after the resume's HELLO, a delay that alone stays well within the bound.
import { connect, type Socket } from '@parley/client'
import type { ParleyServerOptions } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from '../../server/test/cluster-adapter.js'
import { closeApp, type Started, sleep, startServer, until, within } from '../../server/test/helpers.js'

let nodes: Started[] = []
let balancer: RoundRobinProxy | undefined
const clients: Socket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  await balancer?.close()
  balancer = undefined
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/**
 * The takeover's wait, then the first GET's: each well within the client's default
 * connectTimeout (3 s), together past it.
 */
const TAKEOVER_MS = 1800
const GET_HELD_MS = 1800

describe.each([
  ['sse', 'polling'],
  ['polling', 'sse'],
] as const)('a resume over %s whose takeover is slow', (transport, other) => {
  it('goes on over it: its first GET has the whole connectTimeout, nothing is marked stalled', async () => {
    const cluster = new Cluster({ handoff: true })
    const options: ParleyServerOptions = { handoff: { timeout: 5000, retrySpread: 0 } }
    const a = await startServer({ adapter: cluster.adapter('a'), ...options })
    const b = await startServer({ adapter: cluster.adapter('b'), ...options })
    nodes.push(a, b)
    balancer = await startRoundRobin([a, b].map((node) => Number(new URL(node.base).port)))
    const lb = balancer
    lb.avoid.add(1)

    // Once the drain began, the first GET waits GET_HELD_MS before it goes.
    let resuming = false
    let heldGets = 0
    const holding: typeof fetch = async (input, init) => {
      if (resuming && (init?.method ?? 'GET') === 'GET' && heldGets++ === 0) await sleep(GET_HELD_MS)
      return fetch(input, init)
    }
    const stalls = new Map<string, string>()
    const storage = {
      getItem: (k: string) => stalls.get(k) ?? null,
      setItem: (k: string, v: string) => void stalls.set(k, v),
      removeItem: (k: string) => void stalls.delete(k),
    }
    const c = connect(`${lb.url}/parley`, {
      transports: [transport, other],
      fetch: holding,
      storage,
    })
    clients.push(c)
    const said: string[] = []
    c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
    c.on('transport_error', (name, error) =>
      said.push(`${name} ${error.code}${error.details?.stalled ? ' stalled' : ''}`),
    )
    c.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
    await until(() => c.connected, 3000, 'connected to a')
    const id = c.id

    // a drains: the client, told CLOSE 'server handoff', resumes on b, whose takeover is slow.
    cluster.takeOverDelayMs = TAKEOVER_MS
    resuming = true
    lb.avoid.clear()
    lb.avoid.add(0)
    const closing = a.app.close()
    await until(() => heldGets > 0, 5000, 'the first GET after the resume, held')
    await within(closing, 8000, "a's drain")
    // Given up on, the stream fails before the client connects on the other transport.
    await until(() => said.length > 0 && c.connected, 8000, 'the client on b')

    expect(said).toEqual([`${transport} -> ${transport} (resume)`])
    expect(c.transport).toBe(transport)
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    // What the client remembers: `transport|time|stalled,...|time of the stall|...`.
    expect(
      [...stalls.values()].flatMap((kept) => kept.split('|')[2]?.split(',') ?? []).filter(Boolean),
    ).toEqual([])
  }, 30_000)
})
