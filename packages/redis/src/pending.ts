// The requests of this node that wait for other nodes' answers (cluster queries, broadcasts with
// acks, handoff requests, claim markers), by id: one place that hands each answer to its request
// and tells them all when a node goes or the adapter closes.
import { randomBytes } from 'node:crypto'
import type { ResponsePacket } from './wire.js'

/** A request of this node that awaits the other nodes' answers. */
export interface Pending {
  answer(node: string, packet: ResponsePacket): void
  /**
   * `node` left the live set: it will not answer. `lapsed`: its record lapsed without a goodbye
   * (see `Nodes.saidGoodbye`), so it may still be alive and its answer is lost without a word
   * from it; false when it said it left, and took its sockets with it.
   */
  gone(node: string, lapsed: boolean): void
  /** `node` said that it left (see `Nodes.saidGoodbye`): nothing more comes from it. */
  saidGoodbye?(node: string): void
  /**
   * `node` subscribed again after its subscriber connection dropped (this node's own id: this
   * node did): what was PUBLISHed to it meanwhile, or by it to this node, never came.
   */
  heard?(node: string): void
  /** The adapter closes: settle with what came, and fail what is still owed. */
  cancel(): void
}

/** A new request id: random, so that answers meant for another node's request never match. */
export function requestId(): string {
  return randomBytes(12).toString('base64url')
}

/** This node's requests still waiting, by id. */
export class PendingRequests {
  readonly #byId = new Map<string, Pending>()

  set(id: string, pending: Pending): void {
    this.#byId.set(id, pending)
  }

  delete(id: string): void {
    this.#byId.delete(id)
  }

  /** Still waiting: not finished, timed out nor cancelled. */
  has(id: string): boolean {
    return this.#byId.has(id)
  }

  /** An answer from another node, to the request it names (if that one still waits). */
  answer(packet: ResponsePacket): void {
    this.#byId.get(packet.id)?.answer(packet.n, packet)
  }

  // Each of the calls below goes over a copy: a request told may finish, and leave the map.

  /** `nodes` left the live set, all of them lapsed or all of them with a goodbye (`lapsed`). */
  gone(nodes: readonly string[], lapsed: boolean): void {
    for (const pending of [...this.#byId.values()]) for (const node of nodes) pending.gone(node, lapsed)
  }

  /** `node` said that it left. */
  saidGoodbye(node: string): void {
    for (const pending of [...this.#byId.values()]) pending.saidGoodbye?.(node)
  }

  /** `node` subscribed again (see `Pending.heard`). */
  heard(node: string): void {
    for (const pending of [...this.#byId.values()]) pending.heard?.(node)
  }

  /** The adapter closes. */
  cancel(): void {
    for (const pending of [...this.#byId.values()]) pending.cancel()
  }
}
