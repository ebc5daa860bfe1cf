import { createHash } from 'node:crypto'
import type { Commands } from './commands.js'
import { asText } from './send.js'
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

/** What follows the node id in the owner record of a session its node handed off. */
export const HANDING_OFF = ' handoff'

/** Owner records written at once after Redis lost its data; more wait for the next batch. */
const RESTORE_BATCH = 500

/**
 * What names a session in key names: SHA-256 of the sid, base64url. A sid is a bearer secret:
 * whoever can list the keys must not be able to resume a session.
 */
export function sidHash(sid: string): string {
  return createHash('sha256').update(sid).digest('base64url')
}

/** An owner record as read: the node, and whether that node handed the session off. */
export interface OwnerRecord {
  node: string
  handingOff: boolean
}

/**
 * Which node owns each session: `<prefix>:session:<sha256(sid)>` holds the owner's node id,
 * followed by `HANDING_OFF` once that node handed the session off (see handoff.ts). This node
 * remembers the keys it wrote (not the sids), to write them again should Redis lose them; a
 * session it handed off leaves that bookkeeping, so that nothing it does later (a restore after
 * an outage, the session's end) touches a record that another node may own by then.
 */
export class SessionOwners {
  readonly #owned = new Set<string>()
  /** Keys of sessions that ended while their record could not be removed. */
  readonly #ended = new Set<string>()
  /** Keys of sessions this node handed off: no longer its to write or to remove. */
  readonly #handedOff = new Set<string>()
  /** A write was skipped or failed while Redis was away: write every record again when it is back. */
  #stale = false
  #restoring: Promise<void> | undefined

  constructor(
    /** Bounded by `requestTimeout`: a handshake, a resume or a request waits on these. */
    private readonly commands: Commands,
    private readonly prefix: string,
    private readonly node: string,
    private readonly warnings: Warnings,
  ) {}

  key(sid: string): string {
    return `${this.prefix}:session:${sidHash(sid)}`
  }

  /**
   * Records this node as the owner of `sid` (or refreshes the record). Resolves once Redis has
   * it, or once the write is given up (not sent while Redis is away or does not answer, else
   * after `requestTimeout`: it is written again once Redis answers); never rejects. The server
   * waits for it before answering the handshake, so that the next request finds the record
   * anywhere.
   */
  opened(sid: string): Promise<void> {
    const key = this.key(sid)
    this.#owned.add(key)
    this.#ended.delete(key)
    this.#handedOff.delete(key)
    return this.#send(['SET', key, this.node, 'EX', String(SESSION_TTL_SECONDS)], key)
  }

  /**
   * Removes the record of `sid` if it still names this node. Nothing for a session this node
   * handed off: its record belongs to the handoff (and then to the node that claims it).
   */
  closed(sid: string): void {
    const key = this.key(sid)
    this.#owned.delete(key)
    if (this.#handedOff.delete(key)) return
    this.#send(['EVAL', DELETE_IF_OWNER, '1', key, this.node], key)
  }

  /**
   * This node is handing `sid` off (the handoff script rewrites the record): from now on the
   * record is not this node's to write again or to remove.
   */
  handingOff(sid: string): void {
    const key = this.key(sid)
    this.#owned.delete(key)
    this.#ended.delete(key)
    this.#handedOff.add(key)
  }

  /** The handoff of `sid` was not stored: the session stays this node's, as before. */
  keptBack(sid: string): void {
    const key = this.key(sid)
    if (this.#handedOff.delete(key)) this.#owned.add(key)
  }

  /** This node claimed `sid` (the claim script wrote the record): it owns the session now. */
  claimed(sid: string): void {
    const key = this.key(sid)
    this.#owned.add(key)
    this.#ended.delete(key)
    this.#handedOff.delete(key)
  }

  /**
   * This node gave back its claim of `sid` (see `HandOffStore.unclaim`): the take-back writes the
   * record back to the handoff's, so this node neither writes it again nor removes it.
   */
  givenBack(sid: string): void {
    this.#owned.delete(this.key(sid))
  }

  /**
   * The owner record of `sid`, or null when there is none: one GET. Rejects with
   * `RedisUnreachableError` while Redis is away or does not answer (see `Commands`), or when it
   * does not answer this one within `requestTimeout`: the request that asks is waiting. Rejects
   * with `RedisRefusedError` when Redis answers the GET with an error (the key holds another
   * type: another application's, under this prefix).
   */
  async owner(sid: string): Promise<OwnerRecord | null> {
    const value = asText(await this.commands.send(['GET', this.key(sid)]))
    if (value === undefined || value === '') return null
    return value.endsWith(HANDING_OFF)
      ? { node: value.slice(0, -HANDING_OFF.length), handingOff: true }
      : { node: value, handingOff: false }
  }

  /**
   * A heartbeat went through, so Redis is there: writes again the records of this node's live
   * sessions (every one when they may be gone, `lost`: Redis lost its data, or they expired while
   * this node was paused past their lifetime; else only after writes were missed),
   * unless another node owns one now (NX), and removes those of sessions that ended meanwhile.
   */
  restore(lost: boolean): Promise<void> {
    if (!lost && !this.#stale) return Promise.resolve()
    this.#restoring ??= this.#restore().finally(() => {
      this.#restoring = undefined
    })
    return this.#restoring
  }

  async #restore(): Promise<void> {
    this.#stale = false
    const keys = [...this.#owned, ...this.#ended]
    for (let i = 0; i < keys.length; i += RESTORE_BATCH) {
      if (this.commands.unavailable() !== undefined) {
        this.#stale = true
        return
      }
      const writes = keys.slice(i, i + RESTORE_BATCH).map((key) => {
        if (this.#owned.has(key)) {
          return this.commands.send(['SET', key, this.node, 'EX', String(SESSION_TTL_SECONDS), 'NX'])
        }
        if (!this.#ended.delete(key)) return Promise.resolve()
        // Not taken: kept for the next restore, as when the session ended.
        return this.commands.send(['EVAL', DELETE_IF_OWNER, '1', key, this.node]).catch((err: unknown) => {
          this.#missed(key)
          throw err
        })
      })
      const results = await Promise.allSettled(writes)
      if (results.some((result) => result.status === 'rejected')) this.#stale = true
    }
  }

  /**
   * Writes a record, or gives it up and catches up once Redis answers again: while Redis is
   * away or does not answer, writes would pile up in the client's queues (one per session that
   * opens or ends) and hold every handshake for as long as the server lets them.
   */
  #send(command: string[], key: string): Promise<void> {
    return this.commands.send(command).then(
      () => undefined,
      (err: unknown) => {
        this.#missed(key)
        // Not connected: the heartbeat and the subscriber say so already.
        if (this.commands.client.isReady) {
          this.warnings.warn(
            'session-record',
            'could not write a session owner record; it is written again once Redis answers',
            { err },
          )
        }
      },
    )
  }

  #missed(key: string): void {
    this.#stale = true
    if (!this.#owned.has(key) && !this.#handedOff.has(key)) this.#ended.add(key)
  }
}
