// A draining node's own broadcast given up unanswered while sessions are handed over (Redis may
// still run it, see src/awaited.ts), staged on the node's client: its next broadcast PUBLISH held
// unanswered, and its notes to itself (the probe that proves such a broadcast never ran) lost for
// as long as the test says, so that nothing settles the broadcast before the test lets it.
import type { RedisClient } from '@parley/redis'
import { expect } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { adapterOf, type TrafficNode } from './e2e-suite.js'
import { holding } from './handoff-support.js'
import type { RedisClientType } from './nodes.js'
import { isBroadcast, isProbe } from './published.js'

export class HeldBroadcast {
  /** Whether the next broadcast PUBLISH is to be held (that one alone). */
  holdNext = false
  /** Whether the node's probes are lost: answered 0, as a PUBLISH that no subscriber heard. */
  loseProbes = false
  /** The broadcast PUBLISH held, and how to answer it (with what Redis would answer). */
  held: { args: string[]; answer: (reply: unknown) => void } | undefined

  /** The node's client as its adapter gets it: `startTrafficNode`'s `view`. */
  readonly view = (client: RedisClientType): RedisClient =>
    holding(client, (args) => {
      if (this.holdNext && isBroadcast(args)) {
        this.holdNext = false
        return new Promise((answer) => {
          this.held = { args, answer }
        })
      }
      if (this.loseProbes && isProbe(args)) return Promise.resolve(0)
      return undefined
    })

  /**
   * `node`, draining, broadcasts `first` to room `room`, held and given up unanswered: the
   * sessions handed over wait for it. Then `behind` sends what waits behind it: while Redis is
   * silent, never sent, and counted lost too. Its probes stay lost until the test says otherwise.
   */
  async giveUp(node: TrafficNode, first: number, behind: () => void): Promise<void> {
    const adapter = adapterOf(node)
    this.holdNext = true
    this.loseProbes = true
    node.started.app.parley.to('room').emit('room', first)
    await until(() => adapter.stats.lostBroadcasts === 1, 3000, `${first} given up`)
    behind()
    expect(adapter.stats.lostBroadcasts).toBe(2)
  }
}
