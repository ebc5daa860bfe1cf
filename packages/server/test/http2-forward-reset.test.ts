// Over HTTP/2, a request of another node's session whose client reset its stream before it was
// sent on (while an application's hook held it up) is gone, as an HTTP/1.1 one whose connection
// closed is: it goes to no owner, over the network or through the adapter's `routeRequest`, which would hold a poll or an event stream for nobody, while
// this node, never hearing that response close (it closed already), waited on it for good. Node's
// compatibility response over HTTP/2 has neither `destroyed` nor `closed`: only its stream says.
// So too once it was sent on: reset before the owner answered, it is gone, no failure to reach
// the owner (which would be counted, logged, and the owner passed over for a while); and reset
// while the adapter's `routeRequest` was under way, its owner's answer is let go at once, where
// this node would otherwise relay an event stream to nobody, the owner holding it. A GET reset
// before its owner was even looked up is over for the node's close too, which would otherwise
// wait its whole bound for a close that came before anyone listened.
import { constants } from 'node:http2'
import type { AdapterFactory } from '@parley/server'
import { afterEach, expect, it, vi } from 'vitest'
import { ClosingForwards, type EndingForward } from '../src/http/closing-forwards.js'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { type H2Node, startH2Node } from './h2-node.js'
import { relayNodesClosedAfterEach, relayWays } from './h2-relay-nodes.js'
import { startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'

const { started, h2Nodes, raws } = relayNodesClosedAfterEach()

afterEach(() => {
  vi.restoreAllMocks()
})

/**
 * Node b (HTTP/2), whose GET with `slow` in its URL waits in a hook until its client left:
 * `seen` tells whether it reached that hook, then its handler.
 */
async function slowUntilLeft(adapter: AdapterFactory) {
  const seen = { hooked: false, handled: false }
  const b = await startH2Node({ adapter }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'GET' || !request.url.includes('slow')) return
      seen.hooked = true
      await new Promise((resolve) => reply.raw.once('close', resolve))
    })
    app.addHook('preHandler', async (request) => {
      if (request.url.includes('slow')) seen.handled = true
    })
  })
  return { b, seen }
}

/** Sends a GET of `path` from b's client, and resets its stream once `reached` holds. */
async function resetOnce(b: H2Node, path: string, reached: () => boolean, what: string) {
  const stream = b.client.request({ ':method': 'GET', ':path': path })
  stream.on('error', () => {})
  await until(reached, 3000, what)
  stream.close(constants.NGHTTP2_CANCEL)
}

it.each(
  relayWays.flatMap(([way, make]) =>
    (['poll', 'sse'] as const).map((segment) => [segment, way, make] as const),
  ),
)(
  'sends no %s GET reset while a hook held it on to the node of its session (%s)',
  async (segment, _way, make) => {
    const directory = make()
    // Node a (HTTP/1.1) holds the session, and notes the GETs sent on to it.
    const reached: string[] = []
    const a = await startServer({ adapter: directory.adapter('a') }, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method !== 'GET') return
        for (const mark of ['slow', 'later']) if (request.url.includes(mark)) reached.push(mark)
      })
    })
    started.push(a)
    const client = await rawConnect(segment === 'poll' ? 'polling' : 'sse', a.base)
    raws.push(client)
    const { b, seen } = await slowUntilLeft(directory.adapter('b'))
    h2Nodes.push(b)
    await resetOnce(
      b,
      `/parley/${segment}?v=1&sid=${encodeURIComponent(client.sid)}&slow=1`,
      () => seen.hooked,
      'the GET in the hook',
    )
    await until(() => seen.handled, 3000, 'the handler to run')
    // The client's next GET, sent on after it: once a has that one, it has what came before.
    const later = b.client.request({
      ':method': 'GET',
      ':path': `/parley/${segment}?v=1&sid=${encodeURIComponent(client.sid)}&later=1`,
    })
    later.on('error', () => {})
    await until(() => reached.includes('later'), 3000, 'the next GET at a')
    later.close(constants.NGHTTP2_CANCEL)
    expect(reached).toEqual(['later'])
  },
)

it('counts no node unreachable for a GET sent on that its client reset before the node answered', async () => {
  const directory = new Directory()
  // Node a (HTTP/1.1) holds the session; a hook holds the GET sent on to it until it is let go.
  let held = false
  let letGo = false
  const a = await startServer({ adapter: directory.adapter('a') }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'GET' || !request.url.includes('held')) return
      held = true
      await new Promise((resolve) => reply.raw.once('close', resolve))
      letGo = true
    })
  })
  started.push(a)
  const client = await rawConnect('sse', a.base)
  raws.push(client)
  const b = await startH2Node({ adapter: directory.adapter('b') })
  h2Nodes.push(b)
  await resetOnce(
    b,
    `/parley/sse?v=1&sid=${encodeURIComponent(client.sid)}&held=1`,
    () => held,
    'the GET held at a',
  )
  // The client left: b lets go of the GET, and a is no node it could not reach.
  await until(() => letGo, 3000, 'the GET let go at a')
  // A request b answers after it: b is done with the one before.
  await b.send('GET', 'poll?v=1&sid=unknown')
  expect(b.app.parley.unreachableOwnerCount).toBe(0)
})

it('lets the node go of a stream routed through the adapter whose client reset while it was on its way', async () => {
  const cluster = new Cluster()
  // Node a holds the session; a hook holds the GET routed to it until the test lets it go.
  let held = false
  let letGo = () => {}
  let closedAtA = false
  const a = await startServer({ adapter: cluster.adapter('a') }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'GET' || !request.url.includes('held')) return
      reply.raw.once('close', () => {
        closedAtA = true
      })
      held = true
      await new Promise<void>((resolve) => {
        letGo = resolve
      })
    })
  })
  started.push(a)
  const client = await rawConnect('sse', a.base)
  raws.push(client)
  // Node b (HTTP/2) notes when the GET's stream closed there.
  let closedAtB = false
  const b = await startH2Node({ adapter: cluster.adapter('b') }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.includes('held'))
        reply.raw.once('close', () => {
          closedAtB = true
        })
    })
  })
  h2Nodes.push(b)
  await resetOnce(
    b,
    `/parley/sse?v=1&sid=${encodeURIComponent(client.sid)}&held=1`,
    () => held,
    'the GET held at a',
  )
  // b's stream closed before a answered: once a has, b lets its answer go, and a's request closes.
  await until(() => closedAtB, 3000, 'the reset at b')
  letGo()
  await until(() => closedAtA, 3000, 'the GET let go at a')
})

it('waits at close for no GET its client reset before its owner was looked up', async () => {
  // What the closing node waits for among the requests it forwards (see `ClosingForwards`).
  const waitedFor: Promise<void>[] = []
  const add = ClosingForwards.prototype.add
  vi.spyOn(ClosingForwards.prototype, 'add').mockImplementation(function (
    this: ClosingForwards,
    forward: EndingForward,
  ) {
    waitedFor.push(forward.closed)
    add.call(this, forward)
  })
  const directory = new Directory()
  const a = await startServer({ adapter: directory.adapter('a') })
  started.push(a)
  const client = await rawConnect('sse', a.base)
  raws.push(client)
  const { b, seen } = await slowUntilLeft(directory.adapter('b'))
  await resetOnce(
    b,
    `/parley/sse?v=1&sid=${encodeURIComponent(client.sid)}&slow=1`,
    () => seen.hooked,
    'the GET in the hook',
  )
  await until(() => seen.handled, 3000, 'the handler to run')
  // Its owner looked up after its stream closed: b's close finds it over, where a close listened
  // for then never comes (the close waited its whole bound for it, then cut it).
  await b.stop()
  await within(Promise.all(waitedFor), 1000, 'what b waited for at close to be over')
})
