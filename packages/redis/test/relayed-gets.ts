// The GETs another node relays to a node: what a closing node still relays when its drain ends,
// and ends with CLOSE 'server handoff'.
import type { SuiteNode } from './e2e-suite.js'

/** The header a node marks the requests it sends on with. */
const ROUTED = 'x-parley-routed'

/**
 * Counts, from now on, the GETs (an event stream, a held poll) relayed to `node` by another node
 * that `node` holds open; returns a reading of that count.
 */
export function relayedGetsHeld(node: SuiteNode): () => number {
  let held = 0
  node.started.app.server.on('request', (req, res) => {
    if (req.method !== 'GET' || req.headers[ROUTED] === undefined) return
    held++
    res.once('close', () => held--)
  })
  return () => held
}
