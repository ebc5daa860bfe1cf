// Requests a closing node answers itself (Fastify refuses requests there, see last-words.ts)
// whose handling fails inside the server (a bug): a request of another node's session it sends
// on, a POST of a session of its own, a GET of one (its poll, served in Node's 'request'
// listener, where a throw would be uncaught: the process's end). The client gets what the route answers such a failure,
// the coded 503 it reads as "try again", with the page's CORS headers, over HTTP/2 on its stream
// and over HTTP/1.1 beside it (`allowHTTP1`). A connection reset (HTTP/1.1) or a stream reset
// with no code (HTTP/2) would fail its transport with nothing to act on.
import { encodeText, PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { Forwarder } from '../src/http/forward.js'
import { UpstreamPosts } from '../src/http/upstream-post.js'
import { PollingTransport } from '../src/transports/polling.js'
import { Directory } from './directory-adapter.js'
import { expectWarned, FAILED_INSIDE_BODY, frozenBug, type LoggedLine, warnLogger } from './failed-inside.js'
import { type H2Answer, type H2Node, http1Request, startH2NodeHeldAtClose } from './h2-node.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

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

/**
 * A node held open at close (`startH2NodeHeldAtClose`), its warnings in `lines`, stopped and let
 * go after the test.
 */
async function heldNode(options: Parameters<typeof startH2NodeHeldAtClose>[0]) {
  const lines: LoggedLine[] = []
  const held = await startH2NodeHeldAtClose(options, warnLogger(lines))
  h2Nodes.push(held.node)
  releases.push(held.letGo)
  return { ...held, lines }
}

type Send = (b: H2Node, method: string, path: string, body: string) => Promise<H2Answer>

/** What the client reads of the answer: the route's to a failure inside the server is below. */
const read = (answer: H2Answer) => ({
  status: answer.status,
  body: JSON.parse(answer.text),
  allowOrigin: answer.headers['access-control-allow-origin'],
})
const FAILED_INSIDE = {
  status: 503,
  body: FAILED_INSIDE_BODY,
  allowOrigin: PAGE,
}

/** An event, as a POST of its session's client carries it. */
const EVENT = encodeText({ type: PacketType.EVENT, seq: 1, name: 'hi', args: [], ackId: 0 })

const ways: [string, Send][] = [
  [
    'HTTP/2',
    (b, method, path, body) => b.send(method, path, body, { origin: PAGE, 'content-type': 'text/plain' }),
  ],
  [
    'HTTP/1.1',
    (b, method, path, body) =>
      http1Request(b.port, `/parley/${path}`, {
        method,
        body,
        headers: { origin: PAGE, 'content-type': 'text/plain' },
      }),
  ],
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
      lines,
    } = await heldNode({ adapter: directory.adapter('b'), allowedOrigins: [PAGE] })
    const { closing } = await closeHeld()
    // The look-up of the session's owner fails as a bug would (an error the logger cannot
    // serialize): nothing else can make it throw.
    vi.spyOn(Forwarder.prototype, 'ownerOf').mockRejectedValue(frozenBug('a bug in the look-up'))

    const body = method === 'POST' ? EVENT : ''
    const answer = await within(send(b, method, `poll?v=1&sid=${onA.sid}`, body), 5000, "b's answer")
    expect(read(answer)).toEqual(FAILED_INSIDE)
    expectWarned(lines, 'parley: could not send a request on at close', 'a bug in the look-up')
    // The session stays its owner's, where the client's next try finds it.
    expect(a.app.parley.sessionFor(onA.sid)).toBeDefined()
    letGo()
    await within(closing, 5000, 'b closed')
  })
})

describe.each(ways)('a closing node whose taking of its own session’s POST fails, over %s', (_way, send) => {
  it('answers it 503 PARLEY_SERVER_SHUTTING_DOWN', async () => {
    // b's own session holds an event in its middleware: it is live at close, its POSTs taken.
    const { node: b, letGo, closeHeld, lines } = await heldNode({ allowedOrigins: [PAGE] })
    const { closing, sid } = await closeHeld()
    // Taking the POST fails as a bug would (an error the logger cannot serialize): nothing else
    // can make it reject.
    vi.spyOn(UpstreamPosts.prototype, 'take').mockRejectedValue(frozenBug('a bug in the POST'))

    const answer = await within(send(b, 'POST', `poll?v=1&sid=${sid}`, EVENT), 5000, "b's answer")
    expect(read(answer)).toEqual(FAILED_INSIDE)
    expectWarned(lines, 'parley: could not take a POST at close', 'a bug in the POST')
    letGo()
    await within(closing, 5000, 'b closed')
  })
})

describe.each(ways)('a closing node whose serving of its own session’s GET fails, over %s', (_way, send) => {
  it('answers it 503 PARLEY_SERVER_SHUTTING_DOWN, with nothing left uncaught', async () => {
    // b's own session holds an event in its middleware: it is live at close, its GETs served.
    const { node: b, letGo, closeHeld, lines } = await heldNode({ allowedOrigins: [PAGE] })
    const { closing, sid } = await closeHeld()
    // Serving the poll fails as a bug would (an error the logger cannot serialize): nothing else
    // can make it throw.
    vi.spyOn(PollingTransport.prototype, 'downstream').mockImplementation(() => {
      throw frozenBug('a bug in the GET')
    })

    let answer: H2Answer | undefined
    const left = await unheard(async () => {
      answer = await within(send(b, 'GET', `poll?v=1&sid=${sid}`, ''), 5000, "b's answer")
    })
    expect(left).toEqual([])
    expect(answer && read(answer)).toEqual(FAILED_INSIDE)
    expectWarned(lines, 'parley: could not hand a client its last words at close', 'a bug in the GET')
    letGo()
    await within(closing, 5000, 'b closed')
  })
})

describe('a closing node whose handing of a session’s last words to its next GET fails', () => {
  it('cuts that GET, logs the failure, and leaves nothing uncaught', async () => {
    const lines: LoggedLine[] = []
    const node = await startServer({}, undefined, { logger: warnLogger(lines) })
    started.push(node)
    // Its client between two GETs: at close, the session keeps its CLOSE for the next one.
    const between = await rawConnect('polling', node.base)
    raws.push(between)
    between.close()
    const closing = node.app.close()
    await until(() => node.app.parley.sessionFor(between.sid) === undefined, 3000, 'the session’s end')
    // Serving them fails as a bug would (an error the logger cannot serialize): nothing else can
    // make it throw. Their answer may have begun: the GET is cut.
    vi.spyOn(PollingTransport.prototype, 'serveLast').mockImplementation(() => {
      throw frozenBug('a bug in the last words')
    })

    const left = await unheard(async () => {
      await expect(
        within(fetch(`${node.base}/poll?v=1&sid=${between.sid}`), 5000, 'the GET cut'),
      ).rejects.toThrow(TypeError)
    })
    expect(left).toEqual([])
    expectWarned(lines, 'parley: could not hand a client its last words at close', 'a bug in the last words')
    await within(closing, 5000, 'the node closed')
  })
})
