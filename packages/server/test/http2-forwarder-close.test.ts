// Requests of another node's session on their way through a node on HTTP/2 (TLS, `allowHTTP1`)
// when that node closes and its forwarder with it, their owner looked up but nothing sent yet:
// as on an HTTP/1.1 node (post-across-forwarder-close.test.ts), a GET gets CLOSE 'server
// handoff', a POST the coded 503 it reads as "try again" (a resume too, taken while b is open or
// while Fastify refuses requests at close), each on its own stream, with no `Connection` header:
// Node warns of one on an h2 answer (once a process), and drops it.
import { encodeText, PacketType } from '@parley/protocol'
import { afterEach, expect, it, vi } from 'vitest'
import { Forwarder } from '../src/http/forward.js'
import { packetsOf } from './answer-packets.js'
import { Directory } from './directory-adapter.js'
import { type H2Answer, type H2Node, startH2Node, startH2NodeHeldAtClose } from './h2-node.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

/** The page the nodes allow. */
const PAGE = 'https://page.test'

const started: Started[] = []
const h2Nodes: H2Node[] = []
const raws: RawClient[] = []
const releases: (() => void)[] = []
const warnings: string[] = []
const noteWarning = (warning: Error) => warnings.push(String(warning))

afterEach(async () => {
  process.off('warning', noteWarning)
  warnings.length = 0
  vi.restoreAllMocks()
  for (const raw of raws.splice(0)) raw.close()
  for (const release of releases.splice(0)) release()
  for (const node of h2Nodes.splice(0)) await node.stop()
  for (const node of started.splice(0)) await closeApp(node.app)
})

/**
 * Holds b's owner lookups (`lookup`: a resume's is `resumeOwner`) until b's forwarder closed, as
 * a store slow to answer would. True once one began.
 */
function lookupsHeldUntilForwarderCloses(lookup: 'ownerOf' | 'resumeOwner'): () => boolean {
  let closeForwarder = () => {}
  const forwarderClosed = new Promise<void>((resolve) => {
    closeForwarder = resolve
  })
  const close = Forwarder.prototype.close
  vi.spyOn(Forwarder.prototype, 'close').mockImplementation(function (this: Forwarder) {
    close.call(this)
    closeForwarder()
  })
  let lookingUp = false
  // Either lookup, taking the arguments of whichever it is (`ownerOf` has one more).
  const look = Forwarder.prototype[lookup] as (
    this: Forwarder,
    ...args: Parameters<Forwarder['ownerOf']>
  ) => ReturnType<Forwarder['ownerOf']>
  vi.spyOn(Forwarder.prototype, lookup).mockImplementation(async function (this: Forwarder, ...args) {
    lookingUp = true
    const owner = await look.apply(this, args)
    await forwarderClosed
    return owner
  })
  return () => lookingUp
}

/** Node a (HTTP/1.1), the page the nodes allow, and a's session (over WebSocket). */
async function sessionOnA(directory: Directory): Promise<{ a: Started; sid: string }> {
  const a = await startServer({ adapter: directory.adapter('a'), allowedOrigins: [PAGE] })
  started.push(a)
  const onA = await rawConnect('websocket', a.base)
  raws.push(onA)
  return { a, sid: onA.sid }
}

/**
 * Node a with a session, h2 node b, and `send`: a request b takes while open, whose owner
 * lookup (`lookup`) answers only once b's forwarder closed, b's close begun meanwhile.
 * Resolves with b's answer, and whether the session is still a's once b closed.
 */
async function lateLookupThroughClosingH2Node(
  send: (b: H2Node, sid: string) => Promise<H2Answer>,
  lookup: 'ownerOf' | 'resumeOwner' = 'ownerOf',
): Promise<H2Answer & { stillOnA: boolean }> {
  const directory = new Directory()
  const { a, sid } = await sessionOnA(directory)
  const b = await startH2Node({ adapter: directory.adapter('b'), allowedOrigins: [PAGE] })
  h2Nodes.push(b)
  const lookingUp = lookupsHeldUntilForwarderCloses(lookup)
  process.on('warning', noteWarning)
  const answer = send(b, sid)
  await until(lookingUp, 3000, 'the owner looked up')
  const closing = b.app.close()
  const got = await within(answer, 5000, "b's answer")
  await within(closing, 5000, 'b closed')
  return { ...got, stillOnA: a.app.parley.sessionFor(sid) !== undefined }
}

/** A resume of `sid` from the page, a handshake POST of the polling endpoint. */
const resume = (b: H2Node, sid: string) =>
  b.send('POST', 'poll?v=1', encodeText({ type: PacketType.HELLO, sid, ack: 0 }), {
    'content-type': 'text/plain',
    origin: PAGE,
  })

/** What a client is told to try again by: its status, code and CORS header. */
const triedAgain = (answer: H2Answer) => ({
  status: answer.status,
  code: JSON.parse(answer.text).code,
  allowOrigin: answer.headers['access-control-allow-origin'],
})

it("answers a GET CLOSE server handoff on its stream when b's forwarder closed under its lookup", async () => {
  const answer = await lateLookupThroughClosingH2Node((b, sid) => b.send('GET', `poll?v=1&sid=${sid}`))
  expect({ status: answer.status, packets: packetsOf(answer.text) }).toEqual({
    status: 200,
    packets: [expect.objectContaining({ type: PacketType.CLOSE, reason: 'server handoff' })],
  })
  expect(warnings).toEqual([])
})

it("answers a POST 503 PARLEY_SERVER_SHUTTING_DOWN on its stream when b's forwarder closed under its lookup", async () => {
  const event = encodeText({ type: PacketType.EVENT, seq: 1, name: 'hi', args: [], ackId: 0 })
  const answer = await lateLookupThroughClosingH2Node((b, sid) =>
    b.send('POST', `poll?v=1&sid=${sid}`, event, { 'content-type': 'text/plain' }),
  )
  expect({ status: answer.status, code: JSON.parse(answer.text).code }).toEqual({
    status: 503,
    code: 'PARLEY_SERVER_SHUTTING_DOWN',
  })
  expect(warnings).toEqual([])
})

it("answers a resume 503 PARLEY_SERVER_SHUTTING_DOWN on its stream when b's forwarder closed under its lookup", async () => {
  const answer = await lateLookupThroughClosingH2Node(resume, 'resumeOwner')
  expect(triedAgain(answer)).toEqual({ status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN', allowOrigin: PAGE })
  // The session stays its owner's, where the client's next try finds it.
  expect(answer.stillOnA).toBe(true)
  expect(warnings).toEqual([])
})

it('answers so a resume that came while Fastify refused requests at close (see last-words.ts)', async () => {
  const directory = new Directory()
  const { a, sid } = await sessionOnA(directory)
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
  const lookingUp = lookupsHeldUntilForwarderCloses('resumeOwner')
  process.on('warning', noteWarning)
  const answer = resume(b, sid)
  await until(lookingUp, 3000, 'the owner looked up')
  // b's close goes on: its forwarder closes under the lookup.
  letGo()
  const got = await within(answer, 5000, "b's answer")
  await within(closing, 5000, 'b closed')
  expect(triedAgain(got)).toEqual({ status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN', allowOrigin: PAGE })
  expect(a.app.parley.sessionFor(sid)).toBeDefined()
  expect(warnings).toEqual([])
})
