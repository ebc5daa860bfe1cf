// The store of drain with handoff: a draining node writes a session's snapshot, appends what it
// numbers for the session afterwards (the tail) and seals the tail; another node claims the
// snapshot, once, and reads the tail back. Keys, all named by sidHash(sid), never by the sid:
//
//   <prefix>:session:<h>        the owner record: "<node> handoff" while handed off (sessions.ts)
//   <prefix>:handoff:<h>        hash: snapshot, params (the route parameters the session opened
//                               under, as `packParams` writes them: a claim for a resume under
//                               others claims nothing; absent from an earlier version's, and
//                               for a snapshot without them), node (the old one), epoch, write and claim (ids,
//                               for UNDO, WITHDRAW and UNCLAIM), claimed, sealed ('1', or '2' when its
//                               drain sealed it alone: no other node was live), complete, ended
//                               (the session ended on the old node after a claim won), kept
//                               (with ended: it went on there instead, see UNDO), read and
//                               taken (a claimer read a tail that was not sealed, then confirmed
//                               its claim: see FINISH, CONFIRM; the write's id, moved there)
//   <prefix>:handoff:<h>:tail   list: the tail, in order (absent while empty)
//   <prefix>:handoff:<h>:given-up:<id>
//                               string: a claim or a write given up on before it ran, which it
//                               refuses should it still run (see UNCLAIM, UNDO)
//
// Every step is one Lua script, so that a step sees and changes the keys as one: a claim and a
// seal cannot interleave with an append, and two claims cannot both win.

import { randomBytes } from 'node:crypto'
import type { SessionSnapshot } from '@parley/server'
import type { Commands } from './commands.js'
import { HeldAppends } from './held-appends.js'
import { asText, RedisBusyError, RedisUnreachableError, settleable } from './send.js'
import { HANDING_OFF, paramsKey, SESSION_TTL_SECONDS, sidHash } from './sessions.js'
import {
  type AppendTaken,
  MAX_QUEUED_TAIL_APPENDS,
  MAX_QUEUED_TAIL_BYTES,
  type TailGroup,
  TailWrites,
} from './tail-writes.js'
import { packParams, unpackParams } from './wire.js'

/**
 * How long the handoff keys live after a claim, at least: the old node may still seal, and the
 * claimer reads the tail within `SEAL_WAIT_MS`. Longer than that wait, with room to spare.
 */
export const CLAIM_KEEP_MS = 30_000

/**
 * The longest a node keeps the UNCLAIM of a claim it gave up on while Redis is away (see
 * `HandOffStore.claim`): past it the handoff has expired, unless its `ttl` (the server's recovery
 * window, 2 minutes by default) is longer still. Also the shortest life of the marker UNCLAIM
 * (or UNDO) leaves for a claim (or a write) that has not run: longer than Redis keeps a
 * connection whose node dropped it (its `tcp-keepalive` probes give up after about 10 minutes
 * by default), which alone could still bring it.
 */
export const UNCLAIM_KEEP_MS = 10 * 60_000

/** A claim sent that got no answer. */
const UNSURE = Symbol('unsure')

/** A withdraw not sent, or sent and not answered: kept, to go once Redis answers. */
const LATER = Symbol('later')

// KEYS: owner record, hash, tail, given-up marker of this write. ARGV: node, snapshot JSON, ttl
// (ms), suffix of a handed-off owner record, write id, the node's places on the broadcast channel
// as the snapshot was taken ('' for none; see places.ts: a tail read before any append holds
// them, and the claimer does not deliver again what the snapshot holds), the snapshot's route
// parameters (`packParams`; '' for a snapshot without them), which a claim reads (see CLAIM). Only while the record
// names this node (as owner, or as handing off already), by a write its node has not given up on
// already (see UNDO). Returns the epoch written, or 0 when the record names another node or none.
const WRITE = `
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] and owner ~= ARGV[1] .. ARGV[4] then return 0 end
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0') + 1
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[2], 'snapshot', ARGV[2], 'node', ARGV[1], 'epoch', epoch, 'write', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'places', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'params', ARGV[7]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[4], 'PX', ARGV[3])
return epoch
`

// KEYS: owner record, hash, tail, given-up marker of the write. ARGV: node, suffix, owner record
// TTL (s), write id, UNCLAIM_KEEP_MS, what became of the session here ('kept': it goes on at this
// node; 'ended'). Takes back a handoff whose write the node gave up on (no answer in time, or the
// server stopped waiting for it): the snapshot goes, and the owner record names this node as
// before (or none once the session ended: the server removed no record at its end). That write
// not standing (not run yet, or gone since): it may still run later, from the connection that
// dropped, and the marker makes it refuse itself, as a claim does (see UNCLAIM). Claimed between
// the write and this script (Redis ran another node's claim in between): the claim is revoked,
// for its snapshot is older than the session here. The hash is marked ended (the claimer drops
// the session at FINISH, as after WITHDRAW), and 'kept' besides when the session lives on here:
// the claimer then tells its client to try again, and the owner record names this node again,
// where that try finds the session. A claimer of an earlier version reads only 'ended', and
// starts its client anew. Too late once the claimer confirmed its claim (see CONFIRM): it has
// answered its client, and the record stays its own. Returns 1 taken back, 2 claim revoked, 3
// taken over by the claimer already, 0 not standing.
const UNDO = `
local state = redis.call('HMGET', KEYS[2], 'write', 'claimed', 'taken')
if state[3] == ARGV[4] then return 3 end
if state[1] == ARGV[4] and state[2] then
  redis.call('HSET', KEYS[2], 'ended', '1')
  if ARGV[6] ~= 'kept' then return 2 end
  redis.call('HSET', KEYS[2], 'kept', '1')
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
  return 2
end
local standing = state[1] == ARGV[4]
if standing then
  redis.call('DEL', KEYS[2], KEYS[3])
else
  local ttl = redis.call('PTTL', KEYS[2])
  redis.call('SET', KEYS[4], '1', 'PX', math.max(ttl, tonumber(ARGV[5])))
end
local owner = redis.call('GET', KEYS[1])
if ARGV[6] == 'kept' and owner == ARGV[1] .. ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
elseif ARGV[6] ~= 'kept' and (owner == ARGV[1] .. ARGV[2] or owner == ARGV[1]) then
  redis.call('DEL', KEYS[1])
end
return standing and 1 or 0
`

// KEYS: hash, tail, owner record. ARGV: node, suffix of a handed-off owner record, write id.
// The session ended on this node, which handed it off (see `HandingOff.withdrawHandOff`; one
// that goes on here is taken back by UNDO, 'kept', instead, whose claim is told so): unless
// claimed, the snapshot and the tail go, and the owner record with them while it still names
// this node as handing off. Claimed already: the hash is marked ended, for the claimer's FINISH
// (and CLAIM refuses it, should that claim be taken back). Only the handoff that write stored:
// a withdraw sent again once Redis is back may run late (a dropped connection may still hold
// its first copy), and must not touch a later handoff of the session. Returns 1 withdrawn, 2
// marked ended, 0 nothing of this node's to withdraw.
const WITHDRAW = `
local state = redis.call('HMGET', KEYS[1], 'node', 'write')
if state[1] ~= ARGV[1] or state[2] ~= ARGV[3] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'claimed') == 1 then
  redis.call('HSET', KEYS[1], 'ended', '1')
  return 2
end
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('GET', KEYS[3]) == ARGV[1] .. ARGV[2] then redis.call('DEL', KEYS[3]) end
return 1
`

// KEYS: for each session, its hash and its tail. ARGV: for each session six fields, then its
// texts: gap ('1' when an append of this node's never reached the tail), seal ('0', or the seal
// to keep as 'sealed': '1', or '2' for the seal of a drain alone), the write id of the handoff
// the texts belong to, from (how many of this node's texts the tail held before these, as far as
// the node knows; -1 when it does not: nothing is appended, the tail is marked incomplete), the
// node's places on the broadcast channel as of the last of them (see places.ts; '' for none:
// kept as 'places', with the texts, so that the claimer reads them with the tail they go with),
// and how many texts follow. One batch of the node's appends (see tail-writes.ts), each session's part
// as one append was before: refused (0) once sealed, when the handoff is gone (expired, read back:
// no snapshot), a late packet must not make a list nobody reads; and when the handoff is another
// write's: an append held up on its way (a stalled connection, a loaded Redis) may run after the
// session was claimed, taken over and handed off again, and its packets, numbered after the old
// snapshot, would break the new tail's order (its claimer could not restore the session). A part
// sent again (its batch got no answer, and may have run) skips the texts the tail holds already:
// it appends once. Returns 1 or 0 for each session.
const APPEND = `
local took = {}
local at = 1
for k = 1, #KEYS, 2 do
  local hash, tail = KEYS[k], KEYS[k + 1]
  local gap, seal, write = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local from, places, count = tonumber(ARGV[at + 3]), ARGV[at + 4], tonumber(ARGV[at + 5])
  local first = at + 6
  at = first + count
  local open = redis.call('HEXISTS', hash, 'snapshot') == 1 and redis.call('HEXISTS', hash, 'sealed') == 0
  if open and redis.call('HGET', hash, 'write') == write then
    local have = redis.call('LLEN', tail)
    if gap == '1' or from < 0 or have < from then redis.call('HSET', hash, 'complete', '0') end
    if from >= 0 then
      for i = first + math.max(have - from, 0), first + count - 1 do redis.call('RPUSH', tail, ARGV[i]) end
      if places ~= '' then redis.call('HSET', hash, 'places', places) end
    end
    if seal ~= '0' then redis.call('HSET', hash, 'sealed', seal) end
    local ttl = redis.call('PTTL', hash)
    if ttl > 0 and redis.call('EXISTS', tail) == 1 then redis.call('PEXPIRE', tail, ttl) end
    took[#took + 1] = 1
  else
    took[#took + 1] = 0
  end
end
return took
`

// KEYS: hash, tail, owner record, given-up marker of this claim, the session's route parameters
// beside its owner record (see sessions.ts). ARGV: node, owner record TTL
// (s), CLAIM_KEEP_MS, claim id, the resume's route parameters (`packParams`; '' compares none).
// Compare-and-set: only a stored, unclaimed handoff whose session has not ended, by a claim its
// node has not given up on already (see UNCLAIM), for a resume under the route parameters the
// session opened under (its hash's 'params'; one without them, an earlier version's, any): a
// resume under others (another tenant) claims nothing, and learns nothing of the handoff but
// { 'params' }, before anything else the hash could tell (that it ended, that another claim
// has it, or where the session lives now: the hash keeps 'params' while it says so); the
// handoff stays claimable by its own client. Bumps the
// epoch, names the claimer (and this claim, for UNCLAIM) in the hash and the claimer as the
// session's owner, keeps the keys long enough for the takeover.
// Returns { snapshot, old node, epoch, sealed (0, 1, or 2: sealed by a drain alone), how long
// the keys live now (ms): as long as the claim may stand, how long they lived before this claim
// kept them longer (ms): what is left of the client's recovery window, for which WRITE set them
// as the old node told its client to resume elsewhere }, or nil;
// or, for a handoff another claim won and whose tail nobody has read yet (the takeover is under
// way: FINISH drops the snapshot), the name of the node that claimed it;
// or, with nothing stored and an owner record, { 'owned', the record }: where the session lives
// now (taken over, or kept by the node that handed it off), but { 'params' } when the route
// parameters beside the record are others than the resume's: another tenant learns nothing of
// where a session lives, nor that it does. So too for a handoff whose claim
// was revoked because its session went on at the old node (ended and kept, see UNDO): the hash
// stays until its claimer reads that, and the owner record names the old node again.
const CLAIM = `
if redis.call('EXISTS', KEYS[4]) == 1 then return nil end
local state = redis.call('HMGET', KEYS[1], 'snapshot', 'node', 'claimed', 'sealed', 'ended', 'kept', 'params')
if ARGV[5] ~= '' and state[7] and state[7] ~= ARGV[5] then return { 'params' } end
if state[5] and not state[6] then return nil end
if not state[1] or state[6] then
  local owner = redis.call('GET', KEYS[3])
  if not owner then return nil end
  local params = redis.call('GET', KEYS[5])
  if ARGV[5] ~= '' and params and params ~= ARGV[5] then return { 'params' } end
  return { 'owned', owner }
end
if state[3] then return state[3] end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'claimed', ARGV[1], 'claim', ARGV[4])
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
local window = redis.call('PTTL', KEYS[1])
if window < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return { state[1], state[2], epoch, tonumber(state[4] or '0'), redis.call('PTTL', KEYS[1]), window }
`

// CLAIM for several sessions in one call (see `HandOffStore.claimMany`): KEYS, CLAIM's five for
// each session in turn; ARGV: node, owner record TTL (s), CLAIM_KEEP_MS, then each session's claim
// id and route parameters. Each session is claimed by CLAIM's own steps, made a function of its
// keys (the text is CLAIM's, so the two never differ), and answers in its place in the list:
// what CLAIM returns, 0 for its nil (a nil would end a Lua list). One call for a burst of claims
// (a drain's adoption): each command costs the claimer more than the script costs Redis.
const CLAIM_MANY = `
local function claim(k, id, params)
${CLAIM.replaceAll('KEYS[', 'k[').replaceAll('ARGV[4]', 'id').replaceAll('ARGV[5]', 'params').trim()}
end
local answers = {}
for i = 1, #KEYS / 5 do
  local k = { KEYS[5 * i - 4], KEYS[5 * i - 3], KEYS[5 * i - 2], KEYS[5 * i - 1], KEYS[5 * i] }
  local answer = claim(k, ARGV[2 + 2 * i], ARGV[3 + 2 * i])
  if answer == nil then answer = 0 end
  answers[i] = answer
end
return answers
`

// KEYS: hash, owner record, given-up marker of the claim. ARGV: claim id, node, suffix of a
// handed-off owner record, UNCLAIM_KEEP_MS. Takes back a claim given up on (no answer within
// requestTimeout, or the connection dropped before it) if it ran: the handoff is unclaimed at
// its epoch again (the old node seals for the next claim's marker) and the owner record names
// the old node as handing off, as before the claim, unless another node wrote it since. Returns
// 1 when it took a claim back. Not standing (not run yet, or taken back already): Redis orders
// the commands of one connection, not of two, and this one may come on a newer connection than
// the claim, which the old one (or the kernel) may still hold; the marker makes that claim
// refuse itself should it run later. It lasts as long as the handoff, and UNCLAIM_KEEP_MS at
// least: the session may be handed off again under the same keys. Either way it may run twice.
const UNCLAIM = `
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('SET', KEYS[3], '1', 'PX', math.max(ttl, tonumber(ARGV[4])))
  return 0
end
redis.call('HDEL', KEYS[1], 'claimed', 'claim')
redis.call('HINCRBY', KEYS[1], 'epoch', -1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[2], redis.call('HGET', KEYS[1], 'node') .. ARGV[3], 'PX', ttl)
end
return 1
`

// KEYS: hash, tail. ARGV: '1' for a takeover, which confirms its claim later. Reads the tail and
// whether it was sealed and whole, and whether the session ended on the old node (or stayed
// there: 'kept', see UNDO), then deletes both keys (an append that comes later is refused: the
// snapshot is gone). Returns { sealed, whole, tail, ended, kept }. A takeover's tail not sealed
// was read without the old node's answer, so a step of that node's may still come (its
// WITHDRAW, or the UNDO of a write it gave up on, which its seal would have followed): the hash
// stays, its snapshot dropped and marked read, for that step to mark, until the claimer
// confirms its claim right before answering its client (CONFIRM), or the handoff's ttl ends.
// A hash that expired before the read (the claimer took longer than the keys live: a slow
// middleware, a stalled Redis) is not made again: HSET would write it without an expiry. The
// old node's places (see APPEND) come last, '' when it wrote none.
const FINISH = `
local state = redis.call('HMGET', KEYS[1], 'sealed', 'complete', 'ended', 'kept', 'places')
local tail = redis.call('LRANGE', KEYS[2], 0, -1)
if state[1] or state[3] or ARGV[1] ~= '1' or redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'snapshot')
  redis.call('HSET', KEYS[1], 'read', '1')
end
return { state[1] and 1 or 0, state[2] == '0' and 0 or 1, tail, state[3] and 1 or 0, state[4] and 1 or 0, state[5] or '' }
`

// KEYS: hash (left by FINISH), owner record. ARGV: claim id, owner record TTL (s), and the
// claimer's node id when its copy goes on whatever the answer ('' otherwise: see below). The claimer
// read a tail the old node had not sealed, restored the session and recorded itself as its
// owner; right before it answers its client, whether the old node ended the session (WITHDRAW)
// or kept it (UNDO) since. Neither: the claim is marked taken, and stands (a step of the old
// node's that comes later leaves it be). The write's id moves from 'write' to 'taken': a
// take-back of that write by a node of an earlier version, which knows no 'taken', then finds
// no write of its own, and leaves the hash and the owner record be, as this version's UNDO does
// (and so does a WITHDRAW of either). Kept: the owner record names the old node again (the
// claimer's record may have replaced the one UNDO wrote), where the client's next try finds
// the session. Returns 0 taken, 1 ended, 2 kept. A claimer whose server cannot end its copy (a
// confirm sent late, to a server without `LocalSockets.takenOver`) names itself in ARGV[3]: its
// client is with that copy, which goes on, so a kept session's record names the claimer, not
// the old node (whose copy, which no client resumes, ends with its recovery window), and an
// ended one's record stays the claimer's: either way every node sends the client's requests to
// the copy it is with.
const CONFIRM = `
local state = redis.call('HMGET', KEYS[1], 'claim', 'ended', 'kept', 'node', 'write')
if state[1] ~= ARGV[1] then return 0 end
if not state[2] then
  redis.call('HSET', KEYS[1], 'taken', state[5] or '')
  redis.call('HDEL', KEYS[1], 'write')
  return 0
end
redis.call('DEL', KEYS[1])
if not state[3] then return 1 end
redis.call('SET', KEYS[2], ARGV[3] ~= '' and ARGV[3] or state[4], 'EX', ARGV[2])
return 2
`

/** The appends to one socket's tail made while it is asked a question (see `HandOffStore.watchAppends`). */
interface WatchedAppends {
  /** The socket's id. */
  readonly id: string
  /** How many were queued and are not answered yet. */
  pending: number
  readonly taken: AppendTaken
}

/** A session this node handed off, until it is claimed or the drain sealed it. */
export interface HandedOff {
  readonly sid: string
  /** The socket's public id. */
  readonly id: string
  readonly hash: string
  /**
   * The count of this node's own broadcasts up to which the socket took them when they were
   * emitted, before the snapshot: the snapshot holds them. Written as this node's place at
   * least (see `HandingOff.handOff`), whether they came back here yet or not.
   */
  readonly took: number
  /** The epoch the handoff wrote (0 until written); a claim bumps it by one. */
  epoch: number
  /** How long the snapshot is stored (ms). */
  readonly ttl: number
  /** Names the handoff's write, for UNDO: random. */
  readonly write: string
  /**
   * The write was given up on before its answer came (see `HandingOff.withdrawHandOff`): it is
   * taken back (UNDO), and a claim that won meanwhile is answered as revoked, not taken over.
   */
  givenUp: boolean
  /**
   * Set while the UNDO of a write given up on waits to hear what becomes of the session (see
   * `WriteTakeBack.awaitWord`); `send` resolves `sent` once it is on the connection, and a seal
   * waits for that, so that the claimer it answers reads the revocation.
   */
  undoWaits?: { sent: Promise<void>; send: () => void }
  /** Its UNDO, once sent: resolves when Redis answered it (or it was given up). */
  undone?: Promise<void>
  /** 'open': appends go to Redis; 'sealed': the tail is closed here, appends are refused. */
  state: 'open' | 'sealed'
  /** An append was dropped (the queue full, see tail-writes.ts) or failed: the tail has a hole. */
  gap: boolean
  /** How many of this node's texts the tail holds, as Redis answered (see `TailWrites`). */
  landed: number
  /**
   * The node whose claim marker named this handoff, once read (see `HandingOff.claimMarker`):
   * the one whose replies sent back are taken, until the write is given up on.
   */
  claimer?: string
  /**
   * A claim's marker named this handoff before its write was answered: the write ran (a claim
   * won it), whatever its answer says, and the session was sealed here for that claimer.
   */
  claimedEarly?: boolean
  /**
   * Its claim's marker came back while the socket awaited an own broadcast that Redis may still
   * run: resolves once the seal at that marker, which waited for it, is queued (see
   * `HandingOff.claimMarker`).
   */
  pastMarker?: Promise<void>
  /** Where this node was on the channel at that marker: the places of the appends since, and of the seal. */
  markerPlaces?: string
  /** The seal's write, once queued: resolves once written (or refused), however long Redis takes. */
  sealing?: Promise<void>
  /** Forgets the entry once its handoff has expired in Redis. */
  timer?: NodeJS.Timeout
}

/** What a claim won. */
export interface Won {
  snapshotText: string
  /** The node that handed the session off. */
  oldNode: string
  epoch: number
  /** The tail was sealed already (the old node's drain ended): nothing can follow. */
  sealed: boolean
  /** With `sealed`: by a drain with no other node live, at once (see `Adapter.sealHandOff`). */
  alone: boolean
  /** The claim's id, as the hash holds it (see CONFIRM). */
  claim: string
  /** How long the claim may stand in Redis (ms): the life of the handoff's keys after it. */
  standsFor: number
  /**
   * What was left of the client's recovery window at the claim (ms), as the life the handoff's
   * keys had left before the claim kept them longer (see CLAIM); undefined when Redis did not say.
   */
  recoveryLeft: number | undefined
  /** When Redis' answer was read (`performance.now()`): the moment `recoveryLeft` was true at. */
  answeredAt: number
}

/** A claim lost to another one whose takeover is still under way. */
export interface Taken {
  /** The node whose claim won. */
  claimer: string
}

/** Nothing to claim: the owner record names `owner` as the session's node now. */
export interface Owned {
  owner: string
}

/** Not claimed: the handoff's session opened under other route parameters than the resume's. */
export const OTHER_PARAMS = Symbol('other route parameters')
export type OtherParams = typeof OTHER_PARAMS

/** The tail as the claimer reads it back. */
export interface ReadTail {
  tail: string[]
  sealed: boolean
  /**
   * False when an append of the old node's never reached the tail (dropped past its queue's
   * bounds, or in a batch Redis refused; see tail-writes.ts): the tail has a hole.
   */
  whole: boolean
  /** The session ended on the old node after the claim won (see WITHDRAW). */
  ended: boolean
  /** With `ended`: the old node kept the session, its write given up on (see UNDO). */
  kept: boolean
  /**
   * Where the old node was on the broadcast channel as of the last text the tail holds, or as of
   * its snapshot when the tail holds none (see `ReadPlaces`); '' when it wrote none (a node of an
   * earlier version).
   */
  places: string
  /**
   * The read was never sent (see `Commands.neverSent`): Redis holds the tail whole still, and
   * the claim is given back rather than go on without it (see `Takeover`). Only the claimer sets it.
   */
  unread?: boolean
}

/**
 * The Redis side of handoffs, for one node: the scripts above, and the entries of the sessions
 * this node handed off. Every step waits for Redis at most `requestTimeout`, and none is sent
 * while Redis is away or has left a command unanswered that long (see `Commands`): a drain, a
 * resume and `app.close()` wait on these. The appends to tails and their seals are the
 * exception: queued, bounded, and written in batches once Redis answers (see `TailWrites`), for
 * what a drain numbers after a snapshot is the session's, and a slow Redis must not lose it.
 */
export class HandOffStore {
  /** Sessions this node handed off, by sid and by hash (claim markers name the hash). */
  readonly #bySid = new Map<string, HandedOff>()
  readonly #byHash = new Map<string, HandedOff>()

  readonly #tails: TailWrites<HandedOff>
  /** The appends watched while one socket is asked a question (see `watchAppends`). */
  #watched: WatchedAppends | undefined
  /** Appends to sessions whose handoff waits for Redis before its entry begins (see `holdAppends`). */
  readonly #held = new HeldAppends(
    (count, bytes) =>
      this.#tails.size + count <= MAX_QUEUED_TAIL_APPENDS &&
      this.#tails.bytes + bytes <= MAX_QUEUED_TAIL_BYTES,
  )

  constructor(
    private readonly commands: Commands,
    private readonly prefix: string,
    private readonly node: string,
    /** Redis answered a batch of appends with an error: their tails are incomplete. */
    appendFailed: (err: unknown) => void = () => {},
  ) {
    this.#tails = new TailWrites(
      commands.address,
      // Behind a burst on this node too: each batch takes its turn (see `#appendBatch`).
      () => commands.takesTurns(),
      (groups, went) => this.#appendBatch(groups, went),
      appendFailed,
      // Held for handoffs that wait for Redis: within the same bounds (see `holdAppends`).
      () => ({ count: this.#held.size, bytes: this.#held.bytes }),
    )
  }

  keys(hash: string): { owner: string; params: string; hash: string; tail: string } {
    const handoff = `${this.prefix}:handoff:${hash}`
    return {
      owner: `${this.prefix}:session:${hash}`,
      params: paramsKey(this.prefix, hash),
      hash: handoff,
      tail: `${handoff}:tail`,
    }
  }

  /**
   * The route parameters the session `sid` handed off opened under, as its hash keeps them (see
   * `sessionOwner` in lookups.ts): undefined when it keeps none (no hash, an earlier version's,
   * a snapshot without them) or none that read as parameters. In turn behind a burst on this
   * node (see `Commands.sendInTurn`): refused for it, the look-up would reject, and the request
   * be answered as of an unknown session. Rejects as `Commands.sendInTurn` does.
   */
  async params(sid: string): Promise<Record<string, string> | undefined> {
    const reply = await this.commands.sendInTurn(['HGET', this.keys(sidHash(sid)).hash, 'params'])
    const text = asText(reply)
    return text === undefined || text === '' ? undefined : unpackParams(text)
  }

  /** The key that says that claim or write `id` of session `hash` was given up (see UNCLAIM, UNDO). */
  givenUpKey(hash: string, id: string): string {
    return `${this.prefix}:handoff:${hash}:given-up:${id}`
  }

  /** The entry of a session this node handed off. */
  bySid(sid: string): HandedOff | undefined {
    return this.#bySid.get(sid)
  }

  /** The entry of a session this node handed off, by the hash a claim marker names. */
  byHash(hash: string): HandedOff | undefined {
    return this.#byHash.get(hash)
  }

  /**
   * Starts the entry of a handoff (before its write, so that appends made meanwhile count);
   * `took` as `HandedOff.took`.
   */
  begin(snapshot: SessionSnapshot, ttl: number, took: number): HandedOff {
    const previous = this.#bySid.get(snapshot.sid)
    if (previous) this.forget(previous)
    const entry: HandedOff = {
      sid: snapshot.sid,
      id: snapshot.id,
      hash: sidHash(snapshot.sid),
      took,
      epoch: 0,
      ttl,
      write: randomBytes(9).toString('base64url'),
      givenUp: false,
      state: 'open',
      gap: false,
      landed: 0,
    }
    this.#bySid.set(entry.sid, entry)
    this.#byHash.set(entry.hash, entry)
    return entry
  }

  /**
   * `sid`'s handoff waits for Redis before its entry begins (see `HandingOff.handOff`): what
   * the session is sent meanwhile is held, within the bounds of the tails' queue, for the entry
   * (`appendHeld`), or dropped (`dropHeld`) when the handoff gives up while waiting.
   */
  holdAppends(sid: string): void {
    this.#held.hold(sid)
  }

  /**
   * The handoff of `sid` gave up while waiting for Redis: nothing of it is written, and the
   * session goes on at this node, which kept what it sent.
   */
  dropHeld(sid: string): void {
    this.#held.release(sid)
  }

  /**
   * Queues what was held for `entry`'s session while its handoff waited (see `holdAppends`) as
   * the first appends of its tail, with the node's `places` as the entry began: with the last of
   * them alone, so that a batch that carries only the first ones vouches for nothing of the
   * rest. One dropped while held (and logged then) leaves the tail with a hole, which the
   * claimer reads. `queued`: some were queued (the snapshot's write must then carry no places,
   * see `HandingOff.handOff`); `dropped`: one was dropped now (the queue filled meanwhile).
   */
  appendHeld(entry: HandedOff, places: string): { queued: boolean; dropped: boolean } {
    const held = this.#held.release(entry.sid)
    if (!held) return { queued: false, dropped: false }
    if (held.gap) entry.gap = true
    let queued = false
    let dropped = false
    held.texts.forEach((text, i) => {
      if (this.#tails.append(entry, text, i === held.texts.length - 1 ? places : '')) queued = true
      else dropped = true
    })
    return { queued, dropped }
  }

  /**
   * Drops an entry (claimed and sealed, expired, or its handoff failed); nothing when a newer
   * handoff of the same session replaced it.
   */
  forget(entry: HandedOff): void {
    clearTimeout(entry.timer)
    if (this.#bySid.get(entry.sid) !== entry) return
    this.#bySid.delete(entry.sid)
    this.#byHash.delete(entry.hash)
  }

  /**
   * Writes the snapshot, to live until `ends` (`performance.now()`: the end of its client's
   * window as the server gave it, see `HandingOff.handOff`): the epoch, or 0 when the owner
   * record names another node or none, or when nothing was left of the window as the write went
   * (not sent). Behind a burst on this node it takes its turn (see `Commands.sendInTurn`), in
   * order behind the commands queued before it (the session's owner record among them) and
   * before its tail's appends, which go in turn too (see `#appendBatch`); its PX is made as it
   * goes (see `MadeArgs`), what is left then, so that the wait for its turn does not add to the
   * keys' life (see `pxUntil`). Rejects with `RedisUnreachableError` when it was not sent (see
   * `Commands`) or not answered within `requestTimeout` (it may still run then, and `undo` takes
   * it back), and with `RedisBusyError` past `MAX_QUEUED_COMMANDS` waiting.
   */
  async write(entry: HandedOff, snapshot: SessionSnapshot, ends: number, places = ''): Promise<number> {
    const keys = this.keys(entry.hash)
    const reply = await this.commands.sendInTurn(() => {
      const px = pxUntil(ends)
      if (px === undefined) return undefined
      return [
        'EVAL',
        WRITE,
        '4',
        keys.owner,
        keys.hash,
        keys.tail,
        this.givenUpKey(entry.hash, entry.write),
        this.node,
        JSON.stringify(snapshot),
        String(px),
        HANDING_OFF,
        entry.write,
        places,
        snapshot.params === undefined ? '' : packParams(snapshot.params),
      ]
    })
    return typeof reply === 'number' ? reply : 0
  }

  /**
   * The write was given up on (see `undo`), and what becomes of the session here is not known
   * yet: appends stop now, its UNDO goes once `undo` is called, and a seal waits for that.
   */
  holdUndo(entry: HandedOff): void {
    entry.givenUp = true
    const { promise: sent, resolve: send } = settleable()
    entry.undoWaits = { sent, send }
  }

  /** The entries whose UNDO waits (see `holdUndo`). */
  undosWaiting(): HandedOff[] {
    return [...this.#bySid.values()].filter((entry) => entry.undoWaits)
  }

  /**
   * Takes back a handoff whose write was given up on (see UNDO), which may have run: right
   * behind the write on the connection, or first once the connection is back (see
   * `Commands.undo`), until the snapshot's `ttl` has passed, and `UNCLAIM_KEEP_MS` at least: a
   * write that has not run yet may still come from the connection that dropped that long, and
   * only its UNDO's marker makes it refuse itself. `session`: what became of the
   * session here, which decides the owner record, and what a claim that won meanwhile is told.
   * `tooLate` is called when a claim of that write was confirmed before the UNDO ran (see
   * CONFIRM): its claimer took the session over. Resolves after that, once Redis answered the
   * UNDO (or it was given up).
   */
  undo(entry: HandedOff, session: 'kept' | 'ended', tooLate: () => void): Promise<void> {
    entry.givenUp = true
    const { owner, hash, tail } = this.keys(entry.hash)
    const undo = [
      'EVAL',
      UNDO,
      '4',
      owner,
      hash,
      tail,
      this.givenUpKey(entry.hash, entry.write),
      this.node,
      HANDING_OFF,
      String(SESSION_TTL_SECONDS),
      entry.write,
      String(UNCLAIM_KEEP_MS),
      session,
    ]
    entry.undone = this.commands.undo(undo, Math.max(entry.ttl, UNCLAIM_KEEP_MS), (reply) => {
      if (reply === 3) tooLate()
    })
    entry.undoWaits?.send()
    entry.undoWaits = undefined
    return entry.undone
  }

  /**
   * Appends to the tail of a session this node handed off; see `HandingOff.appendHandOff`.
   * False when the append was dropped: the queue of this node's appends is full (see
   * `TailWrites`), and the claimer learns of the hole from the session's next write.
   */
  append(sid: string, text: string, places: (entry: HandedOff) => string = () => ''): boolean {
    // Its handoff waits for Redis, and its entry has not begun (see `holdAppends`).
    if (this.#held.holds(sid)) return this.#held.append(sid, text)
    const entry = this.#bySid.get(sid)
    if (entry?.state !== 'open' || entry.givenUp) return true
    const watched = this.#watched?.id === entry.id ? this.#watched : undefined
    if (!watched) return this.#tails.append(entry, text, places(entry))
    watched.pending++
    const queued = this.#tails.append(entry, text, places(entry), watched.taken)
    // Dropped past the bounds: the tail has a hole, which the claimer reads; nothing to wait for.
    if (!queued) watched.pending--
    return queued
  }

  /**
   * Runs `ask`, which asks socket `id` alone a question, and watches what it appends to the tail
   * of that socket's session, here being handed off (the server numbers the question into the
   * tail as it is asked, in the same turn). True when some went into the queue: `then` is told,
   * once Redis answered each, whether the tail took them all (false when it refused one: sealed,
   * or read back by the claimer, the question reaches no client from there; true too when that
   * is not known, see `AppendTaken`). False when none did (held while the write waits for Redis,
   * dropped past the bounds, or none made): `then` is not called.
   */
  watchAppends(id: string, ask: () => void, then: (took: boolean) => void): boolean {
    let refused = false
    const watched: WatchedAppends = {
      id,
      pending: 0,
      taken: (took) => {
        if (took === false) refused = true
        if (--watched.pending === 0) then(!refused)
      },
    }
    const outer = this.#watched
    this.#watched = watched
    try {
      ask()
    } finally {
      this.#watched = outer
    }
    return watched.pending > 0
  }

  /** Whether an append for `sid` would go to its tail (see `append`): its handoff is under way here. */
  takesAppends(sid: string): boolean {
    if (this.#held.holds(sid)) return true
    const entry = this.#bySid.get(sid)
    return entry?.state === 'open' && !entry.givenUp
  }

  /**
   * Appends queued for Redis and not written yet (see `TailWrites`), and those held for
   * handoffs that wait for Redis (see `holdAppends`).
   */
  get queuedAppends(): number {
    return this.#tails.size + this.#held.size
  }

  /**
   * Waits for the queued appends and seals to be written, at most `ms`, or twice that when Redis
   * answered some meanwhile (see `TailWrites.settle`); resolves with how many are left.
   */
  settleAppends(ms: number): Promise<number> {
    return this.#tails.settle(ms)
  }

  /**
   * Drops the appends and seals still queued: the adapter closes. How many were sent and not
   * answered (Redis may still write them), and how many never sent (see `TailWrites.stop`).
   */
  stop(): { sent: number; unsent: number } {
    return this.#tails.stop()
  }

  /**
   * Closes the tail after `last`: nothing more is appended here. `alone`: the seal of a drain
   * with no other node live, which the claim made later reads back. Queued behind the session's
   * appends (see `TailWrites`), and resolves once written, however long Redis takes; rejects with
   * the error Redis answered, or when the adapter closes first (the claimer then finds the tail
   * unsealed, complete: false).
   */
  seal(entry: HandedOff, last: string[], alone = false, places = ''): Promise<void> {
    if (entry.sealing) return entry.sealing
    entry.state = 'sealed'
    const write = () => this.#tails.seal(entry, last, alone ? '2' : '1', places)
    // Behind an UNDO that waits (see `holdUndo`): the claimer it answers reads the revocation.
    const written = entry.undoWaits ? entry.undoWaits.sent.then(write) : write()
    entry.sealing = written.then(() => undefined)
    return entry.sealing
  }

  /**
   * The compare-and-set of a claim; null when there is nothing to claim, `Taken` when another
   * claim won and its takeover is under way (see CLAIM). `'unsure'` when it was
   * sent and no answer came (none within `requestTimeout`, or the connection dropped first): it
   * may have run, or still run later, and would leave the session claimed by this node, which
   * does not take it over, so it is taken back (UNCLAIM, see `Commands.undo`) before any later
   * command of this node, a later claim of the same session included, and refused should it run
   * after that. Behind a burst on this node it waits its turn (see `Commands.sendInTurn`):
   * refused for it, the client would be told to try again, a round for nothing, and as many as
   * the burst lasts. Rejects with `RedisUnreachableError` when not sent (see `Commands`: Redis
   * away or silent, or silent while it waited its turn), with `RedisBusyError` past
   * `MAX_QUEUED_COMMANDS` waiting, or with the error Redis answered (the claim did not run).
   */
  async claim(sid: string, params: Readonly<Record<string, string>> | undefined): Promise<ClaimReply> {
    const hash = sidHash(sid)
    const keys = this.keys(hash)
    const id = randomBytes(9).toString('base64url')
    const givenUp = this.givenUpKey(hash, id)
    const reply = await this.commands
      .sendInTurn([
        'EVAL',
        CLAIM,
        '5',
        keys.hash,
        keys.tail,
        keys.owner,
        givenUp,
        keys.params,
        this.node,
        String(SESSION_TTL_SECONDS),
        String(CLAIM_KEEP_MS),
        id,
        params === undefined ? '' : packParams(params),
      ])
      .catch((err: unknown) => {
        // Never sent (Redis away, or silent while it waited its turn): nothing to take back.
        if (this.commands.neverSent(err) || !(err instanceof RedisUnreachableError)) throw err
        this.unclaim(hash, id)
        return UNSURE
      })
    if (reply === UNSURE) return 'unsure'
    // Before any other work: what the claimer does from here counts against the client's window.
    const answeredAt = performance.now()
    return claimReply(reply, id, answeredAt)
  }

  /**
   * `claim` of each of `sessions` (none empty), in one script call (CLAIM_MANY): each answer, in
   * order, is what `claim` of that session alone would give. Given up unanswered, every claim of
   * it is taken back, each `'unsure'`; it rejects as `claim` does, for them all.
   */
  async claimMany(
    sessions: readonly { sid: string; params: Readonly<Record<string, string>> | undefined }[],
  ): Promise<ClaimReply[]> {
    const keys: string[] = []
    const args: string[] = []
    const claims = sessions.map(({ sid, params }) => {
      const hash = sidHash(sid)
      const id = randomBytes(9).toString('base64url')
      const k = this.keys(hash)
      keys.push(k.hash, k.tail, k.owner, this.givenUpKey(hash, id), k.params)
      args.push(id, params === undefined ? '' : packParams(params))
      return { hash, id }
    })
    const reply = await this.commands
      .sendInTurn([
        'EVAL',
        CLAIM_MANY,
        String(keys.length),
        ...keys,
        this.node,
        String(SESSION_TTL_SECONDS),
        String(CLAIM_KEEP_MS),
        ...args,
      ])
      .catch((err: unknown) => {
        if (this.commands.neverSent(err) || !(err instanceof RedisUnreachableError)) throw err
        for (const { hash, id } of claims) this.unclaim(hash, id)
        return UNSURE
      })
    if (reply === UNSURE) return claims.map(() => 'unsure')
    const answeredAt = performance.now()
    const answers = Array.isArray(reply) ? (reply as unknown[]) : []
    return claims.map(({ id }, i) => (answers[i] === 0 ? null : claimReply(answers[i], id, answeredAt)))
  }

  /**
   * Takes back claim `id` of session `hash` (UNCLAIM, see `Commands.undo`): kept until Redis
   * answers it and sent before any later command of this node, so that a later claim (this
   * node's or another's) finds the handoff claimable again, and the claim refuses itself should
   * it run after that. For a claim that got no answer, or one that won but that this node does
   * not take over (its marker could not be sent: no cut).
   */
  unclaim(hash: string, id: string): void {
    const keys = this.keys(hash)
    const unclaim = [
      'EVAL',
      UNCLAIM,
      '3',
      keys.hash,
      keys.owner,
      this.givenUpKey(hash, id),
      id,
      this.node,
      HANDING_OFF,
      String(UNCLAIM_KEEP_MS),
    ]
    this.commands.undo(unclaim, UNCLAIM_KEEP_MS)
  }

  /**
   * Reads the tail back and deletes the handoff's keys; those of a `takeover` whose tail was not
   * sealed are left for its `confirm` (see FINISH). While Redis cannot be asked (away, or this
   * node's connection has left a command unanswered for `requestTimeout`), waits for it at most
   * `requestTimeout`; behind a burst on this node (`MAX_UNANSWERED_COMMANDS` unanswered, Redis
   * answering) it takes its turn (see `Commands.sendInTurnWhenAvailable`): refused, the claimer
   * would go on without a tail that Redis holds whole. Rejects with `RedisUnreachableError` when
   * not sent by then, or not answered within `requestTimeout`, and with `RedisBusyError` past
   * `MAX_QUEUED_COMMANDS` waiting.
   */
  async finish(hash: string, takeover: boolean): Promise<ReadTail> {
    const keys = this.keys(hash)
    const reply = await this.commands.sendInTurnWhenAvailable([
      'EVAL',
      FINISH,
      '2',
      keys.hash,
      keys.tail,
      takeover ? '1' : '0',
    ])
    const [sealed, whole, tail, ended, kept, places] = Array.isArray(reply) ? (reply as unknown[]) : []
    const texts = Array.isArray(tail) ? tail.map(asText).filter((t): t is string => t !== undefined) : []
    return {
      tail: texts,
      sealed: sealed === 1,
      whole: whole === 1,
      ended: ended === 1,
      kept: kept === 1,
      places: asText(places) ?? '',
    }
  }

  /**
   * Whether claim `claim` of session `hash`, whose tail was read unsealed (see FINISH), still
   * stands: 'ended' or 'kept' when the old node's WITHDRAW or UNDO came since, else 'taken' (and
   * from then on it stands). While Redis cannot be asked (away a moment, or this node's
   * connection has left a command unanswered for `requestTimeout`) it waits for it at most
   * `requestTimeout`, and behind a burst on this node it takes its turn (see
   * `Commands.sendInTurnWhenAvailable`), as the read of the tail before it: refused at once, the
   * claimer would take the session for its own while its old node ended it, or kept it and
   * goes on with it: two copies of one session. Rejects with `RedisUnreachableError` when not
   * sent by then (see `Commands.neverSent`) or not answered within `requestTimeout`, and with
   * `RedisBusyError` past `MAX_QUEUED_COMMANDS` waiting. `copyGoesOn`: this node's copy of the
   * session goes on whatever the answer (its server cannot end it): the owner record is left to
   * it (see CONFIRM).
   */
  async confirm(hash: string, claim: string, copyGoesOn = false): Promise<'taken' | 'ended' | 'kept'> {
    const keys = this.keys(hash)
    const reply = await this.commands.sendInTurnWhenAvailable([
      'EVAL',
      CONFIRM,
      '2',
      keys.hash,
      keys.owner,
      claim,
      String(SESSION_TTL_SECONDS),
      copyGoesOn ? this.node : '',
    ])
    return reply === 2 ? 'kept' : reply === 1 ? 'ended' : 'taken'
  }

  /**
   * Withdraws the handoff of a session that ended here (see WITHDRAW): 'withdrawn', 'ended'
   * when a claim had won (the hash is marked for it), or 'none' when there was nothing of this
   * node's. Behind the record of how the session ended, which the server keeps before it
   * withdraws, and which is a take-back step from the start (see `EndedRecords.#keep`): this
   * goes on the connection behind it, in its turn behind a burst on this node (see
   * `Commands.sendInTurn`), or as a step kept behind it, so that a claimer that reads the
   * session ended from this, and ends its copy, sends its client to a record that is there
   * already. 'later' when Redis is
   * away, gave no answer within `requestTimeout`, or holds `MAX_QUEUED_COMMANDS` waiting: the
   * withdraw is kept and sent first once Redis answers again, before any other command of this
   * node (see `Commands.undo`), behind the record kept so too, for as long as the snapshot lives
   * (its `ttl`); it may run twice, and does nothing the second time. Sent after the handoff's
   * write on the same connection, so it runs after it even while that write is unanswered.
   * Rejects with the error Redis answered.
   */
  async withdraw(entry: HandedOff): Promise<'withdrawn' | 'ended' | 'none' | 'later'> {
    const keys = this.keys(entry.hash)
    const withdraw = [
      'EVAL',
      WITHDRAW,
      '3',
      keys.hash,
      keys.tail,
      keys.owner,
      this.node,
      HANDING_OFF,
      entry.write,
    ]
    const reply = await this.commands.sendInTurn(withdraw).catch((err: unknown) => {
      if (!(err instanceof RedisUnreachableError || err instanceof RedisBusyError)) throw err
      // Given up, the session could be claimed until its snapshot expires: the application saw
      // it end, and a client would resume it. Sent again instead, as a write's UNDO is.
      // In the place of the record of how the session ended, kept before it (see `Undos.add`).
      this.commands.undo(withdraw, entry.ttl, undefined, entry.hash)
      return LATER
    })
    if (reply === LATER) return 'later'
    return reply === 1 ? 'withdrawn' : reply === 2 ? 'ended' : 'none'
  }

  /**
   * One batch of appends and seals (see APPEND): for each group, whether its tail took it. In
   * its turn behind a burst on this node (see `Commands.sendInTurn`): behind the snapshot's
   * write, and never starved by a burst that outlasts `requestTimeout`, as the seal the claimer
   * waits for would be. `went`: told when it goes on the connection (see `Commands.sendInTurn`).
   */
  async #appendBatch(groups: TailGroup<HandedOff>[], went: () => void): Promise<boolean[]> {
    const keys: string[] = []
    const args: string[] = []
    for (const { tail: entry, texts, seal, places } of groups) {
      const { hash, tail } = this.keys(entry.hash)
      keys.push(hash, tail)
      const known = entry.landed >= 0
      args.push(entry.gap ? '1' : '0', seal, entry.write, String(entry.landed), places)
      args.push(String(known ? texts.length : 0), ...(known ? texts : []))
    }
    const reply = await this.commands.sendInTurn(
      ['EVAL', APPEND, String(keys.length), ...keys, ...args],
      went,
    )
    return groups.map((_, i) => Array.isArray(reply) && reply[i] === 1)
  }
}

/** What `HandOffStore.claim` resolves with. */
export type ClaimReply = Won | Taken | Owned | OtherParams | null | 'unsure'

/** CLAIM's answer `reply` to the claim of id `id`, read at `answeredAt`, read as untrusted (see `HandOffStore.claim`). */
function claimReply(
  reply: unknown,
  id: string,
  answeredAt: number,
): Won | Taken | Owned | OtherParams | null {
  if (Array.isArray(reply) && reply.length === 1 && asText(reply[0]) === 'params') return OTHER_PARAMS
  if (Array.isArray(reply) && reply.length === 2 && asText(reply[0]) === 'owned') {
    // A record still saying "handing off", its handoff gone (expired), names no live session.
    const owner = asText(reply[1])
    return owner === undefined || owner.endsWith(HANDING_OFF) ? null : { owner }
  }
  if (!Array.isArray(reply)) {
    const claimer = asText(reply)
    return claimer === undefined ? null : { claimer }
  }
  const [snapshot, oldNode, epoch, sealed, keysLive, window] = reply as unknown[]
  const snapshotText = asText(snapshot)
  const old = asText(oldNode)
  if (snapshotText === undefined || old === undefined || typeof epoch !== 'number') return null
  return {
    snapshotText,
    oldNode: old,
    epoch,
    sealed: sealed === 1 || sealed === 2,
    alone: sealed === 2,
    claim: id,
    standsFor: typeof keysLive === 'number' && keysLive > 0 ? keysLive : CLAIM_KEEP_MS,
    // PTTL: -1 for keys without an expiry, which says nothing of the window.
    recoveryLeft: typeof window === 'number' && window >= 0 ? window : undefined,
    answeredAt,
  }
}

/**
 * The PX of keys that live until `ends` (`performance.now()`), made now: what is left, in whole
 * ms, or undefined when nothing is. A span on this node's monotonic clock, not PEXPIREAT: Redis
 * reads an absolute time on its own wall clock, which may differ from this node's by more than
 * the window, or be stepped meanwhile; and Redis' clock as a heartbeat reads it (see
 * `Nodes.redisNow`) is off by up to a round trip, and jumps at a failover to a server whose clock
 * is another's. The one error left is the write's way to Redis once made (loopback or a LAN: a
 * fraction of a millisecond), by which the keys outlive the window a little, never die before it.
 */
export function pxUntil(ends: number): number | undefined {
  const px = Math.floor(ends - performance.now())
  return px > 0 ? px : undefined
}
