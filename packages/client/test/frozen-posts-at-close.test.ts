// A client that sends while its session waits in the drain of app.close(), frozen for its handoff:
// Fastify refuses every request then, and the plugin answers the session's POST in its place as
// the route would (204, nothing of it used or acknowledged), not with a 503 that would fail the
// client's transport before it reads the CLOSE 'server handoff'. The client then resumes on the
// node that takes the session over and sends it again there: delivered once, in order, and the
// application hears of no lost transport. Two real servers joined by the server tests'
// in-process adapter (its store stands in for Redis) behind a round-robin proxy. A polling
// client's next GET, should it come during the drain, is held as the route holds it, not refused.

import { connect } from '@parley/client'
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

describe.each(['polling', 'sse'] as const)(
  'a POST of a session frozen in the drain of app.close() (%s)',
  (transport) => {
    it('is answered 204, and what it carried arrives once, on the node that takes the session over', async () => {
      const cluster = new Cluster({ handoff: true })
      const options: ParleyServerOptions = { handoff: { timeout: 7000, retrySpread: 0 } }
      /** The `n` events each node's application got, in order. */
      const got: number[] = []
      const record = (app: FastifyInstance) => {
        const setup = (socket: ServerSocket) => socket.on('n', (n: number) => got.push(n))
        // A session taken over from another node comes as `restored`, not `connection`.
        app.parley.on('connection', setup).on('restored', setup)
      }
      // Fastify's defaults: from app.close() on, it refuses every request itself.
      const a = await startServer({ adapter: cluster.adapter('a'), ...options }, record)
      nodes.push(a)
      const b = await startServer({ adapter: cluster.adapter('b'), ...options }, record)
      nodes.push(b)
      const balancer = await startRoundRobin([a, b].map((n) => Number(new URL(n.base).port)))
      proxy = balancer

      /** The status of each of the session's POSTs. */
      const posts: number[] = []
      const recording: typeof fetch = async (input, init) => {
        const res = await fetch(input, init)
        if (init?.method === 'POST' && String(input).includes('sid=')) posts.push(res.status)
        return res
      }
      const c = connect(`${balancer.url}/parley`, {
        transports: [transport],
        fetch: recording,
        autoConnect: false,
      })
      cleanups.push(() => c.disconnect())
      const said: string[] = []
      c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
      c.on('transport_error', (name, error) => said.push(`${name} ${error.code}`))
      balancer.avoid.add(1)
      c.connect()
      await until(() => c.connected, 3000, 'connect to a')
      c.emit('n', 0)
      await until(() => got.length === 1, 3000, 'the first event on a')

      // The store holds its answer: the session stays frozen on a, its CLOSE not sent yet.
      let storeAnswers = () => {}
      cluster.storeAnswersAfter = new Promise<void>((resolve) => {
        storeAnswers = resolve
      })
      cleanups.push(storeAnswers)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const closing = a.app.close()
      await until(() => cluster.handOffSids.length === 1, 3000, 'the drain storing the session')
      const sent = posts.length
      c.emit('n', 1)
      await until(() => posts.length > sent, 3000, "the POST's answer")
      expect(posts.at(-1)).toBe(204)

      storeAnswers()
      await until(() => said.length > 0 && c.connected, 10_000, 'the resume on b')
      await until(() => got.length === 2, 3000, 'the second event on b')
      expect(got).toEqual([0, 1])
      expect(said).toEqual([`${transport} -> ${transport} (resume)`])
      expect(c.recovered).toBe(true)
      await closing
    }, 30_000)
  },
)
