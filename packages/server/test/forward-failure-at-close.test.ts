// A request of another node's session that a closing node sends on itself (Fastify refuses
// requests there, see last-words.ts), whose sending on fails inside the server (a bug): the
// client gets what the route answers such a failure, the coded 503 it reads as "try again",
// with the page's CORS headers, over HTTP/2 on its stream and over HTTP/1.1 beside it
// (`allowHTTP1`). A connection reset (HTTP/1.1) or a stream reset with no code (HTTP/2) would
// fail its transport with nothing to act on.
import { request as httpsRequest } from 'node:https'
import { encodeText, PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Forwarder } from '../src/http/forward.js'
import { Directory } from './directory-adapter.js'
import { type H2Answer, type H2Node, startH2NodeHeldAtClose } from './h2-node.js'
import { closeApp, type Started, startServer, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { selfSigned } from './self-signed.js'

const started: Started[] = []
const h2Nodes: H2Node[] = []
const raws: RawClient[] = []
const releases: (() => void)[] = []

afterEach(async () => {
  vi.restoreAllMocks()
  for (const raw of raws.splice(0)) raw.close()
  for (const release of releases.splice(0)) release()
  for (const node of h2Nodes.splice(0)) await node.stop()
  for (const node of started.splice(0)) await closeApp(node.app)
})

/** The page the nodes allow. */
const PAGE = 'https://page.test'

/** One request over HTTP/1.1 to the h2 node (`allowHTTP1`), on a connection of its own. */
function http1(port: number, method: string, path: string, body: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path: `/parley/${path}`,
        ca: selfSigned().cert,
        agent: false,
        headers: { origin: PAGE, 'content-type': 'text/plain' },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

type Send = (b: H2Node, method: string, path: string, body: string) => Promise<H2Answer>

const ways: [string, Send][] = [
  [
    'HTTP/2',
    (b, method, path, body) => b.send(method, path, body, { origin: PAGE, 'content-type': 'text/plain' }),
  ],
  ['HTTP/1.1', (b, method, path, body) => http1(b.port, method, path, body)],
]

describe.each(ways)('a closing node whose sending on of a request fails, over %s', (_way, send) => {
  it.each(['GET', 'POST'])('answers a %s 503 PARLEY_SERVER_SHUTTING_DOWN', async (method) => {
    const directory = new Directory()
    const a = await startServer({ adapter: directory.adapter('a'), allowedOrigins: [PAGE] })
    started.push(a)
    const onA = await rawConnect('polling', a.base)
    raws.push(onA)
    const {
      node: b,
      letGo,
      closeHeld,
    } = await startH2NodeHeldAtClose({
      adapter: directory.adapter('b'),
      allowedOrigins: [PAGE],
    })
    h2Nodes.push(b)
    releases.push(letGo)
    const { closing } = await closeHeld()
    // The look-up of the session's owner fails as a bug would: nothing else can make it throw.
    vi.spyOn(Forwarder.prototype, 'ownerOf').mockRejectedValue(new Error('a bug in the look-up'))

    const body =
      method === 'POST' ? encodeText({ type: PacketType.EVENT, seq: 1, name: 'hi', args: [], ackId: 0 }) : ''
    const answer = await within(send(b, method, `poll?v=1&sid=${onA.sid}`, body), 5000, "b's answer")
    expect({
      status: answer.status,
      body: JSON.parse(answer.text),
      allowOrigin: answer.headers['access-control-allow-origin'],
    }).toEqual({
      status: 503,
      body: {
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the request failed inside the server: try again',
      },
      allowOrigin: PAGE,
    })
    // The session stays its owner's, where the client's next try finds it.
    expect(a.app.parley.sessionFor(onA.sid)).toBeDefined()
    letGo()
    await within(closing, 5000, 'b closed')
  })
})
