// A client whose session is still live in the drain of app.close() (another session waits for its
// store, its own turn has not come): Fastify refuses every request then, and the plugin takes the
// session's POSTs in its place as the route would. Its events are taken there and handed off with
// the session, so they reach the application once, on the closing node; its goodbye ends the
// session with 'client disconnect', and no snapshot of it is stored for a claim that never comes.
// Two real servers joined by the server tests' in-process adapter (its store stands in for
// Redis) behind a round-robin proxy.

import { connect, type Socket } from '@parley/client'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from '../../server/test/cluster-adapter.js'
import { closeApp, type Started, startServer, until } from '../../server/test/helpers.js'

let nodes: Started[] = []
let proxy: RoundRobinProxy | undefined
const cleanups: (() => void)[] = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup()
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/**
 * Two nodes (Fastify's defaults: from app.close() on, it refuses every request itself) behind a
 * balancer that sends everything to `a` until it closes. `got`: the `n` events each node's
 * application got, in order; `ended`: the reason each socket of `a` ended with, by id.
 */
async function twoNodes() {
  const cluster = new Cluster({ handoff: true })
  const options: ParleyServerOptions = { handoff: { timeout: 7000, batchSize: 1, retrySpread: 0 } }
  const got: string[] = []
  const ended = new Map<string, string>()
  const record = (name: string) => (app: FastifyInstance) => {
    const setup = (socket: ServerSocket) => {
      socket.on('n', (n: number) => got.push(`${name}${n}`))
      socket.on('disconnect', (reason) => ended.set(socket.id, reason))
    }
    // A session taken over from another node comes as `restored`, not `connection`.
    app.parley.on('connection', setup).on('restored', setup)
  }
  const a = await startServer({ adapter: cluster.adapter('a'), ...options }, record('a'))
  nodes.push(a)
  const b = await startServer({ adapter: cluster.adapter('b'), ...options }, record('b'))
  nodes.push(b)
  const balancer = await startRoundRobin([a, b].map((n) => Number(new URL(n.base).port)))
  proxy = balancer
  balancer.avoid.add(1)
  /** The statuses of the session POSTs of each client, by the name it was connected with. */
  const posts = new Map<string, number[]>()
  const client = async (name: string, transport: 'polling' | 'sse'): Promise<Socket> => {
    const statuses: number[] = []
    posts.set(name, statuses)
    const recording: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      if (init?.method === 'POST' && String(input).includes('sid=')) statuses.push(res.status)
      return res
    }
    const socket = connect(`${balancer.url}/parley`, { transports: [transport], fetch: recording })
    cleanups.push(() => socket.disconnect())
    await until(() => socket.connected, 3000, `${name} connecting to a`)
    return socket
  }
  /**
   * Begins a's close with the store holding its answer: the drain stores the first session and
   * waits, the others still live. `storeAnswers()` lets it go on.
   */
  const closeA = async () => {
    let storeAnswers = () => {}
    cluster.storeAnswersAfter = new Promise<void>((resolve) => {
      storeAnswers = resolve
    })
    cleanups.push(storeAnswers)
    balancer.avoid.clear()
    balancer.avoid.add(0)
    const closing = a.app.close()
    await until(() => cluster.handOffSids.length === 1, 3000, 'the drain storing the first session')
    return { closing, storeAnswers }
  }
  return { cluster, a, got, ended, posts, client, closeA }
}

describe.each(['polling', 'sse'] as const)('a live session in the drain of app.close() (%s)', (transport) => {
  it('has the events it sends taken on the closing node, and delivered once across the handoff', async () => {
    const { got, posts, client, closeA } = await twoNodes()
    await client('first', transport)
    const c = await client('c', transport)
    const said: string[] = []
    c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
    c.emit('n', 0)
    await until(() => got.length === 1, 3000, 'the first event on a')

    const { closing, storeAnswers } = await closeA()
    const statuses = posts.get('c') ?? []
    const sent = statuses.length
    c.emit('n', 1)
    await until(() => statuses.length > sent, 3000, "the POST's answer")
    expect(statuses.at(-1)).toBe(204)
    await until(() => got.length === 2, 3000, 'the second event on a')

    storeAnswers()
    await until(() => said.length > 0 && c.connected, 10_000, 'the resume on b')
    c.emit('n', 2)
    await until(() => got.length === 3, 3000, 'the third event on b')
    expect(got).toEqual(['a0', 'a1', 'b2'])
    expect(said).toEqual([`${transport} -> ${transport} (resume)`])
    expect(c.recovered).toBe(true)
    await closing
  }, 30_000)

  it("ends with its client's goodbye, 'client disconnect', and leaves no snapshot behind", async () => {
    const { cluster, a, ended, posts, client, closeA } = await twoNodes()
    await client('first', transport)
    const c = await client('c', transport)
    const [id] = [...a.app.parley.sockets.keys()].slice(-1)

    const { closing, storeAnswers } = await closeA()
    const statuses = posts.get('c') ?? []
    const sent = statuses.length
    c.disconnect()
    await until(() => statuses.length > sent, 3000, "the goodbye's answer")
    expect(statuses.at(-1)).toBe(204)
    await until(() => ended.has(id ?? ''), 3000, 'the session ending on a')
    expect(ended.get(id ?? '')).toBe('client disconnect')

    storeAnswers()
    await closing
    // Only the first session was stored for a claim: nothing of c's waits out the recovery window.
    expect(cluster.handOffSids).toHaveLength(1)
  })
})
