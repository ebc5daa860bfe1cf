// A GET (an event stream, a poll) that reaches a closing node for a session another node holds,
// while that node still asks Redis where the session lives when its drain ends. Its close waits
// for that lookup (which bounds itself), and the GET, which the closing node can no longer send
// on, gets CLOSE 'server handoff', as a GET it relayed already does: its client resumes where its
// session is with its quiet time, having seen no transport fail. Cut by Fastify's close
// (`forceCloseConnections`) or told 503 "try again", it would fail the client's transport. The
// lookup is held here until the drain is over, as a slow Redis may hold it. A POST so caught is
// told to try again (503 PARLEY_SERVER_SHUTTING_DOWN), as any POST the node can no longer send
// on, rather than cut; so is a resume POST whose owner could not be reached, still asking whether
// its session moved since (cut before, with `forceCloseConnections`, once the rest of the close
// was over). A WebSocket resume so caught, its owner being looked up (or, that owner not
// reached, whether its session moved since), gets CLOSE 'server handoff' too, where the server's
// close would have closed it bare (1001, no CLOSE: a transport error); so does one whose relay to
// its owner is still connecting, at once.
import http from 'node:http'
import net from 'node:net'
import { connect } from '@parley/client'
import { PacketType, type TransportName } from '@parley/protocol'
import type { FastifyServerOptions } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { handoffSniffer } from '../../../test/cluster/sniff.js'
import { holdPort } from '../../../test/support/ports.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { acrossClose, bothWays, received, transportErrors } from './drain-end.js'
import { balancedSuite, type SuiteNode, seesOthers, startTrafficNode } from './e2e-suite.js'

/**
 * Holds every owner lookup `node` makes from now on, but those of session `but`, until
 * `release()`, each answered then with what Redis said; `waiting()`: how many are held. With
 * `unreachable`, the first is answered at once, naming that address for the owner (one where
 * nothing answers), and those after it are held: the look made once the owner was not reached.
 */
function holdLookups(
  node: SuiteNode,
  but: string,
  unreachable?: string,
): { waiting: () => number; release: () => void } {
  const adapter = node.started.app.parley.adapter
  const lookUp = adapter.sessionOwner!.bind(adapter)
  let waiting = 0
  let first = unreachable !== undefined
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  adapter.sessionOwner = async (sid: string) => {
    if (sid === but) return lookUp(sid)
    if (first) {
      first = false
      const owner = await lookUp(sid)
      return typeof owner === 'object' ? { ...owner, url: unreachable } : owner
    }
    waiting++
    const owner = await lookUp(sid)
    await released
    return owner
  }
  return { waiting: () => waiting, release: () => release() }
}

describe.skipIf(skipRedisSuites())(
  'a request looking up its owner on a closing node when its drain ends',
  () => {
    const { suite, balance } = balancedSuite()
    const { nodes, clients } = suite

    const closings: [string, FastifyServerOptions][] = [
      [
        'Fastify answers every request while it closes, then cuts every connection',
        { return503OnClosing: true },
      ],
      ['the routes serve the drain, then Fastify cuts every connection', { return503OnClosing: false }],
      [
        'the routes serve the drain, and Fastify waits for the connections',
        { return503OnClosing: false, forceCloseConnections: false },
      ],
    ]
    const cases = (['sse', 'polling'] as TransportName[]).flatMap((transport) =>
      closings.map(([what, fastify]) => [transport, what, fastify] as const),
    )
    it.each(cases)(
      'a GET (%s, %s) gets CLOSE server handoff, and its client goes on quietly',
      async (transport, _what, fastify) => {
        const a = await startTrafficNode(suite.redis.url, nodes, { fastify })
        const b = await startTrafficNode(suite.redis.url, nodes)
        const balancer = await balance([a, b])
        balancer.avoid.add(1)
        const c = connect(`${balancer.url}/parley`, { transports: [transport] })
        clients.push(c)
        const lost = transportErrors(c)
        const got = received(c)
        await until(() => c.connected, 3000, 'connected to a')
        const id = c.id
        // A session of a that nobody claims: a's drain waits for it (see seesOthers).
        const held = await rawConnect('polling', a.started.base)
        await seesOthers(a)
        // Its GETs are a's own to answer, or look their owner up too while a closes: not held.
        const lookups = holdLookups(a, held.sid)

        // a drains: the client resumes on b, and the GET that follows its resume (its stream, or its
        // first poll) goes to a, which looks the session's owner up: held.
        b.started.app.parley.on('restored', () => {
          balancer.avoid.clear()
          balancer.avoid.add(1)
        })
        balancer.avoid.clear()
        balancer.avoid.add(0)
        const draining = a.started.app.close()
        await until(() => b.restored.length === 1, 8000, 'taken over by b')
        await until(() => lookups.waiting() === 1, 3000, 'the GET to a, looking its owner up')
        balancer.avoid.clear()
        balancer.avoid.add(0)
        expect(lost).toEqual([])

        // a's drain ends (the held session says goodbye) with the lookup under way; it ends after.
        await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
        await until(() => a.started.app.parley.closed, 5000, "a's drain over")
        lookups.release()
        await within(draining, 5000, 'a closed')

        b.restored[0]!.emit('down', 1)
        c.emit('up', 1)
        await until(() => got.length === 1 && b.received.length === 1, 5000, 'the next messages, on b')
        expect(got).toEqual([1])
        expect(b.received).toEqual([1])
        expect(a.received).toEqual([])
        expect(lost).toEqual([])
        expect(b.restored).toHaveLength(1)
        expect(c.id).toBe(id)
      },
      35_000,
    )

    /**
     * Where the resume is when a's drain ends: looking its owner up (held); looking again whether
     * the session moved, the owner it found at an address that resets every connection (held);
     * or connecting to that owner, at an address that takes connections and never answers.
     */
    const stages = [
      ['looking up its owner', 'found'],
      ['looking up whether its session moved, its owner not reached', 'reset'],
      ['connecting to its owner', 'silent'],
    ] as const
    it.each(stages.flatMap(([what, owner]) => [true, false].map((r) => [what, r, owner] as const)))(
      'a WebSocket resume %s gets CLOSE server handoff, and its client goes on quietly (return503OnClosing: %s)',
      async (_what, return503OnClosing, owner) => {
        // The session lives on b.
        const handoffs = { drained: 0, relayed: 0 }
        const options = handoffSniffer((relayed) => {
          if (relayed) handoffs.relayed++
          else handoffs.drained++
        })
        const setup = await acrossClose(
          { suite, balance },
          { transport: 'websocket', return503OnClosing, home: 'b', options },
        )
        const { a, b, balancer, c, got, lost, held } = setup
        const socket = b.connections[0]!
        const address = owner === 'found' ? undefined : await ownerAddress(owner)
        onTestFinished(() => address?.close())
        const lookups = holdLookups(a, held.sid, address?.url)
        const under = () => (owner === 'silent' ? address!.connections() === 1 : lookups.waiting() === 1)

        // a begins to close; from now on the balancer sends the client to a, and its WebSocket is
        // cut: its resume reaches a, and is held where `stages` says.
        const draining = a.started.app.close()
        await until(() => a.started.app.parley.closing, 3000, 'a closing')
        balancer.avoid.clear()
        balancer.avoid.add(1)
        const cut = lost.length
        balancer.cut()
        await until(under, 5000, 'the resume on a, looking its session up or connecting to its owner')
        balancer.avoid.clear()
        balancer.avoid.add(0)

        // a's drain ends (the held session says goodbye) with the resume held; its lookup ends after.
        await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
        await until(() => a.started.app.parley.closed, 5000, "a's drain over")
        lookups.release()
        await within(draining, 5000, 'a closed')
        await until(() => handoffs.relayed === 1, 3000, "the resume's CLOSE 'server handoff'")
        await bothWays(setup, socket, 1, 1, 5000, 'the next messages, on b')

        expect(got).toEqual([1])
        expect(b.received).toEqual([1])
        expect(a.received).toEqual([])
        // Only the cut failed a transport: the resume through a did not.
        expect(lost.slice(cut)).toEqual(['PARLEY_TRANSPORT_ERROR'])
        expect(b.connections).toHaveLength(1)
        expect(c.id).toBe(socket.id)
      },
      30_000,
    )

    it.each([true, false])(
      'a POST is told to try again, not cut (return503OnClosing: %s)',
      async (return503OnClosing) => {
        const a = await startTrafficNode(suite.redis.url, nodes, { fastify: { return503OnClosing } })
        const b = await startTrafficNode(suite.redis.url, nodes)
        // The session lives on b; a's own session, which nobody claims, holds a's drain open.
        const onB = await rawConnect('polling', b.started.base)
        const held = await rawConnect('polling', a.started.base)
        await seesOthers(a)
        const lookups = holdLookups(a, held.sid)
        const draining = a.started.app.close()
        await until(() => a.started.app.parley.closing, 3000, 'a closing')

        const answer = post(`${a.started.base}/poll?v=1&sid=${onB.sid}`, '[5,1,"up",[1],0]')
        await until(() => lookups.waiting() === 1, 3000, 'the POST to a, looking its owner up')
        await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
        await until(() => a.started.app.parley.closed, 5000, "a's drain over")
        lookups.release()
        expect(await within(answer, 5000, 'the answer to the POST')).toEqual({
          status: 503,
          code: 'PARLEY_SERVER_SHUTTING_DOWN',
        })
        await within(draining, 5000, 'a closed')
        // Nothing of it went on: its client sends it again, where the session is.
        expect(b.received).toEqual([])
        await onB.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
        onB.close()
      },
      30_000,
    )

    it('a resume POST looking up whether its session moved, its owner not reached, is told to try again, not cut', async () => {
      // Fastify cuts every connection at close, those still answering a request too. The look
      // whether the session moved is held for good: a's own bound on lookups (its
      // handshakeTimeout) ends it, later than the rest of a's close (which waits up to a second
      // for the held session's next GET).
      const a = await startTrafficNode(suite.redis.url, nodes, {
        fastify: { return503OnClosing: false, forceCloseConnections: true },
        handshakeTimeout: 3000,
      })
      const b = await startTrafficNode(suite.redis.url, nodes)
      // The session lives on b; a's own session, which nobody claims, holds a's drain open.
      const onB = await rawConnect('polling', b.started.base)
      const held = await rawConnect('polling', a.started.base)
      await seesOthers(a)
      const address = await ownerAddress('reset')
      onTestFinished(() => address.close())
      const lookups = holdLookups(a, held.sid, address.url)
      const draining = a.started.app.close()
      await until(() => a.started.app.parley.closing, 3000, 'a closing')

      const hello = JSON.stringify([PacketType.HELLO, { sid: onB.sid, ack: 0 }])
      const answer = post(`${a.started.base}/poll?v=1`, hello)
      await until(
        () => lookups.waiting() === 1,
        3000,
        'the resume on a, looking up whether its session moved',
      )
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      expect(await within(answer, 5000, 'the answer to the resume')).toEqual({
        status: 503,
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
      })
      await within(draining, 5000, 'a closed')
      lookups.release()
      // Its session lives on b, untouched: the client's next try resumes it there.
      expect(b.started.app.parley.sockets.size).toBe(1)
      await onB.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      onB.close()
    })
  },
)

/**
 * An address for a session's owner where `kind` says what answers: every connection reset, or
 * taken and never answered; `connections()`: how many came.
 */
async function ownerAddress(kind: 'reset' | 'silent'): Promise<{
  url: string
  connections: () => number
  close: () => void
}> {
  if (kind === 'reset') {
    const gone = await holdPort()
    return { url: `http://127.0.0.1:${gone.port}/parley`, connections: () => 0, close: () => gone.release() }
  }
  const taken = new Set<net.Socket>()
  let connections = 0
  const server = net.createServer((connection) => {
    connections++
    taken.add(connection)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}/parley`,
    connections: () => connections,
    close: () => {
      for (const connection of taken) connection.destroy()
      server.close()
    },
  }
}

/** POSTs `body` to `url`; the answer's status and code, or the error when the connection was cut. */
function post(url: string, body: string): Promise<{ status: number; code?: unknown } | Error> {
  return new Promise((resolve) => {
    const headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }
    const req = http.request(new URL(url), { method: 'POST', headers, agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(text).code }))
      res.on('error', resolve)
    })
    req.on('error', resolve)
    req.end(body)
  })
}
