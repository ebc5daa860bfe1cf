// A POST that reaches a closing node for a session that node handed off and another node has
// taken over since: the closing node sends it on to that node, as its routes do for a session
// held elsewhere while it is open. Refused (503) instead, it failed the client's transport, and
// the client resumed a second time for nothing. The drain is held open by a second session that
// nobody claims (a bare client that does not resume), so that the POST comes while the node
// still closes; its goodbye ends the drain at the end of the test. Both ways Fastify may close:
// answering every request itself (its default `return503OnClosing`), or leaving them to the
// routes until Parley has closed.
//
// A POST whose body is still on its way (a slow link) when the closing node's drain ends, its
// owner found before: the node can no longer send it on, and tells its client to try again at
// once (503 PARLEY_SERVER_SHUTTING_DOWN, the body given up with every other at close), rather
// than wait for the body and cut the connection once the forwards' time at close (2 s) is over.
// The client sends the event again after its resume, where the session is.
//
// A POST sent on whole whose owner has not answered when the forwards' time at close (2 s) is
// over: told to try again too (503 PARLEY_SERVER_SHUTTING_DOWN), where it was cut, and its
// client's transport failed with no code (PARLEY_TRANSPORT_ERROR).
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { acrossClose } from './drain-end.js'
import { balancedSuite } from './e2e-suite.js'

/**
 * A `fetch` whose POSTs of a session, while `slow` is on, send their body a byte at a time, one
 * every `gapMs`, as over a slow link; `posts`: the status of each such POST that was answered,
 * or the error it failed with, and whether its whole body had been sent by then.
 */
function slowPosts(gapMs: number) {
  const posts: { status: number | string; bodySent: boolean }[] = []
  const state = { slow: false, posts }
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    if (!state.slow || init?.method !== 'POST' || !url.includes('sid=')) return globalThis.fetch(input, init)
    const bytes = new TextEncoder().encode(String(init.body))
    let at = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at === bytes.length) return controller.close()
        await new Promise((resolve) => setTimeout(resolve, gapMs))
        controller.enqueue(bytes.slice(at, at + 1))
        at++
      },
    })
    // Node's fetch streams a body only when told it goes one way (`duplex`, unknown to the DOM types).
    const slow = { ...init, body, duplex: 'half' } as RequestInit
    try {
      const res = await globalThis.fetch(input, slow)
      posts.push({ status: res.status, bodySent: at === bytes.length })
      return res
    } catch (err) {
      posts.push({ status: String((err as Error).cause ?? err), bodySent: at === bytes.length })
      throw err
    }
  }
  return { fetch, state }
}

describe.skipIf(skipRedisSuites())('a POST that crosses its old node’s close', () => {
  const suite = balancedSuite()

  it.each([true, false])(
    'goes on to the node that took the session over (return503OnClosing: %s)',
    async (return503OnClosing) => {
      const { a, b, balancer, c, lost, held } = await acrossClose(suite, {
        transport: 'sse',
        return503OnClosing,
        home: 'a',
      })
      const id = c.id

      // a drains: the client resumes on b.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const draining = a.started.app.close()
      await until(() => b.restored.length === 1 && c.connected, 8000, 'resumed on b')
      const onA = a.connections.find((socket) => socket.id === id)!
      await until(() => onA.session.state === 'closed', 3000, 'taken from a')
      expect(lost).toEqual([])

      // The next POST reaches a, which sends it on to b.
      balancer.avoid.clear()
      balancer.avoid.add(1)
      const toA = balancer.forwarded[0]!
      c.emit('up', 1)
      await until(() => balancer.forwarded[0]! > toA, 3000, 'the POST to a')
      balancer.avoid.clear()
      balancer.avoid.add(0)
      await until(() => b.received.length === 1, 3000, 'the event, on b')
      c.emit('up', 2)
      await until(() => b.received.length === 2, 8000, 'the next event, on b')

      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(lost).toEqual([])
      expect(b.restored).toHaveLength(1)
      expect(c.id).toBe(id)
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await within(draining, 5000, 'the drain over once the held session said goodbye')
    },
    35_000,
  )

  it.each([
    [true, undefined],
    [false, undefined],
    [false, false],
  ])(
    'whose body is still coming as the drain ends is told to try again at once, and its event goes again where the session is (return503OnClosing: %s, forceCloseConnections: %s)',
    async (return503OnClosing, forceCloseConnections) => {
      const link = slowPosts(150)
      const { a, b, balancer, c, lost, held } = await acrossClose(suite, {
        transport: 'polling',
        return503OnClosing,
        forceCloseConnections,
        home: 'b',
        options: { fetch: link.fetch },
      })
      const id = c.id
      let atA = 0
      a.started.app.server.on('request', (req) => {
        if (req.method === 'POST' && req.url?.includes('sid=')) atA++
      })

      // The next POST reaches a, which finds its owner (b) and reads its body, slowly.
      balancer.avoid.clear()
      balancer.avoid.add(1)
      link.state.slow = true
      c.emit('up', 1)
      await until(() => atA === 1, 3000, 'the POST to a')
      balancer.avoid.clear()
      balancer.avoid.add(0)
      link.state.slow = false

      // a drains, and its drain ends (the session nobody claims says goodbye) with the body still
      // coming: some twenty bytes, over seconds.
      const draining = a.started.app.close()
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await until(() => link.state.posts.length === 1, 5000, 'the answer to the POST')
      await within(draining, 5000, 'a closed')
      await until(() => b.received.length === 1, 5000, 'the event, on b')
      c.emit('up', 2)
      await until(() => b.received.length === 2, 8000, 'the next event, on b')

      expect(link.state.posts).toEqual([{ status: 503, bodySent: false }])
      expect(lost).toEqual(['PARLEY_SERVER_SHUTTING_DOWN'])
      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
    },
    35_000,
  )

  it.each([true, false])(
    'sent on whole, whose owner has not answered when the time for forwards at close is over, is told to try again, and its event goes again where the session is (return503OnClosing: %s)',
    async (return503OnClosing) => {
      // b holds the POSTs a sends on while `gate` is set, before it reads them.
      let gate: Promise<void> | undefined
      let open = () => {}
      let heldOnB = 0
      const { a, b, balancer, c, lost, held } = await acrossClose(suite, {
        transport: 'polling',
        return503OnClosing,
        home: 'b',
        bSetup: (app) =>
          app.addHook('onRequest', async (request) => {
            if (request.method !== 'POST' || request.headers['x-parley-routed'] === undefined) return
            if (!gate) return
            heldOnB++
            await gate
          }),
      })
      const id = c.id
      gate = new Promise((resolve) => (open = resolve))

      // a drains; the next POST reaches it, and it sends the POST on to b, which holds it.
      const draining = a.started.app.close()
      balancer.avoid.clear()
      balancer.avoid.add(1)
      c.emit('up', 1)
      await until(() => heldOnB === 1, 3000, 'the POST, held on b')
      balancer.avoid.clear()
      balancer.avoid.add(0)

      // a's drain ends (the session nobody claims says goodbye); b answers only after a closed.
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await within(draining, 8000, 'a closed')
      open()
      await until(() => b.received.length === 1, 5000, 'the event, on b')
      c.emit('up', 2)
      await until(() => b.received.length === 2, 8000, 'the next event, on b')

      expect(lost).toEqual(['PARLEY_SERVER_SHUTTING_DOWN'])
      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
    },
    30_000,
  )
})
