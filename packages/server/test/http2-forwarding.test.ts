// A node on HTTP/2 (TLS, `allowHTTP1`) sends the requests of another node's sessions on to their
// node as an HTTP/1.1 node does (forwarding.test.ts), over the network or through the adapter's
// `routeRequest`, while open and while Fastify refuses requests at close (see last-words.ts). An
// h2 request's headers are not an HTTP/1.1 one's: its pseudo-headers (`:method`, `:path`, ...)
// are no header of the request sent on (Node's HTTP/1.1 client throws on such a name), and its
// `:authority` stands for the Host the owner's origin check reads. An h2c node (no TLS) is out of
// the others' reach over the network: it takes no HTTP/1.1.
import http2 from 'node:http2'
import { encodeText, PacketType } from '@parley/protocol'
import parley, { type AdapterFactory } from '@parley/server'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { Directory } from './directory-adapter.js'
import { type H2Node, startH2Node, startH2NodeHeldAtClose } from './h2-node.js'
import { relayNodesClosedAfterEach, relayWays } from './h2-relay-nodes.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'

const { started, h2Nodes, raws } = relayNodesClosedAfterEach()
const releases: (() => void)[] = []
const closes: (() => Promise<void>)[] = []
/** Node warns of a connection-specific header on an h2 answer, once a process. */
const warnings: string[] = []
const noteWarning = (warning: Error) => warnings.push(String(warning))

// Runs before the nodes' teardown (`relayNodesClosedAfterEach`): a node held at close is let go
// before it is stopped.
afterEach(async () => {
  process.off('warning', noteWarning)
  warnings.length = 0
  for (const release of releases.splice(0)) release()
  // The last opened first: the h2c client before its server.
  for (const close of closes.splice(0).reverse()) await close()
})

/** The page the nodes allow. */
const PAGE = 'https://page.test'

/**
 * Node a (HTTP/1.1) with an SSE session, whose events it records, and the Host of each POST it
 * takes; `post(through)`: through an h2 node in the same cluster, a POST of an event for that
 * session.
 */
async function eventThrough(cluster: { adapter: (name: string) => AdapterFactory }) {
  const heard: unknown[] = []
  const hosts: unknown[] = []
  const a = await startServer({ adapter: cluster.adapter('a'), allowedOrigins: [PAGE] }, (app) => {
    app.addHook('onRequest', async (request) => {
      if (request.method === 'POST') hosts.push(request.headers.host)
    })
    app.parley.on('connection', (socket) => socket.on('hi', (text: unknown) => heard.push(text)))
  })
  started.push(a)
  const onA = await rawConnect('sse', a.base)
  raws.push(onA)
  const post = (through: H2Node) =>
    within(
      through.send(
        'POST',
        `sse?v=1&sid=${onA.sid}`,
        encodeText({ type: PacketType.EVENT, seq: 1, name: 'hi', args: ['from h2'], ackId: 0 }),
        { 'content-type': 'text/plain', origin: PAGE },
      ),
      5000,
      'the POST through the h2 node',
    )
  return { heard, hosts, post }
}

describe.each(relayWays)('an h2 node sends a POST of a session of another node on %s', (_way, cluster) => {
  it('while it is open', async () => {
    const nodes = cluster()
    const { heard, hosts, post } = await eventThrough(nodes)
    const b = await startH2Node({ adapter: nodes.adapter('b'), allowedOrigins: [PAGE] })
    h2Nodes.push(b)
    process.on('warning', noteWarning)
    const answer = await post(b)
    expect(answer.status).toBe(204)
    await until(() => heard.length === 1, 3000, 'the event at its node')
    expect(heard).toEqual(['from h2'])
    // The Host the client named, its `:authority`, as a proxy from h2 to HTTP/1.1 sends it.
    expect(hosts.at(-1)).toBe(`127.0.0.1:${b.port}`)
    expect(warnings).toEqual([])
  })

  it('while Fastify refuses requests at close', async () => {
    const nodes = cluster()
    const { heard, hosts, post } = await eventThrough(nodes)
    const {
      node: b,
      letGo,
      closeHeld,
    } = await startH2NodeHeldAtClose({
      adapter: nodes.adapter('b'),
      allowedOrigins: [PAGE],
    })
    h2Nodes.push(b)
    releases.push(letGo)
    const { closing } = await closeHeld()
    process.on('warning', noteWarning)
    const answer = await post(b)
    expect(answer.status).toBe(204)
    await until(() => heard.length === 1, 3000, 'the event at its node')
    expect(heard).toEqual(['from h2'])
    // The Host the client named, its `:authority`, as a proxy from h2 to HTTP/1.1 sends it.
    expect(hosts.at(-1)).toBe(`127.0.0.1:${b.port}`)
    expect(warnings).toEqual([])
    letGo()
    await within(closing, 5000, 'the h2 node closed')
  })
})

it('cannot send anything on to an h2c node, which takes no HTTP/1.1: its owner is unreachable', async () => {
  const directory = new Directory()
  const app = Fastify({ http2: true })
  closes.push(() => closeApp(app))
  await app.register(parley, { adapter: directory.adapter('a') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = http2.connect(`http://127.0.0.1:${port}`)
  closes.push(async () => void client.destroy())
  const handshake = await within(
    new Promise<string>((resolve, reject) => {
      const stream = client.request({
        ':method': 'POST',
        ':path': '/parley/poll?v=1',
        'content-type': 'text/plain',
      })
      let text = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        text += chunk
      })
      stream.on('end', () => resolve(text))
      stream.on('error', reject)
      stream.end('[8,{}]')
    }),
    5000,
    'the handshake on the h2c node',
  )
  const open = packetsOf(handshake)[0]
  if (open?.type !== PacketType.OPEN) throw new Error(`no OPEN: ${handshake}`)
  const b = await startServer({ adapter: directory.adapter('b') })
  started.push(b)
  const res = await fetch(`${b.base}/poll?v=1&sid=${open.sid}`)
  expect({ status: res.status, body: await res.json() }).toEqual({
    status: 400,
    body: { code: 'PARLEY_UNKNOWN_SESSION', message: 'the node of this session cannot be reached' },
  })
  expect(b.app.parley.unreachableOwnerCount).toBe(1)
})
