// A GET (the next poll, or the event stream after a HELLO) of a session its node handed off,
// held up on its way until that node's drain is over and the node has closed: the balancer then
// sends it to a live node, which cannot reach the closed one. The owner record says the session
// was handed off, not lost: the live node answers as the closing node would have, CLOSE 'server
// handoff' in the transport's framing, and the client resumes (with the quiet time that CLOSE
// gives it, telling its application nothing), its resume claiming the session there, whole.
// Answered 400 PARLEY_UNKNOWN_SESSION instead, the GET failed the client's transport.
//
// These scenes keep the session unclaimed: the draining node asks no live node to adopt it (its
// adapter without `askAdoption`). Adopted (the last test), the GET reaches the node that holds
// the session for its client, which answers it the same.
//
// Such a GET may reach a node that is closing too, once Fastify refuses requests there
// (`return503OnClosing`, its default): that node answers it the same CLOSE 'server handoff', as its
// routes do during the drain. Answered 503, the GET failed the client's transport.
import { connect } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { closeHeldOpen, received, trouble } from './drain-end.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'

/**
 * A `fetch` whose GETs of a session (polls, event streams) wait while `hold()` is on, as on a
 * slow link, until `release()`: then each goes on, to wherever the balancer sends it.
 */
function heldGets() {
  let held: (() => void)[] | undefined
  /** Runs once each held GET is answered, before the client reads the answer's body. */
  let answered: ((status: number) => void) | undefined
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    if (held && (init?.method ?? 'GET') === 'GET' && url.includes('sid=')) {
      await new Promise<void>((resolve) => held?.push(resolve))
      const res = await globalThis.fetch(input, init)
      answered?.(res.status)
      return res
    }
    return globalThis.fetch(input, init)
  }
  return {
    fetch,
    onAnswer(then: (status: number) => void) {
      answered = then
    },
    hold() {
      held = []
    },
    /** How many GETs wait. */
    waiting: () => held?.length ?? 0,
    release() {
      const waiting = held ?? []
      held = undefined
      for (const go of waiting) go()
    },
  }
}

describe.skipIf(skipRedisSuites())('a GET of a handed-off session that comes after its node closed', () => {
  const { suite, balance } = balancedSuite()
  const { nodes, clients } = suite

  /**
   * A client of `transport` through the balancer at `url` with its session on `a`, its next GET
   * held up on its way (an event stream from its first GET, right after the HELLO; a poll from
   * the next one, once `down` 0 answered the one a held), and `down` 1 sent, which waits in a's
   * buffer, then in the session's snapshot.
   */
  async function sessionOnA(transport: 'polling' | 'sse', a: TrafficNode, url: string) {
    const gets = heldGets()
    if (transport === 'sse') gets.hold()
    const c = connect(`${url}/parley`, { transports: [transport], fetch: gets.fetch })
    clients.push(c)
    const heard = trouble(c)
    const got = received(c)
    await until(() => a.connections.length === 1, 3000, 'a session on a')
    const socket = a.connections[0]!
    if (transport === 'polling') {
      await until(() => c.connected, 3000, 'connected')
      gets.hold()
      socket.emit('down', 0)
      await until(() => got.length === 1, 3000, 'the first message')
    }
    await until(() => gets.waiting() === 1, 3000, 'a GET held up')
    const id = c.id ?? socket.id
    socket.emit('down', 1)
    return { gets, c, heard, got, id }
  }

  it.each(['polling', 'sse'] as const)(
    'is answered CLOSE server handoff by a live node: the client resumes there, and nothing is lost (%s)',
    async (transport) => {
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
      const b = await startTrafficNode(suite.redis.url, nodes)
      const balancer = await balance([a, b])
      balancer.avoid.add(1)
      const { gets, c, heard, got, id } = await sessionOnA(transport, a, balancer.url)
      // Sent to a once the client is connected: a polling client is, one on SSE is not before
      // its stream opens (it sends the event then, to b).
      c.emit('up', 1)
      if (transport === 'polling') await until(() => a.received.length === 1, 3000, 'the event, on a')

      // a drains: nobody claims the session (its client's GET is held up), and a closes.
      await within(a.started.app.close(), 8000, 'a closed')
      expect(b.restored).toHaveLength(0)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      gets.release()
      await until(() => b.restored.length === 1, 5000, 'the session taken over by b')
      b.restored[0]!.emit('down', 2)
      c.emit('up', 2)
      const sent = transport === 'polling' ? [0, 1, 2] : [1, 2]
      const ups = () => [...a.received, ...b.received]
      await until(() => got.length === sent.length && ups().length === 2, 5000, 'the next messages')

      expect(got).toEqual(sent)
      expect(ups()).toEqual([1, 2])
      expect(b.received).toEqual(transport === 'polling' ? [2] : [1, 2])
      expect(heard).toEqual([])
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
      expect(b.connections).toHaveLength(0)
    },
    30_000,
  )

  it.each(['polling', 'sse'] as const)(
    'that reaches a node closing too, where Fastify refuses requests, is answered CLOSE server handoff there as well (%s)',
    async (transport) => {
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
      const b = await startTrafficNode(suite.redis.url, nodes, { fastify: { return503OnClosing: true } })
      const d = await startTrafficNode(suite.redis.url, nodes)
      const balancer = await balance([a, b, d])
      balancer.avoid.add(1)
      balancer.avoid.add(2)
      const { gets, c, heard, got, id } = await sessionOnA(transport, a, balancer.url)

      // a drains: nobody claims the session (its client's GET is held up), and a closes.
      await within(a.started.app.close(), 8000, 'a closed')
      // b closes too, its drain held open by a session of its own that nobody claims.
      const closingB = await closeHeldOpen(b)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      balancer.avoid.add(2)
      // Once b has answered the GET, the client's resume goes to d.
      const statuses: number[] = []
      gets.onAnswer((status) => {
        statuses.push(status)
        balancer.avoid.clear()
        balancer.avoid.add(0)
        balancer.avoid.add(1)
      })
      gets.release()
      await until(() => d.restored.length === 1, 5000, 'the session taken over by d')
      d.restored[0]!.emit('down', 2)
      const sent = transport === 'polling' ? [0, 1, 2] : [1, 2]
      await until(() => got.length === sent.length, 5000, 'the next messages')

      expect(heard).toEqual([])
      expect(statuses).toEqual([200])
      expect(got).toEqual(sent)
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
      expect(b.restored).toHaveLength(0)
      await closingB.end()
    },
  )

  it.each(['polling', 'sse'] as const)(
    'is answered CLOSE server handoff by the live node that adopted the session: the client resumes there, and nothing is lost (%s)',
    async (transport) => {
      // 2 s: the adoption gets half of it (1 s, `ADOPT_WAIT_MS`) to ask b, claim and take over; half
      // of 500 ms ran out once on a loaded machine, the session sealed unadopted.
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 2000 })
      const b = await startTrafficNode(suite.redis.url, nodes)
      const balancer = await balance([a, b])
      balancer.avoid.add(1)
      const { gets, c, heard, got, id } = await sessionOnA(transport, a, balancer.url)
      c.emit('up', 1)
      if (transport === 'polling') await until(() => a.received.length === 1, 3000, 'the event, on a')

      // a drains: nobody claims the session (its client's GET is held up), and b adopts it.
      await within(a.started.app.close(), 8000, 'a closed')
      expect(b.restored).toHaveLength(1)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      gets.release()
      await until(() => c.connected && c.transport === transport, 5000, 'resumed on b')
      b.restored[0]!.emit('down', 2)
      c.emit('up', 2)
      const sent = transport === 'polling' ? [0, 1, 2] : [1, 2]
      const ups = () => [...a.received, ...b.received]
      await until(() => got.length === sent.length && ups().length === 2, 5000, 'the next messages')

      expect(got).toEqual(sent)
      expect(ups()).toEqual([1, 2])
      expect(heard).toEqual([])
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
      expect(b.restored).toHaveLength(1)
      expect(b.connections).toHaveLength(0)
    },
    30_000,
  )
})
