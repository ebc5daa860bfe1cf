// Requests of another node's session on their way through a node on HTTP/2 (TLS, `allowHTTP1`)
// when that node closes and its forwarder with it, their owner looked up but nothing sent yet:
// as on an HTTP/1.1 node (post-across-forwarder-close.test.ts), a GET gets CLOSE 'server
// handoff', a POST the coded 503 it reads as "try again", each on its own stream, with no
// `Connection` header: Node warns of one on an h2 answer (once a process), and drops it.
import { encodeText, PacketType } from '@parley/protocol'
import { afterEach, expect, it, vi } from 'vitest'
import { Forwarder } from '../src/http/forward.js'
import { packetsOf } from './answer-packets.js'
import { Directory } from './directory-adapter.js'
import { type H2Answer, type H2Node, startH2Node } from './h2-node.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const started: Started[] = []
const h2Nodes: H2Node[] = []
const raws: RawClient[] = []
const warnings: string[] = []
const noteWarning = (warning: Error) => warnings.push(String(warning))

afterEach(async () => {
  process.off('warning', noteWarning)
  warnings.length = 0
  vi.restoreAllMocks()
  for (const raw of raws.splice(0)) raw.close()
  for (const node of h2Nodes.splice(0)) await node.stop()
  for (const node of started.splice(0)) await closeApp(node.app)
})

/**
 * Node a (HTTP/1.1) with a session, h2 node b, and `through(send)`: a request b takes while open,
 * whose owner lookup answers only once b's forwarder closed (a store slow to answer), b's close
 * begun meanwhile. Resolves with b's answer.
 */
async function lateLookupThroughClosingH2Node(send: (b: H2Node, sid: string) => Promise<H2Answer>) {
  const directory = new Directory()
  const a = await startServer({ adapter: directory.adapter('a') })
  started.push(a)
  const b = await startH2Node({ adapter: directory.adapter('b') })
  h2Nodes.push(b)
  const onA = await rawConnect('websocket', a.base)
  raws.push(onA)

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
  const ownerOf = Forwarder.prototype.ownerOf
  vi.spyOn(Forwarder.prototype, 'ownerOf').mockImplementation(async function (this: Forwarder, ...args) {
    lookingUp = true
    const owner = await ownerOf.apply(this, args)
    await forwarderClosed
    return owner
  })
  process.on('warning', noteWarning)
  const answer = send(b, onA.sid)
  await until(() => lookingUp, 3000, 'the owner looked up')
  const closing = b.app.close()
  const got = await within(answer, 5000, "b's answer")
  await within(closing, 5000, 'b closed')
  return got
}

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
