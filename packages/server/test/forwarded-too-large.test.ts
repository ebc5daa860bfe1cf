// Upstream POSTs (SSE, polling) past maxPayload that reach a node other than their session's
// owner (no sticky sessions). That node reads no more of the body and sends none of it on: it
// tells the owner (a body-less POST marked `x-parley-routed: too-large`), which answers as for
// such a POST of its own. So the outcome is the same on every node: 413 PARLEY_PAYLOAD_TOO_LARGE
// with `Connection: close`, the session ended with 'payload too large' when the POST is of its
// transport, left alone (400 PARLEY_TRANSPORT_MISMATCH) when the client has moved on. Both ways
// of reaching the owner: over the network (owners with a URL), and through the adapter
// (`Adapter.routeRequest`), also one that does not carry `RoutedRequest.tooLarge`. A client's own
// empty POST, which the owner must not take for such a POST, is answered as on its own node.
import { type ClientRequest, request } from 'node:http'
import type { Socket } from 'node:net'
import { type ClosePacket, PacketType } from '@parley/protocol'
import type { AdapterFactory } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { announcePost, RawHttp } from './raw-http.js'

const MAX_PAYLOAD = 1000
const ROUTED = 'x-parley-routed'

let nodes: Started[] = []
const clients: RawClient[] = []
const raws: RawHttp[] = []
const posts: ClientRequest[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const r of raws.splice(0)) r.destroy()
  for (const p of posts.splice(0)) p.destroy()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

interface Node {
  started: Started
  /** The `disconnect` reason of each socket of this node. */
  reasons: string[]
  /** The routed mark of each request another node sent here. */
  marks: string[]
  /** The connections those requests came on. */
  markedOn: Set<Socket>
}

/**
 * How a node reaches the owner: over the network, through the adapter, or through an adapter
 * that leaves out `RoutedRequest.tooLarge` (a custom one): the owner then gets a POST without
 * a body, which it must never take for an empty one it accepted.
 */
const ROUTES = ['over the network', 'through the adapter', 'through an adapter that drops tooLarge'] as const
type Route = (typeof ROUTES)[number]

/** Two nodes, `a` and `b`, that forward requests to each other by `route`. */
async function twoNodes(route: Route) {
  const directory = new Directory()
  const cluster = new Cluster()
  cluster.carriesTooLarge = route !== 'through an adapter that drops tooLarge'
  const adapter = (name: string): AdapterFactory =>
    route === 'over the network' ? directory.adapter(name) : cluster.adapter(name)
  const list: Node[] = []
  for (const name of ['a', 'b']) {
    const reasons: string[] = []
    const marks: string[] = []
    const markedOn = new Set<Socket>()
    const started = await startServer({ adapter: adapter(name), maxPayload: MAX_PAYLOAD }, (app) => {
      app.parley.on('connection', (socket) => socket.on('disconnect', (reason) => reasons.push(reason)))
      app.addHook('onRequest', async (req) => {
        const mark = req.headers[ROUTED]
        if (typeof mark !== 'string') return
        marks.push(mark)
        markedOn.add(req.raw.socket)
      })
    })
    nodes.push(started)
    list.push({ started, reasons, marks, markedOn })
  }
  return { directory, a: list[0]!, b: list[1]! }
}

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  clients.push(client)
  return client
}

/** What a POST got: its status, its body's code, its Connection header. */
interface Answer {
  status: number
  code: unknown
  connection: string | undefined
}

/** A POST on `url` whose head announces a body past maxPayload, sent without the body. */
async function announcedTooLarge(url: string): Promise<Answer> {
  const raw = await RawHttp.open(Number(new URL(url).port))
  raws.push(raw)
  announcePost(raw, url, MAX_PAYLOAD * 5)
  const answer = await raw.answer()
  const code: unknown = JSON.parse(answer.body).code
  return { status: answer.status, code, connection: answer.headers.connection }
}

/** A POST on `url` whose body comes in chunks (no Content-Length) and passes maxPayload. */
function chunkedTooLarge(url: string): Promise<Answer> {
  const post = request(new URL(url), { method: 'POST', headers: { 'content-type': 'text/plain' } })
  posts.push(post)
  const answered = new Promise<Answer>((resolve, reject) => {
    post.on('response', (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk
      })
      res.on('end', () => {
        const code: unknown = JSON.parse(body).code
        resolve({ status: res.statusCode ?? 0, code, connection: res.headers.connection })
      })
    })
    post.on('error', reject)
  })
  post.write('x'.repeat(MAX_PAYLOAD * 2))
  return answered
}

const TOO_LARGE_ANSWER: Answer = { status: 413, code: 'PARLEY_PAYLOAD_TOO_LARGE', connection: 'close' }

describe.each(ROUTES)('forwarded %s', (route) => {
  describe.each(['sse', 'polling'] as const)('a POST past maxPayload on another node (%s)', (transport) => {
    const endpoint = (base: string, sid: string) =>
      `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${sid}`

    /** The session ended on its node `a`, as if the POST had gone there, and its client heard why. */
    async function endedOnItsNode(a: Node, client: RawClient) {
      await until(() => a.reasons.length > 0, 5000, 'the disconnect on the owner')
      expect(a.reasons).toEqual(['payload too large'])
      const close = (await client.next((p) => p.type === PacketType.CLOSE)) as ClosePacket
      expect(close.reason).toBe('payload too large')
      expect(a.marks).toEqual(['too-large'])
    }

    it('ends the session on its node when its Content-Length passes the limit: 413, unread', async () => {
      const { a, b } = await twoNodes(route)
      const client = await connect(transport, a.started.base)
      expect(await announcedTooLarge(endpoint(b.started.base, client.sid))).toEqual(TOO_LARGE_ANSWER)
      await endedOnItsNode(a, client)
      expect(b.reasons).toEqual([])
    })

    it('ends the session on its node when a chunked body passes the limit: 413', async () => {
      const { a, b } = await twoNodes(route)
      const client = await connect(transport, a.started.base)
      expect(await chunkedTooLarge(endpoint(b.started.base, client.sid))).toEqual(TOO_LARGE_ANSWER)
      await endedOnItsNode(a, client)
      expect(b.reasons).toEqual([])
    })

    it('keeps the connection between the nodes open: only the client’s closes', async () => {
      const { a, b } = await twoNodes(route)
      const [one, two] = [await connect(transport, a.started.base), await connect(transport, a.started.base)]
      expect(await announcedTooLarge(endpoint(b.started.base, one.sid))).toEqual(TOO_LARGE_ANSWER)
      expect(await announcedTooLarge(endpoint(b.started.base, two.sid))).toEqual(TOO_LARGE_ANSWER)
      await until(() => a.reasons.length === 2, 5000, 'both sessions ended on their node')
      expect(a.marks).toEqual(['too-large', 'too-large'])
      // Over the network both came on one kept-alive connection (`inject` has none to keep).
      if (route === 'over the network') expect(a.markedOn.size).toBe(1)
    })

    it('is refused as stale when the session has moved on to another transport: the session goes on', async () => {
      const { a, b } = await twoNodes(route)
      const first = await connect(transport, a.started.base)
      const again = await connect('websocket', a.started.base, { sid: first.sid, ack: 0 })
      expect(again.open.recovered).toBe(true)
      expect(await announcedTooLarge(endpoint(b.started.base, first.sid))).toEqual({
        status: 400,
        code: 'PARLEY_TRANSPORT_MISMATCH',
        connection: 'close',
      })
      expect(a.marks).toEqual(['too-large'])
      expect(a.reasons).toEqual([])
      expect(a.started.app.parley.socketsCount).toBe(1)
    })
  })
})

// A client's own empty POST, sent on without a body, would be taken for one past maxPayload by
// an owner reached through the adapter (which takes a POST without a body for such a one, see
// `RoutedRequest.tooLarge`): 413 and its session ended with 'payload too large', where its own
// node refuses it as a body that holds no packet.
describe.each(ROUTES)('forwarded %s', (route) => {
  describe.each(['sse', 'polling'] as const)('an empty POST on another node (%s)', (transport) => {
    /** An empty POST of `client`'s session, to `base`: its status and code, and the session's end. */
    async function emptyPost(owner: Node, base: string, client: RawClient) {
      const ended = owner.reasons.length
      const res = await fetch(`${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${client.sid}`, {
        method: 'POST',
        body: '',
      })
      const { code } = (await res.json()) as { code?: unknown }
      await until(() => owner.reasons.length > ended, 5000, 'the disconnect on the owner')
      return { status: res.status, code, reason: owner.reasons[ended] }
    }

    it('is answered as on the node of its session', async () => {
      const { a, b } = await twoNodes(route)
      const direct = await emptyPost(a, a.started.base, await connect(transport, a.started.base))
      const forwarded = await emptyPost(a, b.started.base, await connect(transport, a.started.base))
      expect(direct).toEqual({ status: 400, code: 'PARLEY_INVALID_PACKET', reason: 'invalid packet' })
      expect(forwarded).toEqual(direct)
      expect(b.reasons).toEqual([])
    })
  })
})

describe('a POST past maxPayload whose owner cannot be reached', () => {
  it('is refused with 413 by the node it reached, which counts the owner unreachable', async () => {
    const { directory, a, b } = await twoNodes('over the network')
    const first = await rawConnect('polling', a.started.base)
    first.close()
    // The owner dies without a word: the directory still names it.
    const entries = [...directory.owners]
    await a.started.app.close()
    nodes = nodes.filter((n) => n !== a.started)
    for (const [sid, entry] of entries) directory.owners.set(sid, entry)

    expect(await announcedTooLarge(`${b.started.base}/poll?v=1&sid=${first.sid}`)).toEqual(TOO_LARGE_ANSWER)
    expect(b.started.app.parley.unreachableOwnerCount).toBe(1)
  })
})
