// What both sides of a handoff act on: the old node's (handing-off.ts) and the claimer's
// (claim.ts); the take-back of a write given up on (take-back.ts) reads its parts from here too.
// The adapter makes one and hands it to each, so a part either side needs is added here once,
// not copied field by field into each.
import type { LocalSockets, MemoryAdapter } from '@parley/server'
import type { Claimers } from './claimers.js'
import type { Commands } from './commands.js'
import type { Cut } from './cut.js'
import type { HandOffStore } from './handoff.js'
import type { Nodes } from './nodes.js'
import type { KeptAside } from './past-marker.js'
import type { PendingRequests } from './pending.js'
import type { ReadPlaces } from './places.js'
import type { Publisher } from './publish.js'
import type { ReadWindow } from './read-window.js'
import type { SessionOwners } from './sessions.js'
import type { Losses } from './stats.js'
import type { WriteTakeBack } from './take-back.js'
import type { UncutSockets } from './uncut-sockets.js'
import type { UnreadTakeovers } from './unread-takeovers.js'
import type { Warnings } from './warnings.js'

/** What handing a session off and claiming one need of the adapter. */
export interface HandoffParts {
  /** This node's id. */
  readonly node: string
  /**
   * The key prefix: a claimer reads its answers on `<prefix>:response:<its id>`, and a claim
   * that finds nothing asks whether Redis is being refilled (see `restoring`).
   */
  readonly prefix: string
  readonly commands: Commands
  readonly handoffs: HandOffStore
  readonly takeBack: WriteTakeBack
  /** Who took over each session claimed here: the one node whose replies sent back count. */
  readonly claimers: Claimers
  readonly sessions: SessionOwners
  readonly sockets: LocalSockets
  /** This node's rooms and sockets. */
  readonly memory: MemoryAdapter
  /** The live set: whether a node is in it, and whether one said it left. */
  readonly nodes: Pick<Nodes, 'has' | 'saidGoodbye'>
  readonly cut: Cut
  /**
   * A socket's tail is sealed: the own broadcasts given up that never ran, which it waits for,
   * reach it first (see `Broadcasts.leaving`): those after `after` and up to `until` when given.
   */
  readonly leavingCut: (id: string, until?: number, after?: number) => void
  /**
   * Whether socket `id`, its claim marker back with `until` own broadcasts sent, awaits one of
   * them that Redis may still run, and its seal can wait for it (see `Broadcasts.awaitsAtMarker`).
   */
  readonly awaitsAtMarker: (id: string, until: number) => boolean
  /**
   * See `Broadcasts.pastMarker`: `done` is given what delivers the broadcasts and questions the
   * socket's rooms got meanwhile, for a session that stays on this node, or the questions its
   * tail takes, for one sealed.
   */
  readonly pastMarker: (
    id: string,
    until: number,
    limit: (wake: () => void) => () => void,
    done: (aside: KeptAside) => void,
  ) => void
  /**
   * Resolves once socket `id` awaits no own broadcast given up that Redis may still run, and
   * none emitted so far that it was left out of is still on its way back, or after `ms` (see
   * `Broadcasts.settled`).
   */
  readonly awaitedSettled: (id: string, ms: number) => Promise<void>
  readonly uncut: UncutSockets
  /** The sockets a takeover joined, until its tail is read (see unread-takeovers.ts). */
  readonly unread: UnreadTakeovers
  readonly readPlaces: ReadPlaces
  /** The broadcasts this node read lately (see read-window.ts). */
  readonly window: ReadWindow
  readonly pending: PendingRequests
  readonly publisher: Publisher
  /** The broadcast channel, where a claim marker goes. */
  readonly channel: string
  readonly warnings: Warnings
  /** Where a client's reply that could not be sent back to its asker is counted. */
  readonly losses: Losses
  readonly requestTimeout: number
  readonly closed: () => boolean
  /**
   * Whether this node's subscriber is subscribed and its connection up: what a claim needs to
   * hear its marker, the old node's seal and the broadcasts after the cut (see `Claims.claim`).
   */
  readonly hears: () => boolean
  /**
   * A handoff this node wrote may be claimed, or a claim it won may still stand in Redis, for
   * `ms` from now (see `Nodes.stop`).
   */
  readonly stands: (ms: number) => void
}
