// The frame of the handoff files: Parley servers on the in-process cluster adapter, most often
// behind a round-robin proxy, and the real client. A file owns its nodes, clients and proxy; the
// hook here closes them after each test, in the order a drain needs (as `balancedSuite` does for
// the Redis suites).
import type { Socket } from '@parley/client'
import { afterEach } from 'vitest'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { closeApp, type Started, sleep } from './helpers.js'

/** What a handoff test opened, for `handoffScene`'s teardown to close. */
export interface HandoffScene {
  /** The nodes the test started; one it closes in its body it takes out with `letGo`. */
  readonly nodes: Started[]
  /** The Parley clients it connected. */
  readonly clients: Socket[]
  /** The round-robin proxy in front of the nodes, once the test starts one. */
  proxy: RoundRobinProxy | undefined
  /** Takes `node` out of `nodes`: the test closed it, and the teardown must not wait on it again. */
  letGo(node: Started): void
}

/**
 * Registers the `afterEach` of a handoff file and returns what it closes: the clients are
 * disconnected, then the proxy closed, then every node (`closeApp`: its sessions ended first).
 */
export function handoffScene(): HandoffScene {
  const scene: HandoffScene = {
    nodes: [],
    clients: [],
    proxy: undefined,
    letGo(node) {
      const at = scene.nodes.indexOf(node)
      if (at >= 0) scene.nodes.splice(at, 1)
    },
  }
  afterEach(async () => {
    for (const c of scene.clients.splice(0)) c.disconnect()
    // Their goodbyes reach the nodes before the nodes close (else each would be handed off).
    await sleep(50)
    await scene.proxy?.close()
    scene.proxy = undefined
    await Promise.all(scene.nodes.map((n) => closeApp(n.app)))
    scene.nodes.length = 0
  })
  return scene
}
