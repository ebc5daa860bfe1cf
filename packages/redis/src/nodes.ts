import { ExpiringSet } from '@parley/server'
import type { Commands } from './commands.js'
import type { NodesChange } from './nodes-change.js'
import { asText, RedisRefusedError, settleable, within } from './send.js'
import { SESSION_TTL_SECONDS } from './sessions.js'
import type { Warnings } from './warnings.js'
import type { MembershipPacket } from './wire.js'

/** A node whose record was not refreshed for this many heartbeats is gone. */
export const MISSED_HEARTBEATS = 3

/**
 * The longest `stop()` waits for Redis (capped by `requestTimeout`): a Redis that is connected
 * but does not answer must not hold the app's close, and Fastify does not time the `onClose`
 * hook that closes the adapter. A record left behind expires within `MISSED_HEARTBEATS`
 * heartbeats.
 */
export const GOODBYE_MS = 1000

// One round trip per heartbeat: refresh this node's record (its address, with a TTL) and its
// note (what this node's version can do, same TTL), index it in the sorted set, forget index
// entries long dead, and read back every node whose record is still there, with its note ('' for
// a node of an earlier version, which writes none). Liveness is the record's TTL, kept by
// Redis' clock: nodes' clocks only serve to tidy the index. Returns { 1 if Redis lost this
// node's beats (below), { id, address, note, ... }, { keys of index entries removed: not a
// record }, { ids of ARGV[11...] (the nodes this node held live) whose record is gone and whose
// goodbye mark is there: they closed and said so, whether or not this node heard it }, 1 if this
// node's own record was still there, Redis' TIME as it ran the beat (read last: no write follows
// it; empty where an ACL refuses it, and this node then reads no Redis clock), and the run_id of
// the server that ran it (INFO server: another after a failover or a restart, whose clock may be
// another machine's; '' where an ACL refuses INFO) }.
// A member whose record is not a string is skipped and its index entry removed. The records are read by names built here: a
// single Redis (or a primary with replicas), not Redis Cluster. Every beat marks Redis filled
// (KEYS[4]) and leaves its number (ARGV[10]) in the node's beat record (KEYS[7]), kept as long as
// the address record. A beat that finds there less than the number of the last beat this node
// saw answered (ARGV[8], '0' before any), or nothing, knows Redis lost writes it had taken (a
// restart, empty or from an older snapshot; a failover to a replica behind): it marks Redis
// refilling (KEYS[5]) for one record lifetime: see `restoring`. Not the node's own record: that
// one lapses whenever the node misses three beats (its process stalled, its connection slow or
// cut), and Redis lost nothing then; its beat record outlives such a pause by far, but not one of
// a day: a beat that may come that long after the last one answered sends '0' (see `#beat`).
// A known address is also kept in the node's address record (KEYS[6]) for ARGV[9] ms, far past
// the record's lapse: see `ADDRESS_KEEP_MS`.
const HEARTBEAT = `
local previous = redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4], 'GET')
if ARGV[2] ~= '' then redis.call('SET', KEYS[6], ARGV[2], 'PX', ARGV[9]) end
redis.call('SET', KEYS[4], '1', 'NX')
local kept = tonumber(redis.call('GET', KEYS[7]) or '') or 0
local lost = ARGV[8] ~= '0' and kept < tonumber(ARGV[8])
redis.call('SET', KEYS[7], ARGV[10], 'PX', ARGV[9])
if lost then redis.call('SET', KEYS[5], '1', 'PX', ARGV[4]) end
redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
local live = {}
local skipped = {}
local seen = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local address = redis.pcall('GET', ARGV[6] .. id)
  if type(address) == 'table' then
    -- Not a string (WRONGTYPE): no node's record. Its index entry goes, so that one stray key
    -- cannot stop every node's heartbeat; the key itself is left to whoever wrote it.
    redis.call('ZREM', KEYS[1], id)
    skipped[#skipped + 1] = ARGV[6] .. id
  elseif address then
    seen[id] = true
    local note = redis.pcall('GET', ARGV[6] .. id .. ':note')
    if type(note) ~= 'string' then note = '' end
    live[#live + 1] = id
    live[#live + 1] = address
    live[#live + 1] = note
  end
end
local said = {}
for i = 11, #ARGV do
  local id = ARGV[i]
  if not seen[id] and redis.call('EXISTS', ARGV[6] .. id .. ':left') == 1 then said[#said + 1] = id end
end
local time = redis.pcall('TIME')
if type(time) ~= 'table' or time.err then time = {} end
local info = redis.pcall('INFO', 'server')
local run = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or ''
return { lost and 1 or 0, live, skipped, said, previous and 1 or 0, time, run }
`

/**
 * What a node of this version publishes beside its record (`<prefix>:node:<id>:note`, JSON),
 * so that the others know what it can do. A node of an earlier version publishes none.
 */
export interface NodeNote {
  /**
   * 1: it answers a handoff request that asks so (`a: true`) at once with `asked`, before it
   * hands the session off; a node that does not is not there. 2: it also answers a
   * `RepliedRequest` (how many replies to a broadcast with acks it made so far). 3: its goodbye
   * mark lasts `GOODBYE_MARK_MS` (see `MARKS_A_DAY`). 4: it ignores a broadcast with acks asked
   * again of another node, and asks its sockets one asked of it again only once (see
   * `ASKS_ACKS_AGAIN`). 5: it adopts the sessions a draining node asks it to (see `ADOPTS`).
   * 6: it answers such a request that asks so (`a: true`) at once with `asked`, before any claim,
   * and starts no claim past the asker's wait (`w`) (see `SAYS_TAKING`).
   */
  v: number
  /**
   * The Parley path the node serves (`'/parley'`), when known: nodes of one prefix serve one
   * application, and one path.
   */
  p?: string
  /**
   * The same under the Fastify prefix of Parley's context, each parameter that fills a segment
   * written `:` (`'/:/parley'` under `/:tenant`), when known: compared in place of `p` with a
   * node that says it, since nodes under `/a` and `/b` (or `/:tenant` and `/:org/x`) serve one
   * `path` in two applications.
   */
  r?: string
}

/**
 * Keys that say whether Redis may still lack owner records it lost (a restart without its data):
 * `filled` exists from the first heartbeat into it on; `refilling` for one record lifetime after
 * a node found that Redis lost its beats (see HEARTBEAT), while the nodes write the records of
 * their sessions again (each right after the beat that finds so). Not after a node's record
 * merely lapsed (a stalled process): Redis lost nothing then.
 */
export function restoringKeys(prefix: string): { filled: string; refilling: string } {
  return { filled: `${prefix}:filled`, refilling: `${prefix}:refilling` }
}

/**
 * True when Redis may lack records it held before (see `restoringKeys`): no node has beaten
 * since it started empty, or that first beat is less than a record lifetime old. Asked for a
 * resume whose claim found nothing, it waits its turn behind a burst on this node (see
 * `Commands.sendInTurn`): refused for it, the client would be told to try again rather than
 * given its new session. Rejects with `RedisUnreachableError` when Redis cannot be asked (see
 * `Commands`), and with `RedisBusyError` past `MAX_QUEUED_COMMANDS` waiting.
 */
export async function restoring(commands: Commands, prefix: string): Promise<boolean> {
  const { filled, refilling } = restoringKeys(prefix)
  const reply = await commands.sendInTurn(['MGET', filled, refilling])
  const [isFilled, isRefilling] = Array.isArray(reply) ? reply : []
  return isFilled === null || isFilled === undefined || (isRefilling !== null && isRefilling !== undefined)
}

/**
 * How many nodes that said they left a node remembers (see `Nodes.saidGoodbye`). A node's id is
 * new at every start, so the set only grows; a node forgotten is asked about in Redis again.
 */
export const GOODBYES_KEPT = 1000

/**
 * How many nodes whose record lapsed a node remembers the address of (see `Nodes.lastAddress`),
 * most recent kept. A node forgotten (or never seen) while out of the live set is looked up in
 * its address record again.
 */
export const LAPSED_KEPT = 1000

/**
 * How long a node's address record (`<prefix>:node:<id>:address`) outlives its last heartbeat:
 * as long as an owner record naming the node can (`SESSION_TTL_SECONDS`, 24 h). A lapsed record
 * does not prove a node dead (see `Nodes.lastAddress`), so a node that never saw it live (it
 * started after the lapse, or forgot it among `LAPSED_KEPT` others) still finds where its
 * sessions are. One key per node started in that time (a node's id is new at every start); a
 * node that closes removes its own.
 */
export const ADDRESS_KEEP_MS = SESSION_TTL_SECONDS * 1000

/**
 * How long the mark of a node's goodbye (`<prefix>:node:<id>:left`) lasts at least. A node reads
 * it for the nodes it held live and finds gone, at its next heartbeat that goes through: one whose
 * heartbeats failed for a while (Redis away from it, a stalled process) reads it that much later,
 * and a mark that lasted only a record lifetime would have it tell a goodbye as a lapse. A day,
 * as the address record the closing node removes: the same count of keys per node started, and
 * the same limit, past which a node that was out that long knows neither where a lapsed node
 * was nor that a gone one left.
 */
export const GOODBYE_MARK_MS = ADDRESS_KEEP_MS

/**
 * The clock by which a heartbeat knows how long it has been since the last one Redis answered
 * (`Date.now()`: Redis times its keys by its own wall clock, which runs on while this process or
 * its host is paused). A named object, as `placesClock` in places.ts, so that a test can move it
 * past `ADDRESS_KEEP_MS` for that reading alone.
 */
export const stallClock = { now: (): number => Date.now() }

/** The `v` this version publishes in its note. */
export const NOTE_VERSION = 6

/**
 * The first `v` whose nodes read an `AdoptRequest` (see `Adapter.askAdoption`): a node of an
 * earlier one would drop it as malformed, so it is never asked.
 */
export const ADOPTS = 5

/**
 * The first `v` whose nodes say at once that they took an `AdoptRequest` that asks so (`asked`):
 * one of an earlier one would never say it, and would have its sessions asked of another node
 * each time, so it is not asked to, and is taken at its word from the start.
 */
export const SAYS_TAKING = 6

/**
 * The first `v` whose nodes leave a goodbye mark of `GOODBYE_MARK_MS` themselves. A node of an
 * earlier one leaves a shorter one (a record lifetime), or none: the nodes that hear it leave
 * make its mark last that long (see `Nodes.left`).
 */
export const MARKS_A_DAY = 3

// KEYS: a node's goodbye mark. ARGV: GOODBYE_MARK_MS. Makes the mark last that long, unless it
// lasts longer already (a handoff or a claim of the node's may still stand): written by a node
// that heard the goodbye, for one of an earlier version, whose own mark is shorter, or none.
const KEEP_MARK = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`

/** The first `v` whose nodes answer a `RepliedRequest`: those of an earlier one are not asked. */
export const ANSWERS_REPLIED = 2

/**
 * The first `v` whose nodes ignore a broadcast with acks asked again of another node (its `to`),
 * and never ask their sockets one twice (see asked-here.ts). A node of an earlier one would run
 * each such ask as a new one: no broadcast with acks is asked again while one is live.
 */
export const ASKS_ACKS_AGAIN = 4

export interface NodesConfig {
  /** The adapter's commands: none sent while Redis is away or does not answer. */
  commands: Commands
  prefix: string
  /** This node's id. */
  id: string
  interval: number
  /** The Parley path this node serves, published in its note; undefined when unknown. */
  path: string | undefined
  /** The same under its Fastify prefix (see `NodeNote.r`); undefined when unknown. */
  route: string | undefined
  /**
   * Whether this node's router matches `route` in any letter case (Fastify's `caseSensitive:
   * false`): another node's `r` is compared with it so (see `#checkPath`).
   */
  routeAnyCase: boolean
  /** `requestTimeout`: bounds how long `stop()` waits for Redis (with `GOODBYE_MS`). */
  timeout: number
  /** This node's address for forwarded requests, when known ('' before it listens). */
  address: () => string
  /** Where a node says that it joined or left (see `MembershipPacket`). */
  channel: string
  warnings: Warnings
  /**
   * Nodes that left the live set (their record expired or was removed): `lapsed` when they did
   * so without a goodbye, heard or marked (see `Nodes.saidGoodbye`), false when they said it.
   * Called once for each of the two, goodbyes first, before `saidGoodbye`.
   */
  gone: (ids: string[], lapsed: boolean) => void
  /**
   * A node said that it left (see `Nodes.left`), whether or not it was still in the live set:
   * its record lapses before it says so when its heartbeat was late.
   */
  saidGoodbye: (id: string) => void
  /**
   * A heartbeat went through; `recordsGone` when this node's owner records may be gone: Redis
   * lost writes of this node's it had answered (a restart, see HEARTBEAT), or the last beat it
   * answered is older than their lifetime (this node or its host was paused that long), so that
   * they expired.
   */
  beaten: (recordsGone: boolean) => void
  /** The set of other live nodes changed (see `Nodes.#report`); called after every step above. */
  changed: (change: NodesChange) => void
}

/**
 * This node's heartbeat, and the set of live nodes it reads back: a local cache, so that no
 * lookup waits for Redis. Keys: `<prefix>:nodes` (sorted set of ids by last heartbeat),
 * `<prefix>:node:<id>` (the node's address, expiring after `MISSED_HEARTBEATS` heartbeats: its
 * liveness) and `<prefix>:node:<id>:address` (the same address, kept `ADDRESS_KEEP_MS`: where
 * its sessions are once its record lapsed).
 */
export class Nodes {
  /** Other live nodes and their addresses ('' when a node does not know its own yet). */
  readonly #live = new Map<string, string>()
  /** The notes of the live nodes that published one. */
  readonly #notes = new Map<string, NodeNote>()
  readonly #config: NodesConfig
  #timer: NodeJS.Timeout | undefined
  /** The last heartbeat's round trip to Redis, in ms; undefined until one went through. */
  #roundTrip: number | undefined
  /**
   * Redis' clock less this node's monotonic one (`performance.now()`), in ms, as the last
   * heartbeat that went through read it (see `redisNow`); undefined until one did.
   */
  #redisOffset: number | undefined
  /** The run_id of the Redis whose clock `#redisOffset` was read on (see `redisRun`). */
  #redisRun: string | undefined
  /** The heartbeat in flight: one at a time. */
  #beating: Promise<void> | undefined
  /** The set changed while a beat was in flight, which may have read it before: beat again. */
  #again = false
  #published: string | undefined
  /** Until then, nodes missing from Redis are kept (see `#beat`). */
  #graceUntil = 0
  #stopped = false
  /** Paths of other nodes this node has warned about already: once each. */
  readonly #otherPaths = new Set<string>()
  /** Other nodes read with this node's own address, and at how many beats in a row. */
  readonly #sameAddress = new Map<string, number>()
  /** Whether this node warned of a node with its own address already: once. */
  #warnedSameAddress = false
  /** A beat was skipped for a Redis that cannot be asked, and said so: once per outage. */
  #skipping = false
  /**
   * The other live nodes as last reported (see `#report`); undefined until the first heartbeat
   * read the set, which is no change but where this node starts from.
   */
  #reported: Set<string> | undefined
  /** Settled once the first heartbeat went through and was announced, or once stopped. */
  readonly #first = settleable()
  /** How many heartbeats were sent so far. */
  #rounds = 0
  /**
   * The number of the last heartbeat answered: Redis ran it, and holds at least that number in
   * this node's beat record unless it lost writes since (see HEARTBEAT). 0 before any.
   */
  #answered = 0
  /** When the beat numbered `#answered` was sent (`stallClock`). */
  #answeredSentAt = 0
  /** Nodes that said they joined, with `#rounds` then: beats sent before do not drop them. */
  readonly #announced = new Map<string, number>()
  /** Nodes that said they left, with `#rounds` then: beats sent before do not bring them back. */
  readonly #departed = new Map<string, number>()
  /** The last `GOODBYES_KEPT` nodes that said they left (see `saidGoodbye`), oldest first. */
  readonly #goodbyes = new Set<string>()
  /**
   * Nodes whose record lapsed without a goodbye, with the address they last published: the last
   * `LAPSED_KEPT`, oldest first (see `lastAddress`).
   */
  readonly #lapsed = new Map<string, string>()
  /**
   * Nodes out of the live set whose address record was missing when looked up, for a record
   * lifetime (`MISSED_HEARTBEATS` heartbeats): the lookups of a closed node's sessions (its owner
   * records outlive it when they could not be removed) do not each ask Redis again. A record
   * written meanwhile (Redis lost it, and the node's next beat writes it again) is read after
   * that. The last `LAPSED_KEPT` (see `lastAddress`).
   */
  readonly #missing: ExpiringSet

  constructor(config: NodesConfig) {
    this.#config = config
    this.#missing = new ExpiringSet(config.interval * MISSED_HEARTBEATS, LAPSED_KEPT)
  }

  get #indexKey(): string {
    return `${this.#config.prefix}:nodes`
  }

  #recordKey(id: string): string {
    return `${this.#config.prefix}:node:${id}`
  }

  #addressKey(id: string): string {
    return `${this.#recordKey(id)}:address`
  }

  /** The number of node `id`'s last heartbeat Redis ran (see HEARTBEAT). */
  #beatKey(id: string): string {
    return `${this.#recordKey(id)}:beat`
  }

  /** Node `id` closed, and said so (see `stop`, `saidGoodbye`). */
  #leftKey(id: string): string {
    return `${this.#recordKey(id)}:left`
  }

  /**
   * Beats now, then every `interval` ms until `stop()`. Resolves once a heartbeat wrote this
   * node's record and the others were told (see `#joined`), or once stopped: a Redis that is
   * away now is beaten for again at every interval, so this may take as long as it is away.
   */
  start(): Promise<void> {
    this.#timer = setInterval(() => void this.beat(), this.#config.interval)
    this.#timer.unref()
    void this.beat()
    return this.#first.promise
  }

  /**
   * A heartbeat wrote `address` in this node's record, a new one (the first beat, or the server
   * listens now), or wrote the record again after it lapsed (or Redis lost it): tells the others,
   * with the address and the note, so that they can forward to this node at once. Nodes of an
   * earlier version do not listen: they learn at their next beat.
   */
  async #joined(address: string): Promise<void> {
    const { id, channel, commands } = this.#config
    const packet: MembershipPacket = { n: id, k: 'joined', a: address, ...this.#note() }
    await commands.send(['PUBLISH', channel, JSON.stringify(packet)]).catch((err: unknown) => {
      // Not fatal (the others read the live set at their next heartbeat), but a Redis that
      // refuses it at every start (an ACL without PUBLISH) refuses broadcasts as well.
      this.#config.warnings.warn(
        'heartbeat',
        `could not tell the other nodes that this one joined: Redis at ${commands.address} did not take it; they find this node at their next heartbeat instead. If it comes again, check that Redis there answers and lets this client PUBLISH (an ACL): broadcasts need it too`,
        { err },
      )
    })
  }

  #announce(k: MembershipPacket['k']): Promise<unknown> {
    const packet: MembershipPacket = { n: this.#config.id, k }
    return this.#config.commands.send(['PUBLISH', this.#config.channel, JSON.stringify(packet)])
  }

  /**
   * Node `id` said that it joined, with its address and note: it is live from now on, as its
   * next read of the live set will say. A heartbeat already in flight may have read the set
   * before its record was written: that one does not call it gone (see `#beat`).
   */
  joined(id: string, address: string, note: NodeNote): void {
    if (this.#stopped || id === this.#config.id) return
    this.#live.set(id, address)
    this.#lapsed.delete(id)
    this.#missing.delete(id)
    this.#notes.set(id, note)
    this.#announced.set(id, this.#rounds)
    this.#checkPath(id, note)
    this.#report()
  }

  /**
   * Node `id` said that it left, once its record was removed: gone from now on, without waiting
   * for the read of the live set that follows, so that a drain that counts the other nodes
   * (`otherNodes`) right after does not count it. A heartbeat already in flight may have read
   * the set before the removal: that one does not bring it back (see `#beat`).
   */
  left(id: string): void {
    if (this.#stopped || id === this.#config.id) return
    // A node of an earlier version marks its goodbye for a record lifetime, or not at all: a
    // node that did not hear it and reads the live set later would tell it as a lapse.
    if ((this.#notes.get(id)?.v ?? 0) < MARKS_A_DAY) this.#keepMark(id)
    this.#departed.set(id, this.#rounds)
    this.#announced.delete(id)
    this.#notes.delete(id)
    this.#lapsed.delete(id)
    this.#rememberGoodbye(id)
    if (this.#live.delete(id)) this.#config.gone([id], false)
    this.#config.saidGoodbye(id)
    this.#report()
  }

  /**
   * Tells `changed` how the live set differs from the last report, when it does: once per
   * change, whichever step made it (a read of the set, a node that said it joined or left), and
   * never once stopped. A node out of the set that said goodbye left: heard here, or read from
   * its mark by the heartbeat that found it gone (see `stop`). Any other lapsed, a node whose
   * goodbye this node missed and whose mark was not there to read (see `GOODBYE_MARK_MS`) included.
   */
  #report(): void {
    const before = this.#reported
    if (before === undefined || this.#stopped) return
    const joined = [...this.#live.keys()].filter((node) => !before.has(node))
    const out = [...before].filter((node) => !this.#live.has(node))
    if (joined.length === 0 && out.length === 0) return
    this.#reported = new Set(this.#live.keys())
    this.#config.changed({
      nodes: this.others(),
      joined,
      left: out.filter((node) => this.#goodbyes.has(node)),
      lapsed: out.filter((node) => !this.#goodbyes.has(node)),
    })
  }

  /**
   * Makes the goodbye mark of node `id`, which said that it left, last `GOODBYE_MARK_MS` (see
   * KEEP_MARK). Best effort, and silent: every node that heard the goodbye sends it, and a Redis
   * that cannot take it now is warned of by the heartbeat; without it, a node that missed the
   * goodbye and reads the live set only once the node's own mark expired reports it lapsed.
   */
  #keepMark(id: string): void {
    const keep = ['EVAL', KEEP_MARK, '1', this.#leftKey(id), String(GOODBYE_MARK_MS)]
    void this.#config.commands.send(keep).catch(() => undefined)
  }

  #rememberGoodbye(id: string): void {
    this.#goodbyes.add(id)
    for (const oldest of this.#goodbyes) {
      if (this.#goodbyes.size <= GOODBYES_KEPT) break
      this.#goodbyes.delete(oldest)
    }
  }

  /**
   * True when node `id` said that it left: it closed, and what it sent before (its seals and
   * appends, on its one connection) is in Redis. Unlike a node whose record lapsed (which says
   * only that it wrote no heartbeat for three intervals: a stalled process, or a Redis slow to
   * answer its connection, is alive and goes on), nothing more comes from it. Heard here (`left`)
   * or, for a node out of the live set, read from the mark its `stop()` left in Redis: a node
   * started after that goodbye knows it too. The GET waits its turn behind a burst on this node
   * (see `Commands.sendInTurn`): refused for it, a resume whose claimer left would be told to
   * try again for a session that went with it, until its handoff expires, and a takeover from
   * an old node that left would wait for a seal that never comes. False when Redis cannot say
   * (away, no answer within `requestTimeout`, or `MAX_QUEUED_COMMANDS` waiting): the node is
   * taken as one that may be alive. Never rejects.
   */
  async saidGoodbye(id: string): Promise<boolean> {
    if (this.#goodbyes.has(id)) return true
    if (this.#live.has(id)) return false
    const reply = await this.#config.commands.sendInTurn(['GET', this.#leftKey(id)]).catch(() => undefined)
    if (asText(reply) === undefined) return this.#goodbyes.has(id)
    this.#rememberGoodbye(id)
    return true
  }

  /**
   * Where node `id` is, when it left the live set without saying that it left (its record lapsed)
   * and has not come back: the address this node saw it publish, else the one its address record
   * keeps (one GET: a node this node never saw live, as one that started after the lapse, or
   * forgot among `LAPSED_KEPT` others), remembered from then on as if seen. A lapsed record says
   * only that the node wrote no heartbeat for three intervals: stalled, or its Redis slow to
   * answer, it still holds its sessions, and serves the requests forwarded to it; one that died
   * answers none (its sessions died with it). Undefined for a live node (see `address`), one that
   * said goodbye, and one that left no address record (a node of an earlier version writes none;
   * one that closed removed its own); that answer is remembered for a record lifetime (see
   * `#missing`). The GET waits its turn behind a burst on this node (see
   * `Commands.sendInTurn`): refused for it, the request that asks would be answered without the
   * owner (a resume told to try again, any other request as one of an unknown session). Rejects
   * with `RedisUnreachableError` while Redis is unreachable or does not answer within
   * `requestTimeout`, and with `RedisBusyError` past `MAX_QUEUED_COMMANDS` waiting.
   */
  async lastAddress(id: string): Promise<string | undefined> {
    if (!this.#outside(id)) return undefined
    const seen = this.#lapsed.get(id)
    if (seen) return seen
    if (this.#missing.has(id)) return undefined
    const text = asText(await this.#config.commands.sendInTurn(['GET', this.#addressKey(id)]))
    // It may have come back, or said it left, while the GET was out.
    if (this.#stopped || !this.#outside(id)) return undefined
    if (!text) {
      this.#missing.add(id)
      return undefined
    }
    this.#missing.delete(id)
    this.#lapsed.delete(id)
    this.#lapsed.set(id, text)
    this.#forgetLapsed()
    return text
  }

  /**
   * True when node `id` is out of the live set and this node knows of no way it left: it never
   * saw it lapse, heard no goodbye, found no address record missing lately. Such a node may have
   * joined since the last heartbeat, and only a read of the live set can say; one known to have
   * left is told apart by what this node knows of it already, and a later heartbeat or its
   * 'joined' brings it back should it come back.
   */
  unheardOf(id: string): boolean {
    return this.#outside(id) && !this.#lapsed.has(id) && !this.#missing.has(id)
  }

  /** Node `id` is another node, out of the live set, and did not say that it left. */
  #outside(id: string): boolean {
    return id !== this.#config.id && !this.#live.has(id) && !this.#goodbyes.has(id)
  }

  /** Keeps the last `LAPSED_KEPT` lapsed nodes. */
  #forgetLapsed(): void {
    for (const oldest of this.#lapsed.keys()) {
      if (this.#lapsed.size <= LAPSED_KEPT) break
      this.#lapsed.delete(oldest)
    }
  }

  /**
   * How long the last heartbeat that went through took, sent to answered, in ms (undefined
   * before the first): this node's estimate of a Redis hop (see sender-deadline.ts).
   */
  get roundTrip(): number | undefined {
    return this.#roundTrip
  }

  /**
   * Now on Redis' clock (its TIME, in ms), as this node reads it: its own monotonic clock and the
   * offset between the two at the last heartbeat that went through; undefined before the first.
   * The one clock that every node can read alike, whatever their machines' clocks say: a
   * broadcast with acks says on it when its sender stops waiting (see sender-deadline.ts).
   */
  redisNow(): number | undefined {
    return this.#redisOffset === undefined ? undefined : performance.now() + this.#redisOffset
  }

  /**
   * Which Redis server `redisNow` reads the clock of: a prefix of its run_id, as the last
   * heartbeat that read it found it; undefined before, or where INFO is refused. Two nodes that
   * name another read two servers' clocks (a failover, until both beat again): see
   * sender-deadline.ts.
   */
  redisRun(): string | undefined {
    return this.#redisRun
  }

  /** The other live nodes' ids, as of the last heartbeat or the last node that said it joined or left. */
  others(): string[] {
    return [...this.#live.keys()]
  }

  has(id: string): boolean {
    return this.#live.has(id)
  }

  /** A live node's note, undefined for a node of an earlier version. */
  note(id: string): NodeNote | undefined {
    return this.#notes.get(id)
  }

  /** A live node's address, undefined when it published none yet. */
  address(id: string): string | undefined {
    return this.#live.get(id) || undefined
  }

  /** True when the address this node would publish now differs from the one it published. */
  addressChanged(): boolean {
    return this.#published !== this.#config.address()
  }

  /** One heartbeat; never rejects (a failure is logged and the cache kept as it was). */
  beat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => {
      this.#beating = undefined
      if (this.#again) {
        this.#again = false
        void this.beat()
      }
    })
    return this.#beating
  }

  /**
   * Another node said it joined or left: read the live set now rather than at the next beat.
   * A beat in flight may have read the set before the change (its answer and the news come on
   * two connections, in no set order), so one more follows it.
   */
  refresh(): void {
    if (this.#beating) this.#again = true
    else void this.beat()
  }

  /**
   * A beat skipped because Redis cannot be asked (`why`): said once per outage, not at every
   * interval, for what the operator must learn is what follows (the Redis-unreachable warnings
   * say only that Redis is away).
   */
  #skipped(why: string): void {
    if (this.#skipping) return
    this.#skipping = true
    const { commands, interval } = this.#config
    this.#config.warnings.warn(
      'heartbeat-unavailable',
      `heartbeats skipped at ${commands.address} while Redis is not reachable (${why}); the next one goes once it answers. After ${MISSED_HEARTBEATS} heartbeat intervals (${MISSED_HEARTBEATS * interval} ms) without one, the other nodes take this node for gone: check that Redis there is up and answers within requestTimeout`,
    )
  }

  async #beat(): Promise<void> {
    const { commands, id, interval, prefix } = this.#config
    // While Redis is away or does not answer, commands would pile up in the client's queues:
    // skip the beat (the one in flight, if any, is given up after requestTimeout).
    if (this.#stopped) return
    const why = commands.unavailable()
    if (why !== undefined) {
      this.#skipped(why)
      return
    }
    const address = this.#config.address()
    const ttl = interval * MISSED_HEARTBEATS
    // The wall clock: a score in the live set, which every node's beat prunes by its own clock
    // (`now - 100 * ttl` below): nodes on other hosts share no monotonic clock.
    const now = Date.now()
    const round = ++this.#rounds
    const sentAt = performance.now()
    // Redis runs this beat within requestTimeout of now, or its answer is not taken: when that may
    // be `ADDRESS_KEEP_MS` past the last beat it ran, the beat record may have expired meanwhile
    // (this node or its host paused a day), which a Redis that lost it cannot be told apart from.
    // Not compared then ('0'): Redis may have lost nothing, and marked refilling, it would have
    // every node tell the resumes of sessions truly gone to try again for a record lifetime. The
    // owner records of this node's sessions expired the same way: they are written again.
    const sentWall = stallClock.now()
    const outlived =
      this.#answered > 0 && sentWall + this.#config.timeout - this.#answeredSentAt >= ADDRESS_KEEP_MS
    let reply: unknown
    try {
      reply = await commands.send([
        'EVAL',
        HEARTBEAT,
        '7',
        this.#indexKey,
        this.#recordKey(id),
        `${this.#recordKey(id)}:note`,
        restoringKeys(prefix).filled,
        restoringKeys(prefix).refilling,
        this.#addressKey(id),
        this.#beatKey(id),
        id,
        address,
        String(now),
        String(ttl),
        String(now - 100 * ttl),
        `${prefix}:node:`,
        JSON.stringify(this.#note()),
        String(outlived ? 0 : this.#answered),
        String(ADDRESS_KEEP_MS),
        String(round),
        ...this.#live.keys(),
      ])
    } catch (err) {
      // Another application's key under this prefix fails every beat, on every node, the same way:
      // say which key and what to do, not only what Redis said.
      const message = /WRONGTYPE/.test(String((err as Error | undefined)?.message))
        ? `heartbeat failed at ${this.#config.commands.address}: ${this.#indexKey} holds a value of another type, so no node sees the others; another application uses the prefix "${prefix}": give each its own \`prefix\` (or delete that key if nothing needs it)`
        : `heartbeat failed at ${this.#config.commands.address}; the live-node set is kept as it was, and the next heartbeat tries again once Redis answers. After ${MISSED_HEARTBEATS} heartbeat intervals without one, the other nodes take this node for gone: check that Redis there is up and answers within requestTimeout`
      this.#config.warnings.warn('heartbeat', message, { err })
      return
    }
    this.#skipping = false
    const answeredAt = performance.now()
    this.#roundTrip = answeredAt - sentAt
    if (round > this.#answered) {
      this.#answered = round
      this.#answeredSentAt = sentWall
    }
    if (this.#stopped) return
    const [lostFlag, flat, skipped, said, kept, time, run] = Array.isArray(reply) ? reply : []
    const redisMs = readTime(time)
    // Redis ran the beat between its send and its answer: taken as halfway, off by at most half
    // the round trip (the margin of sender-deadline.ts covers it).
    if (redisMs !== undefined) {
      this.#redisOffset = redisMs - (sentAt + answeredAt) / 2
      this.#redisRun = readRun(run)
    }
    if (!Array.isArray(flat)) return
    // Gone with a goodbye this node did not hear (its subscriber away, or slower than this beat).
    const marked = new Set(Array.isArray(said) ? said.map(asText) : [])
    if (Array.isArray(skipped) && skipped.length > 0) {
      this.#config.warnings.warn(
        'heartbeat-skipped',
        `the live-node index named keys that are not node records, removed from it: ${skipped.map(asText).join(', ')}`,
      )
    }
    const wasPublished = this.#published !== undefined
    const changed = this.#published !== address
    this.#published = address
    const seen = new Map<string, string>()
    const notes = new Map<string, NodeNote>()
    // A node that said it joined after this beat was sent: this read may be older than its
    // record (or its address), and what the node said of itself stands until a later read.
    const newer = (node: string) => (this.#announced.get(node) ?? 0) >= round
    // A node that said it left after this beat was sent: this read may be older than its removal.
    const departed = (node: string) => (this.#departed.get(node) ?? -1) >= round
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const node = asText(flat[i])
      if (node === undefined || node === id || newer(node) || departed(node)) continue
      seen.set(node, asText(flat[i + 1]) ?? '')
      const note = parseNote(asText(flat[i + 2]))
      if (note) notes.set(node, note)
    }
    // Redis lost writes of this node's that it had answered (a restart), and the other nodes'
    // records with them. They write theirs again at their next beat: keep them for one record
    // lifetime rather than call live nodes gone. So too when only this node's own record lapsed:
    // what held its beats past the record's lifetime (Redis itself blocked, every node's link to
    // it cut, the host paused) may have held the others' alike, and their next beats are on their
    // way; a node truly gone is called so one record lifetime later. Redis lost nothing then, so
    // nothing is marked refilling and the owner records stay as they are (`lost` alone).
    const lost = lostFlag === 1
    const lapsed = kept === 0 && wasPublished
    if (lost || lapsed) this.#graceUntil = now + ttl
    const gone = [...this.#live.keys()].filter(
      (node) => !seen.has(node) && !newer(node) && now >= this.#graceUntil,
    )
    for (const [node, at] of this.#announced) if (round > at) this.#announced.delete(node)
    for (const [node, at] of this.#departed) if (round > at) this.#departed.delete(node)
    const goodbyes = gone.filter((node) => marked.has(node))
    for (const node of gone) {
      if (marked.has(node)) {
        this.#rememberGoodbye(node)
        // Read from a mark of an earlier version's, which lasts a record lifetime: kept a day.
        if ((this.#notes.get(node)?.v ?? 0) < MARKS_A_DAY) this.#keepMark(node)
      } else {
        // No goodbye, heard (see `left`) or marked: the node may be alive.
        this.#lapsed.delete(node)
        this.#lapsed.set(node, this.#live.get(node) ?? '')
      }
      this.#live.delete(node)
    }
    this.#forgetLapsed()
    for (const [node, nodeAddress] of seen) {
      this.#live.set(node, nodeAddress)
      this.#lapsed.delete(node)
      this.#missing.delete(node)
    }
    for (const [node, note] of notes) {
      this.#notes.set(node, note)
      this.#checkPath(node, note)
    }
    this.#checkAddresses(seen, address)
    for (const node of this.#notes.keys()) if (!this.#live.has(node)) this.#notes.delete(node)
    if (goodbyes.length > 0) this.#config.gone(goodbyes, false)
    const lapses = gone.filter((node) => !marked.has(node))
    if (lapses.length > 0) this.#config.gone(lapses, true)
    for (const node of goodbyes) this.#config.saidGoodbye(node)
    this.#config.beaten(lost || outlived)
    if (this.#reported === undefined) this.#reported = new Set(this.#live.keys())
    else this.#report()
    // Back after its own record lapsed (or Redis lost it): the others took this node for gone, and
    // would learn otherwise only at their next heartbeat. Meanwhile one that found no address
    // record of this node (a node of an earlier version writes none, Redis may have lost it)
    // answers a request of its sessions as one of no session, and the client starts anew though
    // its session lives here: told now, they send such requests here again at once.
    if (changed || lost || lapsed) await this.#joined(address)
    this.#first.resolve()
  }

  /**
   * Two applications on one Redis with the default prefix form one cluster and reach each
   * other's sockets. Nodes of one prefix serve one path: another path tells that story (a
   * rolling deploy that changes the path tells it too, and that is worth a line as well).
   */
  #checkPath(node: string, note: NodeNote): void {
    // Under their Fastify prefixes where both say them (a node of an earlier version does not).
    const both = typeof note.r === 'string' && this.#config.route !== undefined
    const own = both ? this.#config.route : this.#config.path
    const theirs = both ? note.r : note.p
    if (own === undefined || typeof theirs !== 'string' || theirs === own) return
    // As this node's router reads them: one that ignores letter case serves `/Acme/parley` at
    // `/acme/parley`, and the two are one application's (a `p`, the path alone, is matched so too).
    if (this.#config.routeAnyCase && theirs.toLowerCase() === own.toLowerCase()) return
    if (this.#otherPaths.has(theirs)) return
    this.#otherPaths.add(theirs)
    this.#config.warnings.warn(
      `other-path:${theirs}`,
      `node ${node} shares the prefix "${this.#config.prefix}" but serves Parley at ${JSON.stringify(theirs)}, this node at ${JSON.stringify(own)}: two applications on one Redis and one prefix reach each other's sockets (emit, fetchSockets, disconnectSockets); give each application its own \`prefix\``,
    )
  }

  /** What this node says of itself beside its record and in its `joined` (see `NodeNote`). */
  #note(): NodeNote {
    const { path, route } = this.#config
    return {
      v: NOTE_VERSION,
      ...(path !== undefined && { p: path }),
      ...(route !== undefined && { r: route }),
    }
  }

  /**
   * Two live nodes that publish one address cannot forward to each other: each one's requests
   * for the other's sessions reach itself, and their clients get new sessions. The default
   * address (the one a node listens on, a wildcard read as 127.0.0.1) does that to nodes on
   * several hosts or in containers. A node killed a moment ago keeps its record for a few beats,
   * and the process that takes its place on the same host and port has its address: only a node
   * read so at more beats in a row than a record outlives its last one (alive, then) is told of.
   */
  #checkAddresses(seen: ReadonlyMap<string, string>, own: string): void {
    for (const node of this.#sameAddress.keys()) if (seen.get(node) !== own) this.#sameAddress.delete(node)
    if (own === '' || this.#warnedSameAddress) return
    for (const [node, address] of seen) {
      if (address !== own) continue
      const beats = (this.#sameAddress.get(node) ?? 0) + 1
      this.#sameAddress.set(node, beats)
      if (beats <= MISSED_HEARTBEATS) continue
      this.#warnedSameAddress = true
      this.#config.warnings.warn(
        'same-address',
        `node ${node} publishes this node's own address, ${own}: neither can forward the other's requests (each reaches itself), and their SSE and polling clients get new sessions; give each node the \`address\` the others reach it at (the default, the address it listens on, is only right when the nodes share a host)`,
      )
      return
    }
  }

  /**
   * Stops beating, removes this node's records and says so, so that the others drop it at once
   * (those of an earlier version at their next beat). It also leaves a mark of its goodbye
   * (`<prefix>:node:<id>:left`), sent after everything else this node sent, on the same
   * connection, before the removal: for `GOODBYE_MARK_MS`, so that a node that misses the
   * goodbye (its subscriber away, or slower than its next beat, or its heartbeats failing
   * meanwhile) reads it at its next beat that goes through, and reports this node left rather
   * than lapsed (see `#beat`); for `markFor` ms when longer, for the nodes that start later and
   * find a handoff or a claim of this node's (see `saidGoodbye`).
   * Waits for Redis at most `GOODBYE_MS` (or `requestTimeout`, when shorter) in all. Never
   * rejects: resolves with what did not go through, each a sentence that says what follows (none
   * when all did; one for all when the client is not connected, and nothing was sent). One step
   * refused does not stop the others: a mark Redis refuses still leaves the record removed and
   * the others told.
   */
  async stop(markFor = 0): Promise<string[]> {
    this.#stopped = true
    clearInterval(this.#timer)
    this.#first.resolve()
    const { commands, id, timeout } = this.#config
    const ms = Math.min(GOODBYE_MS, timeout)
    // The monotonic clock: a step of the wall clock must neither cut the goodbye's steps short
    // (reported unanswered though Redis had the time to answer) nor hold the close past `ms`.
    const deadline = performance.now() + ms
    // A beat in flight would write the record again after it is removed.
    const beaten = await within(this.#beating ?? Promise.resolve(), deadline - performance.now(), 'late')
    if (beaten === 'late')
      return [
        `Redis did not answer the last heartbeat within ${ms} ms; this node's record was left, and expires by itself`,
      ]
    // Whether the mark must outlive the record: a handoff or a claim of this node's may be found.
    const lasting = markFor > 0
    const mark = Math.max(Math.ceil(markFor), GOODBYE_MARK_MS)
    // Nothing can go: said once, as the steps that did not go through are.
    if (!commands.client.isReady) {
      const unmarked = lasting
        ? `, and no mark of its goodbye is left: a node that starts later and finds a session this node handed off or claimed takes it for one that may be alive, until that handoff expires`
        : ''
      return [
        `Redis at ${commands.address} is not connected: this node's record was not removed (it expires by itself) and the other nodes were not told (they drop it at their next heartbeat)${unmarked}`,
      ]
    }
    const marking = commands.send(['SET', this.#leftKey(id), '1', 'PX', String(mark)])
    // The address too: nothing is to be sent here any more.
    const removing = Promise.all([
      commands.send([
        'DEL',
        this.#recordKey(id),
        `${this.#recordKey(id)}:note`,
        this.#addressKey(id),
        this.#beatKey(id),
      ]),
      commands.send(['ZREM', this.#indexKey, id]),
    ])
    // Told once the record is gone, so that no read of the live set brings the node back.
    const announcing = removing.then(() => this.#announce('left'))
    const left = () => Math.max(0, deadline - performance.now())
    const [marked, removed, announced] = await Promise.all(
      [marking, removing, announcing].map((step) =>
        within(
          step.then(() => undefined, failure),
          left(),
          late(ms),
        ),
      ),
    )
    const failed: string[] = []
    if (marked !== undefined)
      failed.push(
        lasting
          ? `could not leave the mark of this node's goodbye (SET ${this.#leftKey(id)}: ${marked}); a node that starts later and finds a session this node handed off or claimed takes it for one that may be alive: it waits for its seal, or tells its client to try again, until that handoff expires`
          : `could not leave the mark of this node's goodbye (SET ${this.#leftKey(id)}: ${marked}); a node that did not hear the goodbye itself tells its onNodesChange listeners that this node lapsed, not that it left`,
      )
    if (removed !== undefined)
      failed.push(
        `could not remove this node from the live set (DEL, ZREM: ${removed}); it expires by itself`,
      )
    else if (announced !== undefined)
      failed.push(
        `removed this node from the live set, but could not tell the other nodes (PUBLISH: ${announced}); they drop it at their next heartbeat`,
      )
    return failed
  }
}

/** What a refused step of `Nodes.stop` says. */
function failure(err: unknown): string {
  // The step names its command and key already: what Redis said is enough.
  const said = err instanceof RedisRefusedError ? err.cause : err
  return `refused: ${said instanceof Error ? said.message : String(said)}`
}

/** What a step of `Nodes.stop` that Redis did not answer in time says. */
function late(ms: number): string {
  return `no answer within ${ms} ms`
}

/**
 * Redis' TIME as a heartbeat returns it (seconds and microseconds, as digits), in ms; undefined
 * for anything else.
 */
export function readTime(time: unknown): number | undefined {
  if (!Array.isArray(time) || time.length !== 2) return undefined
  const [seconds, micros] = time.map(asText)
  if (seconds === undefined || micros === undefined) return undefined
  if (!/^\d{1,12}$/.test(seconds) || !/^\d{1,6}$/.test(micros)) return undefined
  return Number(seconds) * 1000 + Number(micros) / 1000
}

/** How many hex digits of Redis' run_id a node keeps and sends: enough to tell two servers apart. */
export const RUN_ID_DIGITS = 16

/** Redis' run_id as a heartbeat returns it, its first `RUN_ID_DIGITS`; undefined for anything else. */
export function readRun(run: unknown): string | undefined {
  const text = asText(run)
  if (text === undefined || !/^[0-9a-f]{16,40}$/.test(text)) return undefined
  return text.slice(0, RUN_ID_DIGITS)
}

/** A node's note as read back; undefined when there is none or it is not one. */
function parseNote(text: string | undefined): NodeNote | undefined {
  if (!text) return undefined
  try {
    const value: unknown = JSON.parse(text)
    if (value !== null && typeof value === 'object' && typeof (value as NodeNote).v === 'number')
      return value as NodeNote
  } catch {
    // Not one of ours: as a node that wrote none.
  }
  return undefined
}
