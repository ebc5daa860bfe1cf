// A GET of a session whose node handed it off and is gone, reaching a node on HTTP/2 (TLS,
// `allowHTTP1`) that is closing too, once Fastify refuses requests there: answered CLOSE 'server
// handoff', as on an HTTP/1.1 node (get-after-drain.test.ts in @parley/redis), with no
// `Connection` header, which HTTP/2 has not (Node warns of one, and drops it).
import { PacketType } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { packetsOf } from './answer-packets.js'
import { Cluster } from './cluster-adapter.js'
import { type H2Node, startH2NodeHeldAtClose } from './h2-node.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const started: Started[] = []
const h2Nodes: H2Node[] = []
const raws: RawClient[] = []
const releases: (() => void)[] = []
const warnings: string[] = []
const noteWarning = (warning: Error) => warnings.push(String(warning))

afterEach(async () => {
  process.off('warning', noteWarning)
  warnings.length = 0
  for (const raw of raws.splice(0)) raw.close()
  for (const release of releases.splice(0)) release()
  for (const node of h2Nodes.splice(0)) await node.stop()
  for (const node of started.splice(0)) await closeApp(node.app)
})

it('answers the GETs of a session handed off by a node gone CLOSE server handoff over h2, with no connection header', async () => {
  const cluster = new Cluster({ handoff: true })
  const a = await startServer({ adapter: cluster.adapter('a') })
  started.push(a)
  const onA = await rawConnect('websocket', a.base)
  raws.push(onA)
  // a drains: its session is stored for another node to claim, and nobody does.
  const closingA = a.app.close()
  await until(() => cluster.handoffs.get(onA.sid)?.stored === true, 3000, "a's session stored")
  // a is gone for the other nodes: its address leads nowhere.
  const nowhere = await holdPort()
  releases.push(nowhere.release)
  cluster.addresses.set('a', `http://127.0.0.1:${nowhere.port}`)
  const { node: b, letGo, closeHeld } = await startH2NodeHeldAtClose({ adapter: cluster.adapter('b') })
  h2Nodes.push(b)
  releases.push(letGo)
  const { closing } = await closeHeld()
  // Node warns of a connection-specific header on an h2 answer once a process: the file's only
  // test, its first such answers.
  process.on('warning', noteWarning)

  for (const endpoint of ['poll', 'sse']) {
    const answer = await within(b.send('GET', `${endpoint}?v=1&sid=${onA.sid}`), 5000, `the ${endpoint} GET`)
    expect({ endpoint, status: answer.status, packets: packetsOf(answer.text) }).toEqual({
      endpoint,
      status: 200,
      packets: [expect.objectContaining({ type: PacketType.CLOSE, reason: 'server handoff' })],
    })
  }
  expect(warnings).toEqual([])
  letGo()
  await within(closing, 5000, 'b closed')
  await within(closingA, 8000, 'a closed')
}, 35_000)
