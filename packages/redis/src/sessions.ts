import { createHash } from 'node:crypto'
import type { RedisClient } from './options.js'
import { send } from './send.js'
import type { Warnings } from './warnings.js'

/** How long an owner record lives without an open or a resume to refresh it: 24 h. */
export const SESSION_TTL_SECONDS = 24 * 60 * 60

// Removes the record only while it still names this node: a session that moved to another node
// meanwhile keeps its new owner.
const DELETE_IF_OWNER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

/** Owner records written at once after Redis lost its data; more wait for the next batch. */
const RESTORE_BATCH = 500

/**
 * Which node owns each session: `<prefix>:session:<sha256(sid)>` holds the owner's node id. The
 * key is a hash because a sid is a bearer secret: whoever can list the keys must not be able to
 * resume a session. This node remembers the keys it wrote (not the sids), to write them again
 * should Redis lose them.
 */
export class SessionOwners {
  readonly #owned = new Set<string>()
  /** A write was skipped or failed while Redis was away: write every record again when it is back. */
  #stale = false
  #restoring: Promise<void> | undefined

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly node: string,
    private readonly warnings: Warnings,
  ) {}

  key(sid: string): string {
    return `${this.prefix}:session:${createHash('sha256').update(sid).digest('base64url')}`
  }

  /** Records this node as the owner of `sid` (or refreshes the record). */
  opened(sid: string): void {
    const key = this.key(sid)
    this.#owned.add(key)
    this.#send(['SET', key, this.node, 'EX', String(SESSION_TTL_SECONDS)])
  }

  /** Removes the record of `sid` if it still names this node. */
  closed(sid: string): void {
    const key = this.key(sid)
    this.#owned.delete(key)
    this.#send(['EVAL', DELETE_IF_OWNER, '1', key, this.node])
  }

  /** The node id recorded as the owner of `sid`, or null: one GET. */
  async owner(sid: string): Promise<string | null> {
    // Not queued while Redis is away: the request that asks is waiting.
    if (!this.client.isReady) throw new Error('@parley/redis: Redis is not reachable')
    const owner = await send(this.client, ['GET', this.key(sid)])
    return typeof owner === 'string' ? owner : null
  }

  /**
   * Redis is back, possibly empty: writes again the records of this node's live sessions,
   * unless another node owns one now (NX).
   */
  restore(force: boolean): Promise<void> {
    if (!force && !this.#stale) return Promise.resolve()
    this.#restoring ??= this.#restore().finally(() => {
      this.#restoring = undefined
    })
    return this.#restoring
  }

  async #restore(): Promise<void> {
    this.#stale = false
    const keys = [...this.#owned]
    for (let i = 0; i < keys.length; i += RESTORE_BATCH) {
      if (!this.client.isReady) {
        this.#stale = true
        return
      }
      const batch = keys.slice(i, i + RESTORE_BATCH).filter((key) => this.#owned.has(key))
      const writes = batch.map((key) =>
        send(this.client, ['SET', key, this.node, 'EX', String(SESSION_TTL_SECONDS), 'NX']),
      )
      const results = await Promise.allSettled(writes)
      if (results.some((result) => result.status === 'rejected')) this.#stale = true
    }
  }

  #send(command: string[]): void {
    // While Redis is away, commands would pile up in the client's offline queue: skip, and
    // write every record again once it is back.
    if (!this.client.isReady) {
      this.#stale = true
      return
    }
    send(this.client, command).catch((err: unknown) => {
      this.#stale = true
      this.warnings.warn('session-record', 'could not write a session owner record', { err })
    })
  }
}
