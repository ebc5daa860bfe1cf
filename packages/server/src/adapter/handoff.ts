import type { ErrorPacket, JsonValue, ParleyError, ReplyPacket } from '@parley/protocol'

/**
 * A live session as a draining node hands it to another node: plain JSON, written once to the
 * adapter's store (see `Adapter.handOff`). Everything the session needs to go on where it
 * stopped: nothing more is read from the node that wrote it, except the tail (below).
 *
 * The snapshot is taken at the instant the old node stops reading from the client: every
 * packet the client sent up to `inSeq` was handled there (or waits in `waiting`), everything
 * after it the client sends again to the new node, which it learns from OPEN's `ack`.
 * Outgoing packets numbered after the snapshot (broadcasts, replies of handlers still running on
 * the old node) go to the session's **tail**, in order, until the new node takes over.
 */
export interface SessionSnapshot {
  /** The format of this object; a node refuses (ignores) a version it does not know. */
  v: 1
  /** The session id (the bearer secret): what the client's HELLO names. */
  sid: string
  /** The public socket id; it stays the same on the new node. */
  id: string
  /** The last numbered packet received from the client, in order. */
  inSeq: number
  /** The last sequence number given to a packet for the client. */
  outSeq: number
  /**
   * The numbered packets the client has not acknowledged, as their wire text, in order: the
   * last one is `outSeq`, so the first is `outSeq - kept.length + 1`.
   */
  kept: string[]
  /**
   * The rooms the socket is in, without its own (named by its id): as its joins and leaves were
   * called, those the adapter had not finished at the freeze included. Changed after the freeze
   * on the old node, they are given again at the end of the tail (see `HandOffTail.tail`).
   */
  rooms: string[]
  /**
   * `socket.data` as JSON, or null with `dataLost` true when it could not be copied (a cycle,
   * a function, a class instance that does not survive `JSON.stringify`): the new node then
   * starts from `{}`, and the old one logged why.
   */
  data: JsonValue | null
  dataLost: boolean
  /**
   * Events the client sent that the old node acknowledged but had not handed to a handler yet
   * (they waited behind an async middleware), as `[name, args, ackId]`: the new node runs them
   * first, through its own middleware and handlers.
   */
  waiting: [name: string, args: JsonValue[], ackId: number][]
  /**
   * Ack ids of the client's requests whose handler ran on the old node and had not replied by
   * the snapshot. A reply made there before the tail is sealed travels in the tail; for each
   * one still open at the seal, the old node appends ERROR PARLEY_SESSION_MOVED.
   */
  openRequests: number[]
  /**
   * Ack ids the old node was waiting on (its emits with a callback), in the order it asked them
   * (see `nextAckId` for a snapshot without it). Those the old node asks after the snapshot
   * travel in the tail, where the new node reads their ids. With `repliesAwaited`, the old node
   * still awaits the client's replies to all of them, and the new node sends each one there
   * (`SessionClaim.forwardReply`); without it, their callbacks were rejected there with
   * PARLEY_SESSION_MOVED, and the new node drops the client's replies to them. After a second
   * move, first the ids the node before the old one asked that the client has not answered
   * yet: their replies go to the old node too, which sends them on to the node that asked them
   * (it never takes those ids for its own questions).
   */
  pendingAcks: number[]
  /**
   * True when the old node awaits the client's replies to its questions (`pendingAcks`, and
   * those of the tail) after the session moved, forwarded by the node that takes it over (see
   * `Adapter.forwardsReplies`). Absent from the snapshots of nodes of an earlier version, or
   * whose adapter does not forward: the new node then drops those replies.
   */
  repliesAwaited?: true
  /**
   * The ack id the old node would give its next question (1 to 2^31 - 1). It goes on asking
   * from there in the tail, after the snapshot, while the new node may already ask through
   * broadcasts with acks reaching the restored socket: the new node numbers its own questions
   * half the id space away (see `farAckId` in @parley/protocol), so the client's replies never
   * meet the wrong question. Absent from the snapshots of nodes of an earlier version, which
   * number upward from 1: the new node then reads one past the last of `pendingAcks` (the
   * newest question still awaited), or 1 when there is none (see old-ack-ids.ts); a question of
   * the new node that the tail shows under the same id is given another (restoring-questions.ts).
   * A node refuses a snapshot whose `nextAckId` is not an ack id, as it refuses one it cannot
   * restore.
   */
  nextAckId?: number
  /**
   * The old node's `maxPayload`. A node whose own is smaller does not end the session for a POST
   * past its limit but within this one: the client made it before it learnt the smaller limit
   * from the new node's OPEN (a rolling deploy that lowers it). Absent from the snapshots of
   * nodes of an earlier version; a value that is not a whole number above the node's own is
   * ignored.
   */
  maxPayload?: number
  /** When the session began (ms since the epoch), for the application's own bookkeeping. */
  created: number
  /**
   * The route parameters the session opened under (a Fastify prefix such as `/:tenant`), `{}`
   * without: a node takes it over only for a resume under the same. Absent from the snapshots
   * of nodes of an earlier version: then any resume takes it over.
   */
  params?: Record<string, string>
}

/**
 * A session a draining node handed off and nobody claimed, which it asks a live node to adopt
 * (see `Adapter.askAdoption`): that node claims it without its client, and keeps it for its
 * client's resume for `left` ms.
 */
export interface Adoption {
  sid: string
  /** The route parameters the session opened under (`{}` without): its claim is made under them. */
  params: Record<string, string>
  /**
   * What is left of its client's recovery window, in ms, as the node is asked: the adopting node
   * keeps it no longer, its claim and takeover included (see `LocalSockets.adopt`).
   */
  left: number
}

/**
 * What a draining node's ask to adopt carries besides the sessions (see `Adapter.askAdoption`):
 * how long it waits for them, and how it hears that the node took the request.
 */
export interface AdoptionAsk {
  /**
   * The ms from now the draining node waits for the claims: it seals what is left then, so the
   * node starts no claim past it (see `LocalSockets.adopt`).
   */
  within: number
  /**
   * Called once the node says it took the request, before its claims run. A share whose node
   * has not said so soon (a third of the adoption's wait) is asked of another live node: the
   * node may be dead or stuck, still in the live set. An adapter whose nodes cannot say so calls
   * it at once; one that never calls it has each share still unclaimed then asked again, which
   * is safe (a claim is exclusive: one node wins each session), only wasteful.
   */
  taking: () => void
}

/** What `SessionClaim.takeOver` resolves with. */
export interface HandOffTail {
  /**
   * Packets (wire text) the old node numbered after the snapshot, in order. Its last entry may
   * be the socket's rooms at the cut instead, a JSON object (`{"rooms":[...]}`, never a packet,
   * which is an array), when they are no longer the snapshot's: joins and leaves made on the
   * old node after the freeze. An adapter carries it as any other entry.
   */
  tail: string[]
  /**
   * True when the old node sealed the tail (nothing can follow). False when it was found gone,
   * or did not seal within the wait: whatever it produced after `tail` is lost.
   */
  complete: boolean
  /**
   * True when the old node had sealed the tail before this claim: its drain (or move) ended with
   * the session unclaimed, the client having come back after `handoff.timeout`. From that seal
   * until this takeover nobody took the session's packets, so what was sent to it meanwhile
   * (broadcasts, emits from other nodes) is lost. Absent means false.
   */
  late?: boolean
  /**
   * True, with `late`, when the old node sealed the tail as soon as it had stored the session,
   * no other node being alive to claim it (`Adapter.sealHandOff`'s `alone`): this node started
   * after it, as the only node of a deployment restarts, and no `handoff.timeout` would have let
   * a node claim it sooner. What was sent to the session between that seal and this takeover (by
   * nodes that started meanwhile, this one included) is lost all the same. Absent means false.
   */
  alone?: boolean
  /**
   * True when the session ended on the old node after this claim won, before that node gave it
   * up (see `Adapter.withdrawHandOff`): its application saw it end, so it is not taken over
   * here, and the client gets a new session. Absent means false.
   */
  ended?: boolean
  /**
   * True, with `ended`, when the session went on at the old node instead: that node gave up on
   * the store's write this claim found (it answered after `handoff.timeout`, and the session
   * was kept there), and took it back (see `Adapter.withdrawHandOff`). The snapshot is older
   * than the session, so it is not taken over here: the client is told to try again, and its
   * next try finds the session on its old node (`recovered: true`). Absent means false.
   */
  kept?: boolean
  /**
   * True when the adapter could not take the session over now and gave the claim back (with
   * @parley/redis: its store took no command for its whole wait, so the claim's cut could not be
   * set, and the old node, never told of the claim, still holds the session's handoff). `join`
   * was not called and the tail is empty: the server drops the claimed copy and tells the client
   * to try again, and a later try claims the session once the store answers. Absent means false.
   */
  retry?: boolean
}

/** A session this node won from another node's handoff (see `Adapter.claimSession`). */
export interface SessionClaim {
  readonly snapshot: SessionSnapshot
  /**
   * What was left of the client's recovery window when the claim was made, in ms, as the store
   * knows it (with @parley/redis: the life left of the handoff's keys, which the old node wrote
   * for what was left of its client's window: the whole window for a client it told to resume
   * elsewhere, less for one that was away already, see `Adapter.handOff`). A session this node
   * takes over without its client, who is answered "try again" (its middleware past
   * `handshakeTimeout`, or a refusal the node's close answered), waits for that try no longer than
   * this, less the time since the claim (see `answeredAt`), and never past this node's own
   * window: a client that never comes back is held no longer than its application configured, as
   * a resume's session waits on its own node. Absent, or not a number >= 0: this node's whole
   * recovery window, from then.
   */
  readonly recoveryLeft?: number
  /**
   * When the store answered the claim (`performance.now()` in this process): the moment
   * `recoveryLeft` was true at, from which the server counts the time the takeover took (see
   * there). Set it where the store's answer is read, before any other work of the adapter's:
   * what comes between counts. Absent, or not a number from 0 to the takeover's start: the server
   * counts from that start, a little later, which keeps the session that much longer.
   */
  readonly answeredAt?: number
  /**
   * Takes the session over. Calls `join` once, synchronously, at the point of the broadcast
   * order from which this node delivers broadcasts to the socket (the old node delivered every
   * earlier one into the tail, and no later one): the server then joins the socket to its rooms
   * and starts numbering deliveries after the tail. Resolves with the tail once the old node
   * sealed it, or once it is known gone, or after a bounded wait (`complete: false`).
   * Never rejects.
   */
  takeOver(join: () => void): Promise<HandOffTail>
  /**
   * Called once `takeOver` resolved (neither `ended` nor `kept`) and the server recorded this
   * node as the owner, right before it answers the client: whether the claim still stands. An
   * adapter that read the tail without the old node's last word (it stopped waiting for it) may
   * learn only now that the session ended there (`'ended'`: the server drops its copy and opens
   * a new session, as for `HandOffTail.ended`) or went on there (`'kept'`: the server drops its
   * copy and tells the client to try again, as for `HandOffTail.kept`). `'taken'`: the claim
   * stands, and the session is this node's. Absent: it stands. Never rejects.
   */
  confirm?(): Promise<ClaimStanding>
  /**
   * The client's reply (REPLY or ERROR) to a question the old node asked it, for a snapshot
   * with `repliesAwaited`: sent to the old node, which settles its wait with it (see
   * `Adapter.forwardsReplies`). The server calls it at most once per question, and only for the
   * old node's own ids. Never throws (one that throws or rejects is logged, and the reply is
   * lost); a reply the old node can no longer take (it left, or its wait ended) is lost, as it
   * would have been without it.
   */
  forwardReply?(reply: ReplyPacket | ErrorPacket): void
}

/** What became of a claim by the time its node answers the client (see `SessionClaim.confirm`). */
export type ClaimStanding = 'taken' | 'ended' | 'kept'

/**
 * Why a claim took no session, when the adapter can tell more than null ("nothing stored")
 * says (see `Adapter.claimSession`):
 *
 * - `owned`: nothing is stored, and the store names `node` as the session's node now: another
 *   node took it over, or the node that handed it off kept it (its move given up on). A resume
 *   that saw the session leave a node is told to try again, as for null, in words that say
 *   which (`the session stayed on its node` when `node` is the one it left), and its next try
 *   is sent there. `live`: the adapter takes `node`, another node than this one, for alive
 *   (@parley/redis: in its live set). Then a resume that saw the session nowhere on its way
 *   here (the owner's look-up failed, or read no record at that moment, or named this node) is
 *   told to try again too (`the session lives on another node`), and its next try is sent
 *   there, unless this node failed to reach `node` moments ago (a node killed stays live for a
 *   few heartbeats): a new session then, as for null. Any other resume is answered as for null.
 * - `unreadable`: the stored snapshot is one this node cannot read (another version, a bad
 *   shape), and never will be: `error` (coded) says why, and the server logs it with the
 *   snapshots it could not restore. The adapter has removed it.
 * - `lost`: another node's claim won, and that node left (said so) before it took the session
 *   over: the session went with it.
 * - `params`: the session stored opened under other route parameters (another tenant of
 *   `/:tenant`) than the resume's, given to `claimSession`: not claimed, it stays claimable by
 *   its own client, and this resume, which is not that client's, gets a new session at once
 *   under its own route, and learns nothing of the one stored.
 *
 * After `unreadable` or `lost` no try of the client's can ever take the session over, so the
 * resume gets a new session at once (`recovered: false`), whatever it saw, rather than be told
 * to try again only to find nothing on its next try.
 */
export type ClaimMissed =
  | { readonly missed: 'owned'; readonly node: string; readonly live?: boolean }
  | { readonly missed: 'unreadable'; readonly error: ParleyError<string> }
  | { readonly missed: 'lost' }
  | { readonly missed: 'params' }

/** What `Adapter.claimSession` resolves with (see there). */
export type ClaimAnswer = SessionClaim | ClaimMissed | null | 'retry' | 'elsewhere'

/** True for a claim that took no session and says why (see `ClaimMissed`). */
export function claimMissed(answer: ClaimAnswer): answer is ClaimMissed {
  return answer !== null && typeof answer === 'object' && 'missed' in answer
}
