// What crosses Redis between nodes, and how it is read back. Every message is one JSON text on
// a channel; events and values inside it are in the protocol's own text encoding (binary leaves
// as base64), so that what a client sent arrives on another node as it left, bytes included.
// Input is read as untrusted: a malformed message is dropped, never thrown on.
import {
  decodeText,
  type ErrorPacket,
  encodeText,
  isAckId,
  isTransportName,
  MAX_TIMER_MS,
  PacketType,
  type ReplyPacket,
  type WireValue,
} from '@parley/protocol'
import type {
  BroadcastOptions,
  EndedSession,
  Handshake,
  JsonValue,
  Room,
  SessionSnapshot,
  SocketDescription,
} from '@parley/server'

/** Which sockets, as shipped (`local` never crosses: a local operation stays on its node). */
export interface WireOptions {
  /** rooms */
  r: Room[]
  /** except */
  x: Room[]
  /** volatile */
  v: boolean
}

/** On `<prefix>:broadcast`: an event for every node but the sender. */
export interface BroadcastPacket {
  /** The sending node. */
  n: string
  /** The event, as `PreparedEvent.text(0, 0)`. */
  e: string
  o: WireOptions
  /**
   * The sender's own count of its broadcasts: when one comes back, the sender knows which of
   * its own are still on their way (see cut.ts). Other nodes keep the last they read of each
   * node, for the tails of the sessions they hand off (see places.ts).
   */
  q?: number
}

/**
 * Also on `<prefix>:broadcast`, in the same order as the broadcasts: the cut point of a claimed
 * session (see handoff.ts). Every broadcast before it is the old node's to deliver (into the
 * session's tail), every one after it the claimer's.
 */
export interface ClaimMarker {
  k: 'claim'
  /** The claiming node. */
  n: string
  /** The claim's id: the old node answers 'sealed' on the claimer's response channel with it. */
  id: string
  /** The session, as `sidHash(sid)` (never the sid: every node reads this channel). */
  h: string
  /** The epoch the claim wrote. */
  ep: number
}

export type RequestKind = RequestPacket['k']

/** A cluster query (see query.ts): every kind of request but a broadcast with acks. */
export type QueryPacket = Extract<RequestPacket, { k: 'fetch' | 'disconnect' | 'join' | 'leave' }>

/**
 * On `<prefix>:request`: a cluster query; every other node answers on the sender's response
 * channel. Each kind carries what it needs, and `parseRequest` refuses one without it.
 */
export type RequestPacket =
  | {
      n: string
      id: string
      k: 'fetch' | 'disconnect'
      o: WireOptions
      /** Asked again of this node alone (see query.ts): the others ignore it. Absent when asked of all. */
      to?: string
    }
  | {
      n: string
      id: string
      k: 'join' | 'leave'
      o: WireOptions
      /** Rooms to join or leave. */
      rooms: Room[]
      /** As for `fetch`. */
      to?: string
    }
  | {
      n: string
      id: string
      k: 'ack'
      o: WireOptions
      /** The event. */
      e: string
      /**
       * Milliseconds each socket has to reply; past `MAX_TIMER_MS`, no timer. Always sent: a
       * default would be a guess at the caller's timeout, so a request without it is malformed.
       */
      t: number
      /**
       * The sender's count, from the counter of its broadcasts (see `BroadcastPacket.q`): the
       * nodes keep it in their places as they keep a broadcast's, so that a claimer joined
       * before its marker came back does not ask again what the tail asked (see
       * uncut-sockets.ts). Nodes of an earlier version neither send nor read it.
       */
      q?: number
      /**
       * What was left of `t` when the sender PUBLISHed it, in milliseconds on the sender's own
       * clock (no wall clock crosses nodes): a count held on the node that reads it is given
       * before the sender stops waiting (see sender-deadline.ts). Not sent without a timer (`t`
       * past `MAX_TIMER_MS`). Nodes of an earlier version neither send nor read it: without it, a
       * held count is bounded by `t` from the question's arrival.
       */
      l?: number
      /**
       * When the sender stops waiting, in milliseconds on Redis' clock (its TIME) as the sender
       * reads it (see `Nodes.redisNow`): unlike `l`, it says how long the question waited before
       * Redis ran it, on a clock both nodes read alike (see sender-deadline.ts). Sent with `l`,
       * once the sender's heartbeat has read that clock. Nodes of an earlier version neither
       * send nor read it.
       */
      d?: number
      /**
       * Which Redis server's clock `d` is on: the first hex digits of its run_id, as the
       * sender's last heartbeat read it (see `Nodes.redisRun`). A node whose own reading is on
       * another server's (a failover, until both beat again) ignores `d`. Sent with `d` when
       * known. Nodes of an earlier version neither send nor read it.
       */
      r?: string
      /**
       * Asked again of this node alone, its sender having heard it (or itself) subscribe again
       * (see ack-broadcast.ts): the others ignore it, and `to` asks its sockets only if it did
       * not already, else gives its count again (see asked-here.ts). Absent when asked of all.
       * Only sent while every live node's note says `v` 4 or more: a node of an earlier version
       * would ask its sockets a second time.
       */
      to?: string
    }

/**
 * On `<prefix>:request`: node `n` asks node `to` to hand off session `sid`, whose client
 * resumed on `n` over WebSocket. Only `to` answers ('handoff'); the others ignore it.
 */
export interface HandOffRequest {
  n: string
  id: string
  k: 'handoff'
  to: string
  sid: string
  /** Answer `asked` at once, before handing off: only sent to nodes whose note says they do. */
  a?: true
  /**
   * The route parameters of the resume that asks: the node hands off no session opened under
   * others. Absent from an earlier version's request (its node hands off whatever resume asks);
   * a node of an earlier version ignores it.
   */
  p?: Record<string, string>
}

/**
 * On `<prefix>:request`: node `n`, draining, asks node `to` to adopt the sessions it handed off
 * and nobody claimed (see `Adapter.askAdoption`): `s`, each as its sid, the route parameters it
 * opened under, and the milliseconds left of its client's recovery window. Only `to` answers
 * ('adopted'); the others ignore it. Only sent to nodes whose note says they read it (`v` 5 or
 * more, see `ADOPTS`).
 */
export interface AdoptRequest {
  n: string
  id: string
  k: 'adopt'
  to: string
  s: [sid: string, params: Record<string, string>, left: number][]
  /**
   * Answer `asked` at once, before any claim: only sent to nodes whose note says they do
   * (`SAYS_TAKING`). A node that does not say so in time is taken for dead or stuck, and its
   * sessions asked of another (see `ADOPT_TAKING_SHARE` in `@parley/server`).
   */
  a?: true
  /**
   * The ms the asker waits for the claims from when it sent this: the node starts none past it
   * (see `LocalSockets.adopt`). Nodes of an earlier version neither send nor read it.
   */
  w?: number
}

/** The most sessions one `AdoptRequest` may name: a longer list is refused as malformed. */
export const MAX_ADOPTIONS = 100_000

/**
 * On `<prefix>:request`: node `n` asks node `to` how many replies it has made so far to `n`'s
 * broadcast with acks `id` (see `BroadcastReplies.replied`). Only `to` answers ('replied'), on
 * `n`'s response channel, after every reply it published before: so `n` knows which of them
 * Redis lost. Only sent to nodes whose note says they answer it (`v` 2 or more).
 */
export interface RepliedRequest {
  n: string
  id: string
  k: 'replied'
  to: string
}

/**
 * On `<prefix>:membership`: node `n` joined the live set (its record is written) or left it
 * (its record is removed). The others read the set again at once, where they would learn it at
 * their next heartbeat: until then they would neither ask a new node nor wait for its answers.
 * A `joined` of this version carries what the record and the note hold (`a`, `v`, `p`), so
 * that the others can forward to the node and ask it as soon as it is read, without waiting
 * for that read; it is said again when the node's address changes (its server listens after
 * its first heartbeat). Nodes of an earlier version send and read only `n` and `k`.
 */
export interface MembershipPacket {
  n: string
  k: 'joined' | 'left'
  /** The node's address, as in its record ('' while it does not know it). */
  a?: string
  /** Its note's `v` (see `NodeNote`). */
  v?: number
  /** Its note's `p`, when known. */
  p?: string
  /** Its note's `r`, when known. */
  r?: string
}

/** On `<prefix>:response:<node>`: one node's answer to a request of that node. */
export type ResponsePacket =
  | { n: string; id: string; k: 'sockets'; s: string[] }
  | { n: string; id: string; k: 'done' }
  | { n: string; id: string; k: 'count'; c: number }
  | { n: string; id: string; k: 'reply'; ok: true; v: string }
  // `d`: a volatile emit dropped on its way (the error's `details.dropped`), which the emitting
  // node names apart from a timeout; a node of an earlier version neither sends nor reads it.
  | { n: string; id: string; k: 'reply'; ok: false; code: string; message: string; d?: true }
  /** The old node sealed the tail of the session claimed as `id` (a `ClaimMarker`'s id). */
  | { n: string; id: string; k: 'sealed' }
  /**
   * A `HandOffRequest` or an `AdoptRequest` with `a` reached its node, which is handing the
   * session off, or claiming the sessions, now.
   */
  | { n: string; id: string; k: 'asked' }
  /** The answer to a `HandOffRequest`: true once the snapshot is stored. */
  | { n: string; id: string; k: 'handoff'; ok: boolean }
  /** The answer to an `AdoptRequest`: how many of its sessions the node took over (`c`). */
  | { n: string; id: string; k: 'adopted'; c: number }
  /**
   * The answer to a `RepliedRequest`: `c` replies made so far; `all` when the node owes none
   * any more (every socket it counted replied, or it never counted this broadcast).
   */
  | { n: string; id: string; k: 'replied'; c: number; all: boolean }
  /**
   * A node to itself, after its subscriber resubscribed (its connection dropped): its own
   * broadcasts up to `q` were PUBLISHed before this, on the same connection, so each of them
   * that did not come back before it never will (see cut.ts). `id` is empty; `PROBE_ID` for
   * the note sent behind a broadcast with acks given up (see ack-broadcast.ts), which settles
   * this node's requests alone. The same note, `id` empty, goes to every other live node's
   * response channel: node `n` hears the request channel again, and the cluster queries that
   * still wait for its answer ask it again (see query.ts); `q` means nothing there. Nodes of an
   * earlier version ignore a note of another node's.
   */
  | { n: string; id: string; k: 'resubscribed'; q: number }
  /**
   * From the node that took over the session of socket `i`, which this node handed off: the
   * client's reply to a question this node asked it, `p` (a REPLY or ERROR in the protocol's
   * text encoding). `id` is empty. Only sent to a node whose snapshot said it awaits them
   * (`SessionSnapshot.repliesAwaited`): a node of an earlier version never gets one. Taken only
   * when `n` is the node that claimed that session (see claimers.ts).
   */
  | { n: string; id: string; k: 'answered'; i: string; p: string }

/** The `id` of a `resubscribed` note sent as a probe, not after a resubscribe. */
export const PROBE_ID = 'probe'

// Decoding limits are for hostile clients; these texts come from nodes of the same cluster, whose
// senders already checked them against their own maxPayload.
const NO_LIMIT = { maxPayload: Number.MAX_SAFE_INTEGER }

export function toWireOptions(options: BroadcastOptions): WireOptions {
  return { r: [...options.rooms], x: [...options.except], v: options.volatile }
}

export function fromWireOptions(options: WireOptions): BroadcastOptions {
  return { rooms: new Set(options.r), except: new Set(options.x), volatile: options.v, local: true }
}

/** An event's name and arguments from `PreparedEvent.text(0, 0)`, or undefined when it is not one. */
export function decodeEvent(text: string): { name: string; args: WireValue[] } | undefined {
  const result = decodeText(text, NO_LIMIT)
  if (!result.ok || result.packet.type !== PacketType.EVENT) return undefined
  return { name: result.packet.name, args: result.packet.args }
}

/** Any value a reply or a socket's data may hold, binary included. Throws when JSON cannot carry it. */
export function packValue(value: unknown): string {
  return encodeText({ type: PacketType.REPLY, seq: 1, ackId: 1, args: [value as WireValue] })
}

/** The value `packValue` packed; `{ ok: false }` when the text is not one. */
export function unpackValue(text: string): { ok: true; value: unknown } | { ok: false } {
  const result = decodeText(text, NO_LIMIT)
  if (!result.ok || result.packet.type !== PacketType.REPLY) return { ok: false }
  return { ok: true, value: result.packet.args[0] }
}

/**
 * The client's reply that an `answered` response carries, read as the protocol reads one from
 * the wire, within this node's `maxPayload` (UTF-8 bytes; none when the server gives none);
 * undefined for anything else (another packet, no ack id, past the limit). Unlike a broadcast,
 * which its sender checked, this is a client's packet, and the claimer that read it held it to
 * its own limit alone: one past this node's is no reply a client of this node could send.
 */
export function decodeForwardedReply(
  text: string,
  maxPayload = Number.MAX_SAFE_INTEGER,
): ReplyPacket | ErrorPacket | undefined {
  const result = decodeText(text, { maxPayload })
  if (!result.ok) return undefined
  const { packet } = result
  if (packet.type !== PacketType.REPLY && packet.type !== PacketType.ERROR) return undefined
  return isAckId(packet.ackId) ? packet : undefined
}

/** A socket's description as it crosses; `data` that JSON cannot carry is left out. */
export function packSocket(socket: SocketDescription): string {
  const plain = { id: socket.id, handshake: socket.handshake, rooms: [...socket.rooms] }
  try {
    return packValue({ ...plain, data: socket.data })
  } catch {
    return packValue(plain)
  }
}

/**
 * A socket another node described, or undefined when the text is not one: the application reads
 * its handshake as the type says (`fetchSockets`), so a handshake of another shape is refused
 * here rather than handed on to fail there.
 */
export function unpackSocket(text: string): SocketDescription | undefined {
  const unpacked = unpackValue(text)
  if (!unpacked.ok || !isRecord(unpacked.value)) return undefined
  const { id, handshake, rooms, data } = unpacked.value
  if (typeof id !== 'string' || !isHandshake(handshake) || !isStrings(rooms)) return undefined
  // A node of an earlier version describes its handshakes without `url` and `params`.
  handshake.url ??= ''
  handshake.params ??= {}
  return { id, handshake, rooms: new Set(rooms), data }
}

function isHandshake(value: unknown): value is Handshake {
  return (
    isRecord(value) &&
    isRecord(value.headers) &&
    Object.values(value.headers).every((header) => typeof header === 'string' || isStrings(header)) &&
    isRecord(value.query) &&
    Object.values(value.query).every((item) => typeof item === 'string') &&
    typeof value.address === 'string' &&
    typeof value.time === 'string' &&
    typeof value.issued === 'number' &&
    isTransportName(value.transport) &&
    (value.url === undefined || typeof value.url === 'string') &&
    (value.params === undefined ||
      (isRecord(value.params) && Object.values(value.params).every((item) => typeof item === 'string')))
  )
}

/**
 * Whether a message of the broadcast channel is a claim marker: the one test both
 * `parseBroadcast` and its reader use, so that a broadcast of a later version carrying a field
 * named `k` is read as the broadcast it is.
 */
export function isClaimMarker(packet: object): packet is ClaimMarker {
  return (packet as { k?: unknown }).k === 'claim'
}

/** A broadcast packet or a claim marker, or undefined for anything else. */
export function parseBroadcast(text: string): BroadcastPacket | ClaimMarker | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string') return undefined
  if (isClaimMarker(value)) {
    const fits = typeof value.id === 'string' && typeof value.h === 'string' && isCount(value.ep)
    return fits ? (value as unknown as ClaimMarker) : undefined
  }
  if (typeof value.e !== 'string' || (value.q !== undefined && !isCount(value.q))) return undefined
  return isWireOptions(value.o) ? (value as unknown as BroadcastPacket) : undefined
}

/**
 * A session snapshot as a handoff stored it, or a reason why it is not one: a version this node
 * does not know, a shape that does not fit, or another session's.
 */
export function parseSnapshot(
  text: string,
  sid: string,
): { ok: true; snapshot: SessionSnapshot } | { ok: false; why: string } {
  const value = parseJson(text)
  if (!isRecord(value)) return { ok: false, why: 'not a JSON object' }
  if (value.v !== 1) return { ok: false, why: `version ${JSON.stringify(value.v)} is not known here` }
  const fits =
    value.sid === sid &&
    typeof value.id === 'string' &&
    isCount(value.inSeq) &&
    isCount(value.outSeq) &&
    isStrings(value.kept) &&
    isStrings(value.rooms) &&
    'data' in value &&
    typeof value.dataLost === 'boolean' &&
    Array.isArray(value.waiting) &&
    value.waiting.every(isWaiting) &&
    isCounts(value.openRequests) &&
    isCounts(value.pendingAcks) &&
    typeof value.created === 'number' &&
    (value.params === undefined || isParams(value.params))
  if (!fits) return { ok: false, why: 'bad shape' }
  // Absent from the snapshots of nodes of an earlier version; anything else must be an ack id,
  // or the restored session's questions could take the reply meant for one of the old node's.
  if (value.nextAckId !== undefined && !isAckId(value.nextAckId))
    return { ok: false, why: 'nextAckId is not an ack id' }
  return { ok: true, snapshot: value as unknown as SessionSnapshot }
}

/**
 * How a session ended, as `<prefix>:ended:<h>` holds it: `{"v":1,"c":<the CLOSE in the
 * protocol's text encoding>,"a":<the last seq of the client's the session took>,"p":<the route
 * parameters it opened under>}`, `p` left out when not known. A node of an earlier version reads
 * the record without `p` (and answers a resume under any parameters, as it always did). Throws
 * when the CLOSE cannot be encoded (it always can, from the server).
 */
export function packEnded(ending: EndedSession): string {
  const record = { v: 1, c: encodeText(ending.close), a: ending.ack }
  return JSON.stringify(ending.params === undefined ? record : { ...record, p: ending.params })
}

/**
 * A record `packEnded` wrote, read back as the protocol reads a CLOSE from the wire; undefined
 * for anything else (another version, a bad shape, a CLOSE that does not decode, a `p` that is
 * not an object of strings). One without `p` (a node of an earlier version wrote it) has no
 * `params`.
 */
export function parseEnded(text: string): EndedSession | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || value.v !== 1 || typeof value.c !== 'string' || !isCount(value.a)) return undefined
  if (value.p !== undefined && !isParams(value.p)) return undefined
  const decoded = decodeText(value.c, NO_LIMIT)
  if (!decoded.ok || decoded.packet.type !== PacketType.CLOSE) return undefined
  const ending = { close: decoded.packet, ack: value.a }
  return value.p === undefined ? ending : { ...ending, params: { ...value.p } }
}

/**
 * Route parameters as one string, the same for the same names and values whatever their order:
 * what a handoff's record keeps beside its snapshot, and a claim compares with its resume's (see
 * CLAIM in handoff.ts), letter for letter, as `sameParams` of @parley/server compares them.
 */
export function packParams(params: Readonly<Record<string, string>>): string {
  const names = Object.keys(params).sort()
  return JSON.stringify(names.map((name) => [name, params[name]]))
}

/**
 * Route parameters read back from `packParams`'s string (untrusted: what Redis holds); undefined
 * for anything else, a pair that is not two strings or a name given twice included.
 */
export function unpackParams(text: string): Record<string, string> | undefined {
  const value = parseJson(text)
  if (!Array.isArray(value)) return undefined
  const pairs: [string, string][] = []
  const names = new Set<string>()
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2) return undefined
    const [name, item] = pair as unknown[]
    if (typeof name !== 'string' || typeof item !== 'string' || names.has(name)) return undefined
    names.add(name)
    pairs.push([name, item])
  }
  // Own properties whatever their names, `__proto__` included, as the router gives them.
  return Object.fromEntries(pairs)
}

/** Whether `value` reads as route parameters: an object whose values are strings. */
export function isParams(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((item) => typeof item === 'string')
}

export function parseRequest(
  text: string,
): RequestPacket | HandOffRequest | RepliedRequest | AdoptRequest | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string' || typeof value.id !== 'string') return undefined
  if (value.k === 'adopt') {
    const fits =
      typeof value.to === 'string' &&
      Array.isArray(value.s) &&
      value.s.length <= MAX_ADOPTIONS &&
      (value.a === undefined || value.a === true) &&
      (value.w === undefined || isTimeout(value.w)) &&
      value.s.every(isAdoption)
    return fits ? (value as unknown as AdoptRequest) : undefined
  }
  if (value.k === 'replied')
    return typeof value.to === 'string' ? (value as unknown as RepliedRequest) : undefined
  if (value.k === 'handoff') {
    const fits =
      typeof value.to === 'string' &&
      typeof value.sid === 'string' &&
      value.sid !== '' &&
      (value.p === undefined || isParams(value.p))
    return fits ? (value as unknown as HandOffRequest) : undefined
  }
  if (!isWireOptions(value.o)) return undefined
  switch (value.k) {
    case 'fetch':
    case 'disconnect':
      if (value.to !== undefined && typeof value.to !== 'string') return undefined
      break
    case 'join':
    case 'leave':
      if (!isStrings(value.rooms)) return undefined
      if (value.to !== undefined && typeof value.to !== 'string') return undefined
      break
    case 'ack':
      if (typeof value.e !== 'string' || !isTimeout(value.t)) return undefined
      if (value.q !== undefined && !isCount(value.q)) return undefined
      if (value.l !== undefined && !isTimeout(value.l)) return undefined
      if (value.d !== undefined && !isTimeout(value.d)) return undefined
      if (value.r !== undefined && (typeof value.r !== 'string' || !/^[0-9a-f]{1,40}$/.test(value.r)))
        return undefined
      if (value.to !== undefined && typeof value.to !== 'string') return undefined
      break
    default:
      return undefined
  }
  return value as unknown as RequestPacket
}

export function parseMembership(text: string): MembershipPacket | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string') return undefined
  if (value.k !== 'joined' && value.k !== 'left') return undefined
  const packet: MembershipPacket = { n: value.n, k: value.k }
  // What a joined node says of itself is taken only whole and well formed: else it is read at
  // the next heartbeat, as from a node of an earlier version.
  if (
    value.k === 'joined' &&
    typeof value.a === 'string' &&
    typeof value.v === 'number' &&
    (value.p === undefined || typeof value.p === 'string') &&
    (value.r === undefined || typeof value.r === 'string')
  ) {
    packet.a = value.a
    packet.v = value.v
    if (value.p !== undefined) packet.p = value.p
    if (value.r !== undefined) packet.r = value.r
  }
  return packet
}

export function parseResponse(text: string): ResponsePacket | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string' || typeof value.id !== 'string') return undefined
  const fits =
    (value.k === 'sockets' && isStrings(value.s)) ||
    value.k === 'done' ||
    (value.k === 'count' && isCount(value.c) && value.c <= MAX_NODE_SOCKETS) ||
    value.k === 'sealed' ||
    value.k === 'asked' ||
    (value.k === 'handoff' && typeof value.ok === 'boolean') ||
    (value.k === 'adopted' && isCount(value.c)) ||
    (value.k === 'replied' && isCount(value.c) && typeof value.all === 'boolean') ||
    (value.k === 'resubscribed' && isCount(value.q)) ||
    (value.k === 'answered' && typeof value.i === 'string' && typeof value.p === 'string') ||
    (value.k === 'reply' && value.ok === true && typeof value.v === 'string') ||
    (value.k === 'reply' &&
      value.ok === false &&
      typeof value.code === 'string' &&
      typeof value.message === 'string')
  return fits ? (value as unknown as ResponsePacket) : undefined
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

function isWireOptions(value: unknown): value is WireOptions {
  return isRecord(value) && isStrings(value.r) && isStrings(value.x) && typeof value.v === 'boolean'
}

/**
 * Most sockets a node may say a broadcast reached. Far above what a node holds (at a few KB
 * each, 2^24 sockets are tens of GB), and low enough that failing each reply still owed, one
 * by one (its node left), takes no more than a moment: a count of 2^53 would hold the process.
 */
export const MAX_NODE_SOCKETS = 2 ** 24

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isCounts(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(isCount)
}

function isWaiting(value: unknown): value is [string, JsonValue[], number] {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    typeof value[0] === 'string' &&
    Array.isArray(value[1]) &&
    isCount(value[2])
  )
}

/** One session of an `AdoptRequest`: a sid, its route parameters, and a timer's worth of ms. */
function isAdoption(value: unknown): value is [string, Record<string, string>, number] {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    typeof value[0] === 'string' &&
    value[0] !== '' &&
    isParams(value[1]) &&
    isTimeout(value[2]) &&
    value[2] <= MAX_TIMER_MS
  )
}

function isTimeout(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
}

/**
 * Where a node that handed a session off was for one node's broadcasts (see `ReadPlaces`): the
 * count `q` at or below which it had read them all, and the ranges above it, `[from, to]`, of
 * its own that it took without reading them (given up, see `ReadPlaces.skipped`).
 */
export interface Place {
  q: number
  skipped: [number, number][]
}

function isRange(value: unknown): value is [number, number] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    isCount(value[0]) &&
    isCount(value[1]) &&
    value[0] <= value[1]
  )
}

/**
 * The places a node that handed a session off wrote with its tail (see `ReadPlaces`): for each
 * node, a count, or `[count, [from, to], ...]`. Undefined for anything else, and for '' (a node
 * of an earlier version wrote none): the claimer then filters nothing.
 */
export function parsePlaces(text: string): Map<string, Place> | undefined {
  if (text === '') return undefined
  const value = parseJson(text)
  if (!isRecord(value)) return undefined
  const places = new Map<string, Place>()
  for (const [node, place] of Object.entries(value)) {
    if (isCount(place)) places.set(node, { q: place, skipped: [] })
    else if (Array.isArray(place) && isCount(place[0]) && place.slice(1).every(isRange))
      places.set(node, { q: place[0], skipped: place.slice(1) as [number, number][] })
    else return undefined
  }
  return places
}
