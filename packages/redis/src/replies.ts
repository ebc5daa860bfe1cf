import { ErrorCode, ParleyError } from '@parley/protocol'
import type { BroadcastReply } from '@parley/server'
import { RedisErrorCode } from './send.js'

/**
 * The replies of one broadcast with acks across nodes, as they come: this node's count of its
 * own sockets, each other node's count, then the replies those nodes relay. The caller hears
 * the total once every node counted (or stopped being waited for), each reply as it comes, and
 * `done` once no reply is owed any more.
 *
 * Only a counted node's replies are relayed, and no more than it counted: a node counted as none
 * must not add replies to the total. A counted node that leaves, or this node's adapter closing,
 * fails the replies still owed at once, rather than at the timeout (or never, without one); so
 * does a node that says it made replies that never came (`replied`: Redis lost them).
 */
export class BroadcastReplies {
  /** Nodes whose count is still awaited. */
  readonly #waiting: Set<string>
  /** Nodes counted, with how many of their replies came. */
  readonly #counted = new Map<string, { count: number; relayed: number }>()
  #local: number | undefined
  #total = 0
  #relayed = 0
  #expected = false
  readonly #expect: (count: number) => void
  readonly #reply: (reply: BroadcastReply) => void
  readonly #done: () => void

  constructor(
    nodes: readonly string[],
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
    done: () => void,
  ) {
    this.#waiting = new Set(nodes)
    this.#expect = expect
    this.#reply = reply
    this.#done = done
  }

  /** How many nodes have not counted yet. */
  get uncounted(): number {
    return this.#waiting.size
  }

  /** The nodes whose count is still awaited. */
  awaited(): string[] {
    return [...this.#waiting]
  }

  /** Whether `node`'s count is still awaited. */
  awaits(node: string): boolean {
    return this.#waiting.has(node)
  }

  /** True once the total is known (every node counted, or stopped being waited for). */
  get expected(): boolean {
    return this.#expected
  }

  /** This node's count of its own sockets (their replies reach the caller without this). */
  local(count: number): void {
    this.#local = count
    this.#total += count
    this.#settle()
  }

  /**
   * Another node's count. One that joined after the sender's last view of the live set got the
   * broadcast too: its count is taken while the total is still open.
   */
  counted(node: string, count: number): void {
    if (!this.#waiting.delete(node) && (this.#expected || this.#counted.has(node))) return
    this.#counted.set(node, { count, relayed: 0 })
    this.#total += count
    this.#settle()
  }

  /** A reply another node relayed; `reply` makes it only when it is taken. */
  relayed(node: string, reply: () => BroadcastReply): void {
    const from = this.#counted.get(node)
    if (!from || from.relayed >= from.count) return
    from.relayed++
    this.#relayed++
    this.#reply(reply())
    this.#doneWhenAllCame()
  }

  /** The counted nodes that still owe replies. */
  owing(): string[] {
    const nodes: string[] = []
    for (const [node, from] of this.#counted) if (from.relayed < from.count) nodes.push(node)
    return nodes
  }

  /**
   * `node` says it has made `made` replies so far (`'all'`: every one it counted). It says so on
   * the channel its replies take, after them: those not here by now were lost by Redis, and fail
   * (`PARLEY_REDIS_REPLY_LOST`). Returns how many.
   */
  replied(node: string, made: number | 'all'): number {
    const from = this.#counted.get(node)
    if (!from) return 0
    const lost = Math.min(made === 'all' ? from.count : made, from.count) - from.relayed
    if (lost <= 0) return 0
    const error = new ParleyError<string>(
      RedisErrorCode.REPLY_LOST,
      `Redis lost ${lost} reply(ies) that the sockets of node ${node} made`,
    )
    for (let i = 0; i < lost; i++) {
      from.relayed++
      this.#relayed++
      this.#reply({ ok: false, error })
    }
    this.#doneWhenAllCame()
    return lost
  }

  /** `node` left the live set: not waited for if it had not counted; its owed replies fail. */
  gone(node: string): void {
    if (this.#waiting.delete(node)) {
      this.#settle()
      return
    }
    this.#failOwed(node, `node ${node} left the live set before its sockets replied`)
    this.#doneWhenAllCame()
  }

  /** Nodes that have not counted yet count as none. */
  stopWaiting(): void {
    this.#waiting.clear()
    this.#settle()
  }

  /** This node's adapter closed: it hears no more replies, and those still owed fail. */
  cancel(): void {
    this.stopWaiting()
    for (const node of this.#counted.keys()) {
      this.#failOwed(node, `the adapter closed before the sockets of node ${node} replied`)
    }
    this.#done()
  }

  #settle(): void {
    if (this.#expected || this.#local === undefined || this.#waiting.size > 0) return
    this.#expected = true
    this.#expect(this.#total)
    this.#doneWhenAllCame()
  }

  #doneWhenAllCame(): void {
    if (this.#expected && this.#local !== undefined && this.#relayed >= this.#total - this.#local) {
      this.#done()
    }
  }

  #failOwed(node: string, why: string): void {
    const from = this.#counted.get(node)
    if (!from || from.relayed >= from.count) return
    const error = new ParleyError<string>(ErrorCode.DISCONNECTED, why)
    while (from.relayed < from.count) {
      from.relayed++
      this.#relayed++
      this.#reply({ ok: false, error })
    }
  }
}
