import { createHash } from 'node:crypto'
import type { Commands } from './commands.js'
import { asText, codeOf } from './send.js'
import type { Warnings } from './warnings.js'
import { packParams, unpackParams } from './wire.js'

/** How long an owner record lives without an open, a resume or a renewal to refresh it: 24 h. */
export const SESSION_TTL_SECONDS = 24 * 60 * 60

/**
 * How old (`renewClock`) the record of a session still on this node gets before a heartbeat
 * renews it: a third of its lifetime, so that a renewal Redis misses (away for hours, or this
 * node paused) is sent again long before the record expires under a session that lives on.
 */
export const RENEW_AFTER_MS = (SESSION_TTL_SECONDS * 1000) / 3

/** Owner records renewed by one command; more go in the next, once Redis answered it. */
const RENEW_BATCH = 500

/**
 * The clock by which a record's age is told (`Date.now()`: Redis times its keys by its own wall
 * clock, which runs on while this process or its host is paused). A named object, as
 * `stallClock` in nodes.ts, so that a test can move it a day on.
 */
export const renewClock = { now: (): number => Date.now() }

// Renews each record (KEYS[i]) and the route parameters beside it (KEYS[i + 1]) only while the
// record still names this node (ARGV[1]): not one handed off ("<node> handoff"), nor one another
// node owns now, nor one gone (an ended session's, or lost with Redis' data: the restore of the
// heartbeat writes those). Only their lifetime changes: what every node reads stays as it was.
const RENEW_IF_OWNER = `
local renewed = 0
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('EXPIRE', KEYS[i], ARGV[2])
    redis.call('EXPIRE', KEYS[i + 1], ARGV[2])
    renewed = renewed + 1
  end
end
return renewed
`

// Removes the record (and the session's route parameters, KEYS[2]) only while it still names
// this node: a session that moved to another node meanwhile keeps its new owner, who reads them.
const DELETE_IF_OWNER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
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

/** The key of the route parameters of the session whose sid hashes to `hash` (see `SessionOwners`). */
export function paramsKey(prefix: string, hash: string): string {
  return `${prefix}:params:${hash}`
}

/**
 * An owner record as read: the node, whether that node handed the session off, and the route
 * parameters the session opened under, when a node wrote them beside the record (see
 * `SessionOwners.opened`).
 */
export interface OwnerRecord {
  node: string
  handingOff: boolean
  params?: Record<string, string>
}

/**
 * Which node owns each session: `<prefix>:session:<sha256(sid)>` holds the owner's node id,
 * followed by `HANDING_OFF` once that node handed the session off (see handoff.ts). Beside it,
 * `<prefix>:params:<sha256(sid)>` holds the route parameters the session opened under (a
 * separate key: a node of an earlier version reads the record as it always did), so that a node
 * a request under others reaches (another tenant of `/:tenant`) answers it as one of no session
 * without sending it on to the owner, reachable or not. A sid's parameters never change, so
 * whichever node writes them writes the same. This node remembers the keys it wrote (not the
 * sids), with the parameters, to write them again should Redis lose them, and when each was
 * written, to renew them before they expire under a session that lives on (`renew`); a
 * session it handed off leaves that bookkeeping, so that nothing it does later (a restore after
 * an outage, a renewal, the session's end) touches a record that another node may own by then.
 */
export class SessionOwners {
  /** Keys of this node's sessions, each with its route parameters as `packParams` wrote them. */
  readonly #owned = new Map<string, string | undefined>()
  /** Keys of sessions that ended while their record could not be removed. */
  readonly #ended = new Set<string>()
  /** Keys of sessions this node handed off, with their parameters: no longer its to write or to remove. */
  readonly #handedOff = new Map<string, string | undefined>()
  /**
   * Keys of this node's sessions (and, until a renewal walks past them, of those it handed off),
   * each with when its record was last written or renewed (`renewClock`), oldest first: a key
   * written again moves to the end, so a renewal reads only the front, the records that are due.
   */
  readonly #written = new Map<string, number>()
  /**
   * Keys whose record the claim of a takeover wrote (`claimed`), its tail since read sealed
   * (`claimStands`): the record names this node as `opened` would write it, so its first
   * `opened` writes no record again (see there).
   */
  readonly #claimWrote = new Set<string>()
  /** A write was skipped or failed while Redis was away: write every record again when it is back. */
  #stale = false
  #restoring: Promise<void> | undefined
  #renewing: Promise<void> | undefined

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

  /** The key of the route parameters beside the owner record `key` (see the class). */
  #paramsKey(key: string): string {
    return paramsKey(this.prefix, key.slice(key.lastIndexOf(':') + 1))
  }

  /**
   * Records this node as the owner of `sid` (or refreshes the record), and `params`, the route
   * parameters it opened under, beside it: none for a session without any (nothing to tell
   * apart). Resolves once Redis has them, or once the write is given up (not sent while Redis is
   * away or does not answer, else after `requestTimeout`: it is written again once Redis
   * answers); never rejects. The server waits for it before answering the handshake, so that
   * the next request finds the record anywhere.
   */
  opened(sid: string, params?: Readonly<Record<string, string>>): Promise<void> {
    const key = this.key(sid)
    const packed = params && Object.keys(params).length > 0 ? packParams(params) : undefined
    this.#owned.set(key, packed)
    this.#ended.delete(key)
    this.#handedOff.delete(key)
    // The takeover's own record, right after its claim wrote it (see `claimStands`): the same
    // SET again would be one more command for each session of a drain's adoption, which costs
    // the adopter more than the claim costs Redis. Only the parameters, which the claim does not
    // write, go; the record's renewal counts from the claim's write.
    if (this.#claimWrote.delete(key)) {
      const [params] = this.#commands(key, packed, [])
      return params ? this.#send(params, key) : Promise.resolve()
    }
    this.#wrote(key)
    return this.#write(key, packed)
  }

  /**
   * The record `key`, and its parameters `packed` first, on the same connection: a request that
   * finds the record finds them too, but where their write alone failed; one that does not is
   * sent on to the owner, as for a record of a node of an earlier version.
   */
  #write(key: string, packed: string | undefined): Promise<void> {
    const [params, record] = this.#commands(key, packed, [])
    const writes = [this.#send(record, key)]
    if (params) writes.unshift(this.#send(params, key))
    return Promise.all(writes).then(() => undefined)
  }

  /** The SETs of the parameters `packed` (when there are any) and of the record `key`, with `options`. */
  #commands(key: string, packed: string | undefined, options: string[]): [string[] | undefined, string[]] {
    const ttl = ['EX', String(SESSION_TTL_SECONDS)]
    const record = ['SET', key, this.node, ...ttl, ...options]
    return [packed === undefined ? undefined : ['SET', this.#paramsKey(key), packed, ...ttl], record]
  }

  /** `key`'s record written again, unless another node owns the session now (NX), with its parameters. */
  #restoreOwned(key: string): Promise<unknown> {
    const [params, record] = this.#commands(key, this.#owned.get(key), ['NX'])
    if (!params) return this.commands.send(record)
    return Promise.all([this.commands.send(params), this.commands.send(record)])
  }

  /**
   * Removes the record of `sid` if it still names this node. Nothing for a session this node
   * handed off: its record belongs to the handoff (and then to the node that claims it).
   */
  closed(sid: string): void {
    const key = this.key(sid)
    this.#claimWrote.delete(key)
    this.#owned.delete(key)
    this.#written.delete(key)
    if (this.#handedOff.delete(key)) return
    void this.#send(this.#deleteIfOwner(key), key)
  }

  #deleteIfOwner(key: string): string[] {
    return ['EVAL', DELETE_IF_OWNER, '2', key, this.#paramsKey(key), this.node]
  }

  /**
   * This node is handing `sid` off (the handoff script rewrites the record): from now on the
   * record is not this node's to write again or to remove.
   */
  handingOff(sid: string): void {
    const key = this.key(sid)
    this.#claimWrote.delete(key)
    const packed = this.#owned.get(key)
    this.#owned.delete(key)
    this.#ended.delete(key)
    this.#handedOff.set(key, packed)
  }

  /** The handoff of `sid` was not stored: the session stays this node's, as before. */
  keptBack(sid: string): void {
    const key = this.key(sid)
    if (this.#handedOff.has(key)) this.#owned.set(key, this.#handedOff.get(key))
    this.#handedOff.delete(key)
    // Still in its place unless a renewal walked past it meanwhile: then renewed a third of a
    // lifetime from now, when the record is two thirds of its lifetime old at the most.
    if (this.#owned.has(key) && !this.#written.has(key)) this.#written.set(key, renewClock.now())
  }

  /**
   * This node claimed `sid` (the claim script wrote the record): it owns the session now. Its
   * parameters come with the takeover's `opened`.
   */
  claimed(sid: string): void {
    const key = this.key(sid)
    if (!this.#owned.has(key)) this.#owned.set(key, undefined)
    this.#ended.delete(key)
    this.#handedOff.delete(key)
    this.#wrote(key)
  }

  /**
   * This node gave back its claim of `sid` (see `HandOffStore.unclaim`): the take-back writes the
   * record back to the handoff's, so this node neither writes it again nor removes it.
   */
  givenBack(sid: string): void {
    const key = this.key(sid)
    this.#claimWrote.delete(key)
    this.#owned.delete(key)
    this.#written.delete(key)
  }

  /**
   * The takeover of `sid`, claimed here (`claimed`), read its tail sealed, neither ended nor kept
   * by its old node: the record the claim wrote still names this node, as it will while the
   * session lives here. Nothing of the handoff can write it after a sealed read: the read took
   * the handoff's keys away, so a take-back of the old node's (UNDO) or its withdraw finds no
   * claim to revoke and leaves a record naming another node be, and there is no confirm to come
   * (CONFIRM follows a read without the seal alone, which may still find the session kept by its
   * old node: that record is written again, as before). Only should Redis lose its data between
   * the claim and the server's `opened` is the record missing, until the heartbeat that finds the
   * loss writes every record of this node again (`restore`), as for any other session.
   */
  claimStands(sid: string): void {
    const key = this.key(sid)
    if (this.#owned.has(key)) this.#claimWrote.add(key)
  }

  /** `key`'s record written now: renewed `RENEW_AFTER_MS` from now, if its session lives on here. */
  #wrote(key: string): void {
    this.#written.delete(key)
    this.#written.set(key, renewClock.now())
  }

  /**
   * A heartbeat went through: renews the records of this node's sessions that are
   * `RENEW_AFTER_MS` old, so that the record of a session that stays connected for days (no
   * resume to write it again) never expires under it. In batches of `RENEW_BATCH`, one command
   * each, only while the record names this node (`RENEW_IF_OWNER`). Reads only the due records
   * (the front of `#written`): a beat with none due costs nothing. A batch Redis does not take is
   * kept in its place, and sent again at the next beat. One renewal at a time; never rejects.
   */
  renew(): Promise<void> {
    this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = undefined
    })
    return this.#renewing
  }

  async #renew(): Promise<void> {
    for (let due = this.#due(); due.length > 0; due = this.#due()) {
      if (this.commands.unavailable() !== undefined) return
      const keys = due.flatMap((key) => [key, this.#paramsKey(key)])
      try {
        await this.commands.send([
          'EVAL',
          RENEW_IF_OWNER,
          String(keys.length),
          ...keys,
          this.node,
          String(SESSION_TTL_SECONDS),
        ])
      } catch {
        // Redis away or slow: the heartbeats say so already, and the next one that goes through
        // sends this batch again, long before the records expire (`RENEW_AFTER_MS`).
        return
      }
      for (const key of due) if (this.#written.has(key)) this.#wrote(key)
    }
  }

  /** The oldest records due for renewal, `RENEW_BATCH` at most; drops those no longer this node's. */
  #due(): string[] {
    const before = renewClock.now() - RENEW_AFTER_MS
    const due: string[] = []
    for (const [key, at] of this.#written) {
      if (at > before || due.length >= RENEW_BATCH) break
      // Handed off since: the handoff owns the record now (see `keptBack` for its return).
      if (this.#owned.has(key)) due.push(key)
      else this.#written.delete(key)
    }
    return due
  }

  /**
   * The owner record of `sid`, with the route parameters beside it when they read as such
   * (untrusted: what Redis holds; none from a node of an earlier version), or null when there is
   * no record: two GETs, sent together, waiting their turn behind a burst. Rejects with
   * `RedisUnreachableError` while Redis is away
   * or does not answer (see `Commands`), or when it does not answer within `requestTimeout`: the
   * request that asks is waiting. Rejects with `RedisRefusedError` when Redis answers the
   * record's GET with an error (the key holds another type: another application's, under this
   * prefix); parameters it refuses are none.
   */
  async owner(sid: string): Promise<OwnerRecord | null> {
    const key = this.key(sid)
    // In turn behind a burst on this node (see `Commands.sendInTurn`): refused for it, the
    // request would be answered as of an unknown session, and its client start a new one.
    const params = this.commands.sendInTurn(['GET', this.#paramsKey(key)]).then(asText, () => undefined)
    const record = asText(await this.commands.sendInTurn(['GET', key]))
    const packed = await params
    if (record === undefined || record === '') return null
    const owner = record.endsWith(HANDING_OFF)
      ? { node: record.slice(0, -HANDING_OFF.length), handingOff: true }
      : { node: record, handingOff: false }
    const read = packed === undefined || packed === '' ? undefined : unpackParams(packed)
    return read === undefined ? owner : { ...owner, params: read }
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
    const keys = [...this.#owned.keys(), ...this.#ended]
    for (let i = 0; i < keys.length; i += RESTORE_BATCH) {
      if (this.commands.unavailable() !== undefined) {
        this.#stale = true
        return
      }
      const writes = keys.slice(i, i + RESTORE_BATCH).map((key) => {
        if (this.#owned.has(key)) return this.#restoreOwned(key)
        if (!this.#ended.delete(key)) return Promise.resolve()
        // Not taken: kept for the next restore, as when the session ended.
        return this.commands.send(this.#deleteIfOwner(key)).catch((err: unknown) => {
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
   * opens or ends) and hold every handshake for as long as the server lets them. Behind a burst
   * (a thousand sessions opening at once), while Redis answers, it waits its turn, bounded (see
   * `Commands.sendInTurn`): given up, another node would not find the session until the next
   * heartbeat wrote its record again, and would answer its requests as of an unknown session.
   */
  #send(command: string[], key: string): Promise<void> {
    return this.commands.sendInTurn(command).then(
      () => undefined,
      (err: unknown) => {
        this.#missed(key)
        // Not connected: the heartbeat and the subscriber say so already.
        if (this.commands.client.isReady) {
          this.warnings.warn(
            'session-record',
            'could not write a session owner record; it is written again once Redis answers',
            { code: codeOf(err), err },
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
