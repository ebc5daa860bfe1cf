// Upstream POSTs (SSE, polling) whose body passes maxPayload while their session is frozen: its
// node drains and hands it off, and reads nothing more from the client. Such a POST is refused
// with 413 PARLEY_PAYLOAD_TOO_LARGE, unread, with `Connection: close`, whether its
// Content-Length announced the size or the body passed the limit as it came; the session is
// handed off all the same and resumes on another node, as it would after a POST within the limit.
// One that reaches another node is told to the session's node, which answers it the same way.
import { type ClientRequest, request } from 'node:http'
import { PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { announcePost, RawHttp } from './raw-http.js'

const MAX_PAYLOAD = 1000

let nodes: Started[] = []
const clients: RawClient[] = []
const raws: RawHttp[] = []
/** Lets the store of the test's nodes finish the write it holds (see `twoNodes`). */
let finishStore = () => {}

afterEach(async () => {
  finishStore()
  for (const c of clients.splice(0)) c.close()
  for (const r of raws.splice(0)) r.destroy()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

interface Node {
  started: Started
  /** The `disconnect` reason of each socket of this node. */
  reasons: string[]
  restored: ServerSocket[]
  /** The routed mark of each request another node sent here. */
  marks: string[]
}

/**
 * Two nodes joined by the test adapter, whose store finishes storing a handed-off session only
 * once the test has seen the POST refused (`finishStore`, in `handedOff`): the session stays
 * frozen meanwhile, however long a loaded machine takes to answer the POST.
 */
async function twoNodes() {
  const cluster = new Cluster({ handoff: true })
  cluster.storeFinishesAfter = new Promise((resolve) => {
    finishStore = resolve
  })
  const list: Node[] = []
  for (const name of ['a', 'b']) {
    const reasons: string[] = []
    const restored: ServerSocket[] = []
    const marks: string[] = []
    const started = await startServer(
      {
        adapter: cluster.adapter(name),
        maxPayload: MAX_PAYLOAD,
        handoff: { timeout: 4000, retrySpread: 100 },
      },
      (app) => {
        app.parley.on('connection', (socket) => socket.on('disconnect', (reason) => reasons.push(reason)))
        app.parley.on('restored', (socket) => restored.push(socket))
        app.addHook('onRequest', async (req) => {
          const mark = req.headers['x-parley-routed']
          if (typeof mark === 'string') marks.push(mark)
        })
      },
      // A draining node still answers its sessions' requests.
      { return503OnClosing: false },
    )
    nodes.push(started)
    list.push({ started, reasons, restored, marks })
  }
  return { cluster, a: list[0]!, b: list[1]! }
}

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  clients.push(client)
  return client
}

/**
 * Starts node `a`'s drain and waits until it froze the session `sid` (its store began); `closed`
 * resolves once the node closed.
 */
async function freeze(cluster: Cluster, a: Node, sid: string): Promise<{ closed: Promise<void> }> {
  const closed = a.started.app.close()
  await until(() => cluster.handoffs.get(sid)?.stored === false, 3000, 'the session frozen')
  return { closed }
}

/** What a raw POST got: its status, its body, its Connection header. */
interface Answer {
  status: number
  body: string
  connection: string | undefined
}

/** A POST on `url` whose body comes in chunks, with no Content-Length. */
function chunkedPost(url: string) {
  const post = request(new URL(url), { method: 'POST', headers: { 'content-type': 'text/plain' } })
  const answered = new Promise<Answer>((resolve, reject) => {
    post.on('response', (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }))
    })
    post.on('error', reject)
  })
  return { post, answered }
}

/** The chunked POST got 413 PARLEY_PAYLOAD_TOO_LARGE, and its connection closes. */
async function refusedAsTooLarge(answered: Promise<Answer>, post: ClientRequest): Promise<void> {
  const answer = await answered
  post.destroy()
  expect(answer.status).toBe(413)
  expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_PAYLOAD_TOO_LARGE' })
  expect(answer.connection).toBe('close')
}

describe.each(['sse', 'polling'] as const)(
  'a POST past maxPayload while its session is frozen (%s)',
  (transport) => {
    const endpoint = (base: string, sid: string) =>
      `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${sid}`

    /**
     * After the refusal: the session was handed off, not ended. Its client resumes on node `b`
     * once the store holds it, and node `a` lets it go to `b`.
     */
    async function handedOff(cluster: Cluster, a: Node, b: Node, client: RawClient, closed: Promise<void>) {
      expect(cluster.handoffs.get(client.sid)?.stored).toBe(false)
      finishStore()
      await until(() => cluster.handoffs.get(client.sid)?.stored === true, 5000, 'the session stored')
      const back = await connect(transport, b.started.base, { sid: client.sid, ack: 0 })
      expect(back.open.recovered).toBe(true)
      expect(back.open.id).toBe(client.id)
      expect(b.restored.map((s) => s.id)).toEqual([client.id])
      await closed
      expect(a.reasons).toEqual(['server handoff'])
      // Its goodbye, so that node `b` closes at once rather than hand the session off in turn.
      await back.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
    }

    it('is refused with 413, unread, when its Content-Length announces it: the session is handed off', async () => {
      const { cluster, a, b } = await twoNodes()
      const client = await connect(transport, a.started.base)
      // Opened before the drain: the node takes no new connection once its drain is over.
      const url = endpoint(a.started.base, client.sid)
      const raw = await RawHttp.open(Number(new URL(url).port))
      raws.push(raw)
      const { closed } = await freeze(cluster, a, client.sid)
      announcePost(raw, url, MAX_PAYLOAD * 5)
      const answer = await raw.answer()
      expect(answer.status).toBe(413)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_PAYLOAD_TOO_LARGE' })
      expect(answer.headers.connection).toBe('close')
      await handedOff(cluster, a, b, client, closed)
    })

    it('is refused with 413 when a chunked body passes the limit: the session is handed off', async () => {
      const { cluster, a, b } = await twoNodes()
      const client = await connect(transport, a.started.base)
      const { closed } = await freeze(cluster, a, client.sid)
      const { post, answered } = chunkedPost(endpoint(a.started.base, client.sid))
      post.write('x'.repeat(MAX_PAYLOAD * 2))
      await refusedAsTooLarge(answered, post)
      await handedOff(cluster, a, b, client, closed)
    })

    it('is refused with 413 by its node when it reaches another node, by Content-Length: the session is handed off', async () => {
      const { cluster, a, b } = await twoNodes()
      const client = await connect(transport, a.started.base)
      const { closed } = await freeze(cluster, a, client.sid)
      const url = endpoint(b.started.base, client.sid)
      const raw = await RawHttp.open(Number(new URL(url).port))
      raws.push(raw)
      announcePost(raw, url, MAX_PAYLOAD * 5)
      const answer = await raw.answer()
      expect(answer.status).toBe(413)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_PAYLOAD_TOO_LARGE' })
      expect(answer.headers.connection).toBe('close')
      // Node `b` told the session's node, which judged it.
      expect(a.marks).toEqual(['too-large'])
      await handedOff(cluster, a, b, client, closed)
    })

    it('is refused with 413 by its node when a chunked body passes the limit on another node: the session is handed off', async () => {
      const { cluster, a, b } = await twoNodes()
      const client = await connect(transport, a.started.base)
      const { closed } = await freeze(cluster, a, client.sid)
      const { post, answered } = chunkedPost(endpoint(b.started.base, client.sid))
      post.write('x'.repeat(MAX_PAYLOAD * 2))
      await refusedAsTooLarge(answered, post)
      expect(a.marks).toEqual(['too-large'])
      await handedOff(cluster, a, b, client, closed)
    })

    it('is refused with 413 when its body, begun before the freeze, passes the limit after it', async () => {
      const { cluster, a, b } = await twoNodes()
      const client = await connect(transport, a.started.base)
      const { post, answered } = chunkedPost(endpoint(a.started.base, client.sid))
      // Under the limit so far. A second POST meanwhile is refused as one too many: the server is
      // reading the first for the live session's transport.
      post.write('x'.repeat(MAX_PAYLOAD / 2))
      const second = await fetch(endpoint(a.started.base, client.sid), { method: 'POST', body: '[3]' })
      expect(await second.json()).toMatchObject({ code: 'PARLEY_REQUEST_IN_PROGRESS' })
      const { closed } = await freeze(cluster, a, client.sid)
      post.write('x'.repeat(MAX_PAYLOAD))
      await refusedAsTooLarge(answered, post)
      await handedOff(cluster, a, b, client, closed)
    })
  },
)
