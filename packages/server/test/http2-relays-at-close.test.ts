// A node on HTTP/2 (TLS, `allowHTTP1`) that closes while it relays another node's event stream or
// held poll, over the network or through its adapter's `routeRequest`: as on an HTTP/1.1 node
// (routed-relays-at-close.test.ts, forwarding.test.ts), the client is told CLOSE 'server handoff'
// and the session lives on at its owner. The relaying node writes that answer itself (for a held
// poll the owner has not answered), with no `Connection` header, which HTTP/2 has not: Node warns
// of one, once a process, and drops it.
import { PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { startH2Node } from './h2-node.js'
import { relayNodesClosedAfterEach, relayWays } from './h2-relay-nodes.js'
import { startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'

const { started, h2Nodes, raws } = relayNodesClosedAfterEach()
const warnings: string[] = []
const noteWarning = (warning: Error) => warnings.push(String(warning))

afterEach(() => {
  process.off('warning', noteWarning)
  warnings.length = 0
})

describe.each(relayWays)('an h2 node that closes while it relays %s', (_way, cluster) => {
  // The held poll first: its CLOSE is the one the relaying node writes itself.
  it.each(['polling', 'sse'] as const)('ends a %s GET with CLOSE server handoff', async (transport) => {
    const nodes = cluster()
    const a = await startServer({ adapter: nodes.adapter('a') })
    started.push(a)
    const b = await startH2Node({ adapter: nodes.adapter('b') })
    h2Nodes.push(b)
    const raw = await rawConnect(transport, a.base)
    raws.push(raw)
    const session = () => a.app.parley.sessionFor(raw.sid)
    // The client's own GET goes; its next one comes through b.
    if (transport === 'polling') raw.close()
    const path = transport === 'sse' ? 'sse' : 'poll'
    process.on('warning', noteWarning)
    let status = 0
    const answer = b.send('GET', `${path}?v=1&sid=${raw.sid}`, '', {}, (received) => {
      status = received
    })
    if (transport === 'sse') await until(() => status === 200, 3000, 'the stream relayed through b')
    else
      await until(() => session()?.transport?.http?.nextGetWithin() === undefined, 3000, 'a poll held at a')

    await within(b.app.close(), 5000, 'b closed')
    const got = await within(answer, 3000, 'the answer through b')
    expect(got.status).toBe(200)
    expect(packetsOf(got.text).at(-1)).toMatchObject({ type: PacketType.CLOSE, reason: 'server handoff' })
    // The session lives on at a, its request through b let go.
    expect(session()?.state).not.toBe('closed')
    expect(warnings).toEqual([])
  })
})
