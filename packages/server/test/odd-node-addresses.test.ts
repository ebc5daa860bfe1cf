// An adapter of the application's own may name an owner at an address this node cannot forward
// to: another scheme than http:// or https://, or no URL at all. The owner counts as one that
// cannot be reached: the resume gets a new session, as for a node that is gone, and the failure
// is counted and logged. Node's own error (ERR_INVALID_PROTOCOL) reached the client instead, as
// the code of a refused handshake.
import type { TransportName } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

let nodes: Started[] = []
const clients: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

describe.each(['ftp://127.0.0.1:21', 'not a url'])('an owner published at %j', (address) => {
  it.each(['polling', 'sse', 'websocket'] satisfies TransportName[])(
    'counts as unreachable: a resume over %s gets a new session',
    async (transport) => {
      // With handoff, the test adapter names the owner's URL: the one it publishes here.
      const cluster = new Cluster({ handoff: true })
      const a = await startServer({ adapter: cluster.adapter('node0') })
      const b = await startServer({ adapter: cluster.adapter('node1') })
      nodes.push(a, b)
      const first = await rawConnect('websocket', a.base)
      first.close()
      await until(
        () => a.app.parley.sessionFor(first.sid)?.state === 'detached',
        3000,
        'the session detached',
      )
      cluster.addresses.set('node0', address)
      // Over WebSocket, `b` first asks `a` for the session through the adapter: not here.
      cluster.unreachable.add('node0')

      const again = await rawConnect(transport, b.base, { sid: first.sid, ack: 0 })
      clients.push(again)
      expect(again.open.recovered).toBe(false)
      expect(again.sid).not.toBe(first.sid)
      expect(b.app.parley.unreachableOwnerCount).toBe(1)
    },
  )
})
