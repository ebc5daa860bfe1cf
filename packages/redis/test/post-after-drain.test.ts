// An upstream POST (SSE or polling) of a session its node handed off, held up on its way until
// that node's drain is over and the node has closed: the balancer then sends it to a live node,
// which cannot reach the closed one. As for the GET (get-after-drain.test.ts), the owner record
// says the session was handed off, not lost: the live node answers the POST as the closing node
// answered one of the session frozen there, 204 with nothing of it used (the client sends it again
// after its resume, which the GET's CLOSE 'server handoff' brings), and a goodbye in it ends the
// session. Answered 400 PARLEY_UNKNOWN_SESSION instead, the POST failed the client's transport
// (its application heard a transport_error, and the client resumed without the CLOSE's quiet
// time), and a goodbye was lost: the session waited in the store for a claim that never came.
//
// The takeover made only to end the session runs no middleware: the POST carries no `auth`, and
// a middleware that refuses a resume without it made the claim be given back, the session gone
// with neither 'restored' nor 'disconnect' on any node.
//
// Such a goodbye may reach a node that is closing too, which claims nothing any more: it sends
// the POST on to a live node, which ends the session as when the goodbye reaches it directly.
// Kept there, the goodbye was lost (204, or 503 where Fastify refuses requests at close). A node
// it is sent on to that is closing too sends it on again, to a node it was not sent to yet: sent
// no further, it was lost there. A POST without a goodbye that reaches a node closing too is
// answered 204 there as well, also once Fastify refuses requests, where its 503 failed the
// client's transport (its application heard a transport_error). A closing node whose drain ends
// while it looks the session's owner up for such a goodbye (its close waits for that lookup)
// still reads it and sends it on: it sent nothing on any more, and the goodbye was lost. A node
// that cannot reach the node it picks for a goodbye (its server closed, the rest of its close not
// over) picks another, where the goodbye was lost, and logs it as a node the goodbye could not be
// sent on to, where it was counted and logged as an unreachable owner of the session. A node that
// answers the goodbye with a 5xx status (503: its Fastify refusing requests as it closes; 502 or
// 504: a proxy between the nodes; 500) is passed over the same way, where that answer went to the
// client and the goodbye was lost; a 4xx, about the request itself, is the client's answer.
import { connect } from '@parley/client'
import { CloseReason, type TransportName } from '@parley/protocol'
import type { RedisAdapter } from '@parley/redis'
import type { NodeAddress } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { closeHeldOpen, received, trouble } from './drain-end.js'
import { balancedSuite, type SuiteNode, seesOthers, startTrafficNode, type TrafficNode } from './e2e-suite.js'

type Method = 'GET' | 'POST'

/**
 * A `fetch` whose requests of a session (polls, event streams, POSTs) wait while `hold()` is on,
 * as on a slow link, until `release(method)` lets those of `method` go on, to wherever the
 * balancer sends them. `posts`: the status of each POST of a session that was answered; `sid()`:
 * the session's id, as the last of its requests named it.
 */
function heldRequests() {
  const held: { method: Method; go: () => void }[] = []
  let holding = false
  const posts: number[] = []
  let sid: string | undefined
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    const method: Method = init?.method === 'POST' ? 'POST' : 'GET'
    const ofSession = url.includes('sid=')
    if (ofSession) sid = new URL(url).searchParams.get('sid') ?? undefined
    if (holding && ofSession) await new Promise<void>((go) => held.push({ method, go }))
    const res = await globalThis.fetch(input, init)
    if (ofSession && method === 'POST') posts.push(res.status)
    return res
  }
  return {
    fetch,
    posts,
    sid: () => sid,
    hold() {
      holding = true
    },
    /** How many requests of `method` wait. */
    waiting: (method: Method) => held.filter((request) => request.method === method).length,
    /** Lets those of `method` go, and every later one. */
    release(method: Method) {
      holding = false
      for (const request of held.filter((r) => r.method === method)) {
        held.splice(held.indexOf(request), 1)
        request.go()
      }
    },
  }
}

/**
 * Holds every owner lookup of session `sid` that `node` makes from now on until `release()`, each
 * answered then with what Redis said when it was asked; `waiting()`: how many are held.
 */
function holdLookups(node: SuiteNode, sid: string): { waiting: () => number; release: () => void } {
  const adapter = node.started.app.parley.adapter
  const lookUp = adapter.sessionOwner!.bind(adapter)
  let waiting = 0
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  adapter.sessionOwner = async (asked: string) => {
    if (asked !== sid) return lookUp(asked)
    waiting++
    const owner = await lookUp(sid)
    await released
    return owner
  }
  return { waiting: () => waiting, release: () => release() }
}

describe.skipIf(skipRedisSuites())('a POST of a handed-off session that comes after its node closed', () => {
  const { suite, balance } = balancedSuite()
  const { nodes, clients } = suite

  /**
   * What a goodbye's test sets up: the reasons the sessions that `taking` take over end with
   * (`ends`), a balancer in front of `over` that sends every request to the first of them, and a
   * client `fetch` whose requests can be held up (`requests`).
   */
  async function goodbyeSetUp(over: TrafficNode[], taking: TrafficNode[]) {
    const ends: string[] = []
    for (const node of taking) {
      node.started.app.parley.on('restored', (socket) => {
        socket.on('disconnect', (reason) => ends.push(reason))
      })
    }
    const balancer = await balance(over)
    for (let i = 1; i < over.length; i++) balancer.avoid.add(i)
    return { ends, balancer, requests: heldRequests() }
  }

  /**
   * A client over `transport` with its session on `a`, whose goodbye (its `disconnect()`) is held
   * up on its way through `balancer`; over polling, its next GET is held up too, a's held poll
   * answered first.
   */
  async function goodbyeHeldUp(
    a: TrafficNode,
    transport: TransportName,
    balancer: { url: string },
    requests: ReturnType<typeof heldRequests>,
  ) {
    const c = connect(`${balancer.url}/parley`, { transports: [transport], fetch: requests.fetch })
    clients.push(c)
    await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
    await seesOthers(a)
    requests.hold()
    if (transport === 'polling') {
      // The poll a holds is answered; the next one waits on its way.
      const got = received(c)
      a.connections[0]!.emit('down', 0)
      await until(() => got.length === 1 && requests.waiting('GET') === 1, 3000, 'the next GET held up')
    }
    c.disconnect()
    await until(() => requests.waiting('POST') === 1, 3000, 'the goodbye held up')
  }

  /**
   * The node of `others` that `from` sends the goodbye of session `sid` on to, and the other one:
   * once `from` can name either (it knows both addresses), its pick for `sid` stays while the
   * live set does.
   */
  async function goodbyeGoesTo(from: TrafficNode, others: TrafficNode[], sid: string) {
    const adapter = from.started.app.parley.adapter
    const named = () => Array.from({ length: 16 }, (_, i) => adapter.anotherNode!(`${sid}${i}`))
    await until(
      () => new Set(named().map((node) => (node as NodeAddress | undefined)?.node)).size === others.length,
      3000,
      'the closing node naming either of the other nodes',
    )
    const picked = (await adapter.anotherNode!(sid))!
    const to = others.find((node) => node.started.base.startsWith(`${picked.url}/`))!
    return { to, other: others.find((node) => node !== to)! }
  }

  it('is answered 204 unused by a live node: the client resumes there on its next GET, and nothing is lost (polling)', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
    const b = await startTrafficNode(suite.redis.url, nodes)
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const requests = heldRequests()
    const c = connect(`${balancer.url}/parley`, { transports: ['polling'], fetch: requests.fetch })
    clients.push(c)
    const heard = trouble(c)
    const got = received(c)
    await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
    const socket = a.connections[0]!
    const id = c.id
    requests.hold()
    // Answers the poll a holds; the next one waits on its way, and so does the POST below.
    socket.emit('down', 0)
    await until(() => got.length === 1 && requests.waiting('GET') === 1, 3000, 'the next GET held up')
    c.emit('up', 1)
    await until(() => requests.waiting('POST') >= 1, 3000, 'the POST held up')

    // a drains: nobody claims the session (its client's requests are held up), and a closes.
    await within(a.started.app.close(), 8000, 'a closed')
    expect(b.restored).toHaveLength(0)
    balancer.avoid.clear()
    balancer.avoid.add(0)
    requests.release('POST')
    await until(() => requests.posts.length >= 1, 3000, 'the POST answered by b')
    expect(b.restored).toHaveLength(0)
    requests.release('GET')
    await until(() => b.restored.length === 1, 5000, 'the session taken over by b')
    b.restored[0]!.emit('down', 2)
    c.emit('up', 2)
    await until(() => got.length === 2 && b.received.length === 2, 5000, 'the next messages')

    expect(requests.posts.every((status) => status === 204)).toBe(true)
    expect(got).toEqual([0, 2])
    expect(a.received).toEqual([])
    expect(b.received).toEqual([1, 2])
    expect(heard).toEqual([])
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
  }, 35_000)

  it('that says goodbye, at a closing node that cannot reach the node it picks for it (its server closed already), goes to another, live, which ends the session (polling)', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
    const logs: { msg: string; node?: string }[] = []
    const b = await startTrafficNode(suite.redis.url, nodes, {
      fastify: {
        return503OnClosing: true,
        logger: { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } },
      },
    })
    // The rest of each one's close (an application's own preClose hook, after Parley's) waits.
    let finish = () => {}
    const finished = new Promise<void>((resolve) => {
      finish = resolve
    })
    onTestFinished(() => finish())
    const held = { setup: (app: FastifyInstance) => app.addHook('preClose', () => finished) }
    const others = [
      await startTrafficNode(suite.redis.url, nodes, held),
      await startTrafficNode(suite.redis.url, nodes, held),
    ]
    const { ends, balancer, requests } = await goodbyeSetUp([a, b, ...others], [b, ...others])
    const c = connect(`${balancer.url}/parley`, { transports: ['polling'], fetch: requests.fetch })
    clients.push(c)
    const got = received(c)
    await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
    await seesOthers(a)
    requests.hold()
    // The poll a holds is answered; the next one waits on its way.
    a.connections[0]!.emit('down', 0)
    await until(() => got.length === 1 && requests.waiting('GET') === 1, 3000, 'the next GET held up')
    c.disconnect()
    await until(() => requests.waiting('POST') === 1, 3000, 'the goodbye held up')
    const sid = requests.sid()!

    // a drains: nobody claims the session (its client left), and a closes.
    await within(a.started.app.close(), 8000, 'a closed')
    // The node b picks for the goodbye closes: its server (Parley) closes at once, it holds no
    // session, and takes no new connection; the rest of its close waits, and it stands in the
    // live set meanwhile. b closes too, its drain held open.
    const { to: d, other: e } = await goodbyeGoesTo(b, others, sid)
    const closingD = d.started.app.close()
    await until(() => d.started.app.parley.closed, 3000, "d's server closed")
    const closingB = await closeHeldOpen(b)
    balancer.avoid.clear()
    for (const i of [0, 2, 3]) balancer.avoid.add(i)
    requests.release('POST')
    await until(() => requests.posts.length === 1, 8000, 'the goodbye answered through b')
    await until(() => ends.length > 0, 5000, 'the session ended')

    expect(requests.posts).toEqual([204])
    expect(e.restored).toHaveLength(1)
    expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
    // Said as what it is, once: d is no owner of the session, only the node picked for its goodbye.
    const unsent = logs.filter(
      (line) => line.msg.includes('goodbye(s)') && line.msg.includes('could not be sent on'),
    )
    expect(unsent).toHaveLength(1)
    expect(unsent[0]!.node).toBe((d.started.app.parley.adapter as RedisAdapter).node)
    expect(logs.filter((line) => line.msg.includes('the node that owns their session'))).toEqual([])
    expect(b.started.app.parley.unreachableOwnerCount).toBe(0)
    finish()
    await Promise.all([closingB.end(), within(closingD, 5000, 'd closed')])
  }, 45_000)

  /**
   * A goodbye of a session whose node (a) is gone, sent to a closing node (b), whose pick for it
   * (`d`, of `d` and `e`, both live) answers every request with `status`; resolves once the client
   * has its answer. `logs`: b's warnings; `closingB.end()` ends b's drain.
   */
  async function goodbyeToRefusingPick(status: number, coded = true) {
    const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
    const logs: { msg: string; node?: string }[] = []
    const b = await startTrafficNode(suite.redis.url, nodes, {
      fastify: {
        return503OnClosing: true,
        logger: { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } },
      },
    })
    // The node b picks answers every request with that status: it stands in the live set
    // meanwhile.
    const refusing = new Set<FastifyInstance>()
    const refuses = {
      setup: (app: FastifyInstance) =>
        app.addHook('onRequest', async (_request, reply) => {
          // Coded, as an application's hook answers: passed on to the client when it is the answer.
          // Bare otherwise, as an answer from before the routes (Node's 431) or a proxy's.
          if (!refusing.has(app)) return
          if (!coded) return reply.code(status).type('text/plain').send('refused')
          return reply.code(status).send({ code: 'APP_REFUSED', message: 'refused' })
        }),
    }
    const others = [
      await startTrafficNode(suite.redis.url, nodes, refuses),
      await startTrafficNode(suite.redis.url, nodes, refuses),
    ]
    const { ends, balancer, requests } = await goodbyeSetUp([a, b, ...others], [b, ...others])
    await goodbyeHeldUp(a, 'polling', balancer, requests)
    const sid = requests.sid()!

    // a drains: nobody claims the session (its client left), and a closes.
    await within(a.started.app.close(), 8000, 'a closed')
    const { to: d, other: e } = await goodbyeGoesTo(b, others, sid)
    refusing.add(d.started.app)
    // b closes, its drain held open by a session of its own that nobody claims.
    const closingB = await closeHeldOpen(b)
    balancer.avoid.clear()
    for (const i of [0, 2, 3]) balancer.avoid.add(i)
    requests.release('POST')
    await until(() => requests.posts.length === 1, 8000, 'the goodbye answered through b')
    return { posts: requests.posts, ends, d, e, logs, closingB }
  }

  // 503: a closing Fastify (before Parley's own close hook runs) or the application refusing
  // requests; 502 and 504: a proxy between the nodes that finds the node gone or too slow; 500:
  // the node failing on it. None is an answer about the goodbye itself. Nor is a bare 4xx (no
  // code): it is about the hop (431: the headers this node added took them past the pick's limit;
  // a proxy between the nodes), and the next node may take the goodbye.
  it.each([
    ['503', 503, true],
    ['502', 502, true],
    ['504', 504, true],
    ['500', 500, true],
    ['a bare 431', 431, false],
  ] as const)(
    'that says goodbye, at a closing node whose pick for it answers %s, goes to another, live, which ends the session (polling)',
    async (_answer, status, coded) => {
      const { posts, ends, d, e, logs, closingB } = await goodbyeToRefusingPick(status, coded)
      await until(() => ends.length > 0, 5000, 'the session ended')

      expect(posts).toEqual([204])
      expect(d.restored).toHaveLength(0)
      expect(e.restored).toHaveLength(1)
      expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
      // Said as for a node that cannot be reached: d is the node picked for the goodbye.
      const unsent = logs.filter(
        (line) => line.msg.includes('goodbye(s)') && line.msg.includes('could not be sent on'),
      )
      expect(unsent).toHaveLength(1)
      expect(unsent[0]!.node).toBe((d.started.app.parley.adapter as RedisAdapter).node)
      await closingB.end()
    },
  )

  // A coded 4xx is about the request (its origin, its version, its body): the next node would
  // answer it the same.
  it('that says goodbye, at a closing node whose pick for it answers 400, gets that answer: no other node is tried (polling)', async () => {
    const { posts, ends, d, e, logs, closingB } = await goodbyeToRefusingPick(400)

    expect(posts).toEqual([400])
    expect(d.restored).toHaveLength(0)
    expect(e.restored).toHaveLength(0)
    expect(ends).toEqual([])
    expect(logs.filter((line) => line.msg.includes('could not be sent on'))).toEqual([])
    await closingB.end()
  })

  it('that reaches a node closing too, where Fastify refuses requests, is answered 204 unused there as well: the client resumes on its next GET, and nothing is lost (polling)', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
    const b = await startTrafficNode(suite.redis.url, nodes, { fastify: { return503OnClosing: true } })
    const d = await startTrafficNode(suite.redis.url, nodes)
    const balancer = await balance([a, b, d])
    balancer.avoid.add(1)
    balancer.avoid.add(2)
    const requests = heldRequests()
    const c = connect(`${balancer.url}/parley`, { transports: ['polling'], fetch: requests.fetch })
    clients.push(c)
    const heard = trouble(c)
    const got = received(c)
    await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
    await seesOthers(a)
    const socket = a.connections[0]!
    const id = c.id
    requests.hold()
    // Answers the poll a holds; the next one waits on its way, and so does the POST below.
    socket.emit('down', 0)
    await until(() => got.length === 1 && requests.waiting('GET') === 1, 3000, 'the next GET held up')
    c.emit('up', 1)
    await until(() => requests.waiting('POST') >= 1, 3000, 'the POST held up')

    // a drains: nobody claims the session (its client's requests are held up), and a closes.
    await within(a.started.app.close(), 8000, 'a closed')
    // b closes too, its drain held open by a session of its own that nobody claims.
    const closingB = await closeHeldOpen(b)
    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.avoid.add(2)
    requests.release('POST')
    await until(() => requests.posts.length >= 1, 3000, 'the POST answered by b')
    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.avoid.add(1)
    requests.release('GET')
    await until(() => d.restored.length === 1, 5000, 'the session taken over by d')
    d.restored[0]!.emit('down', 2)
    c.emit('up', 2)
    await until(() => got.length === 2 && d.received.length === 2, 5000, 'the next messages')

    expect(requests.posts.every((status) => status === 204)).toBe(true)
    expect(got).toEqual([0, 2])
    expect(d.received).toEqual([1, 2])
    expect(b.restored).toHaveLength(0)
    expect(heard).toEqual([])
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    await closingB.end()
  }, 35_000)

  it.each(['polling', 'sse'] as const)(
    'that says goodbye ends the session on a live node, which takes it over to end it (%s)',
    async (transport) => {
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
      const b = await startTrafficNode(suite.redis.url, nodes)
      const { ends, balancer, requests } = await goodbyeSetUp([a, b], [b])
      const c = connect(`${balancer.url}/parley`, { transports: [transport], fetch: requests.fetch })
      clients.push(c)
      await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
      const socket = a.connections[0]!
      requests.hold()
      if (transport === 'polling') {
        // The poll a holds is answered; the next one waits on its way.
        const got = received(c)
        socket.emit('down', 0)
        await until(() => got.length === 1 && requests.waiting('GET') === 1, 3000, 'the next GET held up')
      }
      c.disconnect()
      await until(() => requests.waiting('POST') === 1, 3000, 'the goodbye held up')

      // a drains: nobody claims the session (its client left), and a closes.
      await within(a.started.app.close(), 8000, 'a closed')
      expect(socket.connected).toBe(false)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      requests.release('POST')
      await until(() => requests.posts.length === 1, 8000, 'the goodbye answered by b')

      expect(requests.posts).toEqual([204])
      expect(b.restored).toHaveLength(1)
      expect(b.restored[0]!.connected).toBe(false)
      expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
      expect(b.connections).toHaveLength(0)
    },
    30_000,
  )

  it.each([
    ['polling', true],
    ['sse', false],
  ] as [TransportName, boolean][])(
    'that says goodbye and reaches a node that is closing too is sent on to a live node, which ends the session (%s, return503OnClosing: %s)',
    async (transport, return503OnClosing) => {
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
      const b = await startTrafficNode(suite.redis.url, nodes, { fastify: { return503OnClosing } })
      const d = await startTrafficNode(suite.redis.url, nodes)
      const { ends, balancer, requests } = await goodbyeSetUp([a, b, d], [b, d])
      await goodbyeHeldUp(a, transport, balancer, requests)

      // a drains: nobody claims the session (its client left), and a closes.
      await within(a.started.app.close(), 8000, 'a closed')
      // b closes too, its drain held open by a session of its own that nobody claims.
      const closingB = await closeHeldOpen(b)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      balancer.avoid.add(2)
      requests.release('POST')
      await until(() => requests.posts.length === 1, 8000, 'the goodbye answered through b')
      await until(() => ends.length > 0, 5000, 'the session ended')

      expect(requests.posts).toEqual([204])
      expect(b.restored).toHaveLength(0)
      expect(d.restored).toHaveLength(1)
      expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
      expect(b.started.app.parley.closed).toBe(false)
      await closingB.end()
    },
    30_000,
  )

  it.each([
    ['polling', true],
    ['sse', false],
  ] as [TransportName, boolean][])(
    'that says goodbye and is sent on by a closing node to another that is closing too goes on from there to a live node, which ends the session (%s, return503OnClosing: %s)',
    async (transport, return503OnClosing) => {
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
      const closing = { fastify: { return503OnClosing } }
      const b = await startTrafficNode(suite.redis.url, nodes, closing)
      const others = [
        await startTrafficNode(suite.redis.url, nodes, closing),
        await startTrafficNode(suite.redis.url, nodes, closing),
      ]
      const { ends, balancer, requests } = await goodbyeSetUp([a, b, ...others], [b, ...others])
      await goodbyeHeldUp(a, transport, balancer, requests)
      const sid = requests.sid()!

      // a drains: nobody claims the session (its client left), and a closes.
      await within(a.started.app.close(), 8000, 'a closed')
      // b closes, and so does the node b sends the goodbye on to (the same for every sid while
      // the live set stays), each drain held open by a session of its own that nobody claims.
      const { to: d, other: e } = await goodbyeGoesTo(b, others, sid)
      const closingD = await closeHeldOpen(d)
      const closingB = await closeHeldOpen(b)
      balancer.avoid.clear()
      for (const i of [0, 2, 3]) balancer.avoid.add(i)
      requests.release('POST')
      await until(() => requests.posts.length === 1, 8000, 'the goodbye answered through b')
      await until(() => ends.length > 0, 5000, 'the session ended')

      expect(requests.posts).toEqual([204])
      expect(b.restored).toHaveLength(0)
      expect(d.restored).toHaveLength(0)
      expect(e.restored).toHaveLength(1)
      expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
      await Promise.all([closingB.end(), closingD.end()])
    },
    30_000,
  )

  it.each([
    ['polling', true],
    ['sse', false],
  ] as [TransportName, boolean][])(
    'that says goodbye and reaches a node whose drain ends while it looks the owner up is sent on to a live node all the same, which ends the session (%s, return503OnClosing: %s)',
    async (transport, return503OnClosing) => {
      const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
      const b = await startTrafficNode(suite.redis.url, nodes, { fastify: { return503OnClosing } })
      const d = await startTrafficNode(suite.redis.url, nodes)
      const { ends, balancer, requests } = await goodbyeSetUp([a, b, d], [b, d])
      await goodbyeHeldUp(a, transport, balancer, requests)

      // a drains: nobody claims the session (its client left), and a closes.
      await within(a.started.app.close(), 8000, 'a closed')
      // b closes too, its drain held open by a session of its own that nobody claims; the goodbye
      // reaches it then, and its owner lookup is held until b's drain is over.
      const closingB = await closeHeldOpen(b)
      const lookups = holdLookups(b, requests.sid()!)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      balancer.avoid.add(2)
      requests.release('POST')
      await until(() => lookups.waiting() === 1, 3000, "the goodbye on b, looking its session's owner up")
      const closed = closingB.end()
      await until(() => b.started.app.parley.closed, 5000, "b's drain over")
      lookups.release()
      await closed
      await until(() => requests.posts.length === 1, 5000, 'the goodbye answered through b')
      await until(() => ends.length > 0, 5000, 'the session ended')

      expect(requests.posts).toEqual([204])
      expect(b.restored).toHaveLength(0)
      expect(d.restored).toHaveLength(1)
      expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
    },
    35_000,
  )

  it("that says goodbye and reaches a node whose drain ends while it looks the owner up, its session's node still draining, ends the session all the same (sse)", async () => {
    // a's drain waits for the session's claim: the owner record still names a, handing it off.
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes)
    const d = await startTrafficNode(suite.redis.url, nodes)
    const ends: string[] = []
    d.started.app.parley.on('restored', (socket) => {
      socket.on('disconnect', (reason) => ends.push(reason))
    })
    const balancer = await balance([a, b, d])
    balancer.avoid.add(1)
    balancer.avoid.add(2)
    const requests = heldRequests()
    const c = connect(`${balancer.url}/parley`, { transports: ['sse'], fetch: requests.fetch })
    clients.push(c)
    await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
    await seesOthers(a)
    requests.hold()
    c.disconnect()
    await until(() => requests.waiting('POST') === 1, 3000, 'the goodbye held up')

    // a drains: the session is handed off, and a waits for its claim.
    const closingA = a.started.app.close()
    await until(() => a.started.app.parley.closing, 3000, 'a draining')
    await seesOthers(b)
    const lookups = holdLookups(b, requests.sid()!)
    // Where b sends the goodbye on: a, still live, ends the session frozen there; d claims it.
    const sentTo = await b.started.app.parley.adapter.anotherNode!(requests.sid()!)
    const toA = a.started.base.startsWith(`${sentTo?.url}/`)
    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.avoid.add(2)
    requests.release('POST')
    await until(() => lookups.waiting() === 1, 3000, "the goodbye on b, looking its session's owner up")
    // b closes (it holds no session: its drain is over at once) with the lookup under way.
    const closingB = b.started.app.close()
    await until(() => b.started.app.parley.closed, 5000, "b's drain over")
    lookups.release()
    await within(closingB, 5000, 'b closed')
    await until(() => requests.posts.length === 1, 5000, 'the goodbye answered through b')
    // a's drain is over once the session is claimed (its handoff timeout would be 7 s).
    await within(closingA, 5000, "a closed, its drain over at the session's claim")

    expect(requests.posts).toEqual([204])
    expect(d.restored).toHaveLength(toA ? 0 : 1)
    expect(ends).toEqual(toA ? [] : [CloseReason.CLIENT_DISCONNECT])
  }, 40_000)

  it('that says goodbye ends the session on a live node whose middleware refuses a resume without auth: it runs no middleware for it', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes, { handoffTimeout: 500, adopts: false })
    const b = await startTrafficNode(suite.redis.url, nodes)
    let judged = 0
    b.started.app.parley.use((socket) => {
      judged++
      if (socket.handshake.auth === undefined) throw new Error('no auth')
    })
    const { ends, balancer, requests } = await goodbyeSetUp([a, b], [b])
    const c = connect(`${balancer.url}/parley`, {
      transports: ['sse'],
      fetch: requests.fetch,
      auth: { token: 't' },
    })
    clients.push(c)
    await until(() => a.connections.length === 1 && c.connected, 3000, 'a session on a')
    requests.hold()
    c.disconnect()
    await until(() => requests.waiting('POST') === 1, 3000, 'the goodbye held up')

    // a drains: nobody claims the session (its client left), and a closes.
    await within(a.started.app.close(), 8000, 'a closed')
    balancer.avoid.clear()
    balancer.avoid.add(0)
    requests.release('POST')
    await until(() => requests.posts.length === 1, 8000, 'the goodbye answered by b')
    await until(() => ends.length > 0, 5000, 'the session ended on b')

    expect(requests.posts).toEqual([204])
    expect(judged).toBe(0)
    expect(b.restored).toHaveLength(1)
    expect(ends).toEqual([CloseReason.CLIENT_DISCONNECT])
  }, 35_000)
})
