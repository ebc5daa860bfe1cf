// An HTTP/1.1 node holding sessions and an HTTP/2 node sending their requests on to it, as the
// HTTP/2 forwarding suites set them up: the two ways the owner is reached, and the nodes and raw
// clients a test started, closed after it.

import type { AdapterFactory } from '@parley/server'
import { afterEach } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import type { H2Node } from './h2-node.js'
import { closeApp, type Started } from './helpers.js'
import type { RawClient } from './raw-client.js'

/** Two nodes' adapters: the owner's URL published (network), or none (`routeRequest`). */
export const relayWays: [string, () => { adapter: (name: string) => AdapterFactory }][] = [
  ['over the network', () => new Directory()],
  ['through routeRequest', () => new Cluster()],
]

/**
 * Lists for what each test starts, emptied after it: its raw clients closed, then its HTTP/2
 * nodes stopped, then its HTTP/1.1 nodes closed. Called before the file's own `afterEach`, which
 * therefore runs first.
 */
export function relayNodesClosedAfterEach() {
  const started: Started[] = []
  const h2Nodes: H2Node[] = []
  const raws: RawClient[] = []
  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.close()
    for (const node of h2Nodes.splice(0)) await node.stop()
    for (const node of started.splice(0)) await closeApp(node.app)
  })
  return { started, h2Nodes, raws }
}
