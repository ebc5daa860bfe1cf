// The claimer's side of a handoff: the claim of a handed-off session a client resumed here, what
// the resume is told when there is none to take (or Redis cannot say), and the wiring of the
// takeover that follows (takeover.ts) to this node's claim markers, cut, uncut sockets and the
// places the old node wrote. Apart from the adapter, which hands it the parts it acts on.
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { ClaimAnswer, ClaimStanding } from '@parley/server'
import { LOOK_AGAIN_MS } from './commands.js'
import { type ClaimReply, OTHER_PARAMS } from './handoff.js'
import type { HandoffParts } from './handoff-parts.js'
import { restoring } from './nodes.js'
import { requestId } from './pending.js'
import { codeOf, RedisBusyError, RedisUnreachableError } from './send.js'
import { sidHash } from './sessions.js'
import { Takeover } from './takeover.js'
import { unsealedTail } from './unsealed-tail.js'
import { type Place, parsePlaces, parseSnapshot, type ResponsePacket } from './wire.js'

/** A claim Redis answered with an error (see `Claims.claim`). */
const REFUSED = Symbol('refused')

/** This node's claims, and its takeovers waiting for their claim marker to come back. */
export class Claims {
  readonly #parts: HandoffParts
  /** Takeovers of this node waiting for their claim marker to come back, by claim id. */
  readonly #waiting = new Map<string, Takeover>()

  constructor(parts: HandoffParts) {
    this.#parts = parts
  }

  /** This node's claim marker `id` came back on the channel. */
  marked(id: string): void {
    this.#waiting.get(id)?.marked()
  }

  /**
   * Claims `sid`, a handed-off session, for this node, and takes it over when the claim wins:
   * see `RedisAdapter.claimSession` for what each answer means.
   */
  async claim(sid: string, params?: Readonly<Record<string, string>>): Promise<ClaimAnswer> {
    const cannot = this.#cannotClaim()
    if (cannot !== undefined) return cannot
    // Bounded by requestTimeout (see Commands): the client's resume waits for it. Behind a burst
    // on this node it waits its turn, bounded too, rather than send the client round again.
    const won = await this.#parts.handoffs.claim(sid, params).catch((err: unknown) => this.#failed(err))
    return this.#answer(sid, won, () => this.#refilling())
  }

  /**
   * `claim` of each of `sessions` (a drain's adoption, see `RedisAdapter.claimSessions`), in one
   * command for them all: each answer, in order, is what `claim` of that session alone would
   * give. A store that fails fails them all alike; Redis that restarted without its data is
   * asked once for the lot.
   */
  async claimMany(
    sessions: readonly { sid: string; params?: Readonly<Record<string, string>> }[],
  ): Promise<ClaimAnswer[]> {
    if (sessions.length === 0) return []
    const cannot = this.#cannotClaim()
    if (cannot !== undefined) return sessions.map(() => cannot)
    const list = sessions.map(({ sid, params }) => ({ sid, params }))
    const replies = await this.#parts.handoffs.claimMany(list).catch((err: unknown) => this.#failed(err))
    let refilling: Promise<boolean> | undefined
    const once = () => {
      refilling ??= this.#refilling()
      return refilling
    }
    return Promise.all(
      list.map(({ sid }, i) =>
        this.#answer(sid, Array.isArray(replies) ? (replies[i] ?? null) : replies, once),
      ),
    )
  }

  /**
   * What a claim answers before any command (see `claim`): null once closed, `'retry'` while this
   * node is deaf; undefined when it may claim.
   */
  #cannotClaim(): ClaimAnswer | undefined {
    if (this.#parts.closed()) return null
    // Deaf (the subscriber's connection down, or not subscribed again yet), this node would hear
    // neither its claim marker nor the old node's seal, nor the broadcasts after the cut: the old
    // node stops delivering at the marker, and what it broadcasts until the subscriber is back
    // would reach the session from nobody. Nothing is claimed: the client tries again. With Redis
    // away for the commands too, the warning says that, the likelier cause, as it always did.
    if (!this.#parts.hears()) {
      const away = this.#parts.commands.unavailable()
      if (away === undefined) return this.#deaf()
      return this.#cannotAsk(new RedisUnreachableError(away, { at: this.#parts.commands.address }))
    }
    return undefined
  }

  /** A claim's command that rejected with `err` (see `claim`): what its answer is read from. */
  #failed(err: unknown): RedisUnreachableError | RedisBusyError | typeof REFUSED {
    if (err instanceof RedisUnreachableError || err instanceof RedisBusyError) return err
    // Redis answered with an error (loading its data after a restart, a replica after a
    // failover, out of memory): a store failure, as when it cannot be asked, not "nothing
    // stored". Refused at its first write, the claim changed nothing: the client's next try
    // finds the handoff as it was.
    this.#parts.warnings.warn(
      'claim',
      'Redis refused a claim of a handed-off session; the client tries again',
      {
        err,
      },
    )
    return REFUSED
  }

  /**
   * The answer to the claim of `sid`, from what the store gave (`won`), and the takeover's wiring
   * when it won. `refilling`: whether Redis is refilled after it lost its data (see `#refilling`).
   */
  async #answer(
    sid: string,
    won: ClaimReply | RedisUnreachableError | RedisBusyError | typeof REFUSED,
    refilling: () => Promise<boolean>,
  ): Promise<ClaimAnswer> {
    if (won === REFUSED) return 'retry'
    if (won instanceof RedisUnreachableError || won instanceof RedisBusyError) return this.#cannotAsk(won)
    if (won === 'unsure') {
      this.#parts.warnings.warn(
        'claim',
        'a claim got no answer from Redis; it is taken back once Redis answers, and the client tries again',
      )
      return 'retry'
    }
    if (!won) return (await refilling()) ? 'retry' : null
    // Another tenant's session (see CLAIM): not this resume's, and left to its own client.
    if (won === OTHER_PARAMS) return { missed: 'params' }
    // Nothing to claim, and the session lives on: the server words its "try again" by whether
    // that node is the one the resume saw it leave (it kept it) or another (it took it over).
    // Alive: in the live set (a node whose record lapsed is not, whether dead or stalled).
    if ('owner' in won)
      return {
        missed: 'owned',
        node: won.owner,
        live: won.owner !== this.#parts.node && this.#parts.nodes.has(won.owner),
      }
    // Another node's claim won, and that node is still taking the session over: this resume is
    // the client's next try after it gave up on the first (a slow takeover). A new session here
    // would leave the one being restored behind, with all it holds; the client tries again, and
    // finds it on the claimer once the takeover is done. So too when the claimer is out of the
    // live set: its record lapsed, which does not prove it dead (stalled, or its Redis slow to
    // answer, it takes the session over all the same, Redis or not), and the client's next try is
    // sent to its last address (see `sessionOwner` in lookups.ts). Only a claimer that said it left (heard
    // here, or marked in Redis: see `Nodes.saidGoodbye`) never finishes: the session went with
    // it, and the client gets a new one at once. One that died without a word holds its client's tries
    // until the handoff's keys expire (their `ttl`) or the server's bound on them (the recovery
    // window) ends.
    if ('claimer' in won) {
      // This node's own claim: a takeover under way here, or one given up on whose take-back
      // waits for Redis (see `HandOffStore.claim`): nothing another node took.
      if (won.claimer === this.#parts.node) return this.#parts.closed() ? null : 'retry'
      return (await this.#parts.nodes.saidGoodbye(won.claimer)) ? { missed: 'lost' } : 'elsewhere'
    }
    this.#parts.stands(won.standsFor)
    const hash = sidHash(sid)
    this.#parts.sessions.claimed(sid)
    const parsed = parseSnapshot(won.snapshotText, sid)
    if (!parsed.ok) {
      // Nobody can take this session over: leave no record or keys behind. The server logs why,
      // with the other snapshots it could not restore.
      this.#parts.sessions.closed(sid)
      void this.#parts.handoffs.finish(hash, false).catch(() => undefined)
      const why = `a handed-off session's snapshot was refused: ${parsed.why}`
      return { missed: 'unreadable', error: new ParleyError(ErrorCode.INVALID_PACKET, why) }
    }
    const id = requestId()
    // While the marker may be on the channel and has not come back: the count of this node's
    // own broadcasts PUBLISHed before it. Those are the old node's to deliver (into the tail),
    // so a socket joined before the marker is back (the wait for the seal ran out, the marker
    // was given up) must not take them when they come back. Without a marker that may run, there
    // is no cut to go by: the socket takes every own broadcast that comes back.
    let markedAt: number | undefined
    // Where this node was on the channel at the join: what it read before is the old node's to
    // deliver, and what that node read too late for a tail read unsealed is given from there
    // (see read-window.ts). After it, the socket takes broadcasts itself.
    let joinedAt: number | undefined
    return new Takeover(parsed.snapshot, {
      node: this.#parts.node,
      id,
      hash,
      oldNode: won.oldNode,
      epoch: won.epoch,
      sealed: won.sealed,
      alone: won.alone,
      recoveryLeft: won.recoveryLeft,
      answeredAt: won.answeredAt,
      saidGoodbye: (node) => this.#parts.nodes.saidGoodbye(node),
      publish: async (marker, takeover) => {
        // Refused while this node's connection is slow, the marker would never reach the old
        // node: it would go on numbering into a tail read without it, and seal only at the end of
        // its drain. Waited for instead, at most requestTimeout; the wait for the seal follows.
        // Behind a burst on this node it takes its turn, however long the burst lasts while Redis
        // answers (see `Commands.whenInTurn`): waiting for the burst to end, it would starve.
        if (this.#parts.closed() || !(await this.#parts.commands.whenInTurn()) || this.#parts.closed())
          return false
        this.#waiting.set(id, takeover)
        this.#parts.pending.set(id, {
          answer: (node, packet) => {
            if (packet.k === 'sealed' && node === won.oldNode) takeover.sealed()
          },
          // A node whose record lapsed may be alive, and seal: only its goodbye ends the wait.
          gone: () => {},
          saidGoodbye: (node) => takeover.left(node),
          cancel: () => takeover.cancel(),
        })
        markedAt = this.#parts.cut.count
        // In its turn: behind the commands queued before it, own PUBLISHes counted in
        // `markedAt` among them, and before any sent after it (see `Commands.sendInTurn`).
        this.#parts.publisher.publishInTurn(this.#parts.channel, marker, (_why, sent) => {
          // Sent and given up: Redis was slow, and may still run it, as the cut. Or the
          // connection dropped first (it is not ready now): it most likely never ran, and goes
          // again once the connection is back; should both run, the first is the cut for both
          // nodes, which read the channel in one order.
          if (sent) {
            if (this.#parts.commands.client.isReady) takeover.markerGivenUp()
            else takeover.markerDropped()
            return
          }
          // Never sent, or refused: Redis never runs it; the takeover sends it again.
          markedAt = undefined
          takeover.markerLost()
        })
        return true
      },
      unregister: () => {
        this.#waiting.delete(id)
        this.#parts.pending.delete(id)
      },
      giveBack: () => {
        this.#parts.sessions.givenBack(sid)
        this.#parts.handoffs.unclaim(hash, won.claim)
      },
      position: (socket) => {
        // Right before the join: until its tail is read, the session may be its old node's
        // still, and this node's count of a question asked of it waits (see unread-takeovers.ts).
        this.#parts.unread.joined(socket)
        // A tail sealed before the claim has what it has; one not sealed yet may come unsealed
        // and lack some of those own broadcasts before the marker (see `Cut.tailRead`). Not
        // when this node handed the session off itself, as before: its place for itself is not
        // what it read on the channel alone (see places.ts).
        const mayLack = !won.sealed && won.oldNode !== this.#parts.node
        this.#parts.cut.positionUntilBack(socket, markedAt ?? 0, mayLack)
        joinedAt = this.#parts.window.mark()
      },
      markerBack: (socket) => {
        if (markedAt === undefined) return
        markedAt = undefined
        this.#parts.cut.markerBack(socket)
      },
      uncut: (socket) => this.#parts.uncut.joined(socket),
      // Bounded by requestTimeout (see Commands), and never queued while Redis is away.
      finish: async () => {
        let kept = false
        /** Read without the old node's seal: its count waits for the confirm (see below). */
        let unsealed = false
        try {
          let read = await this.#parts.handoffs.finish(hash, true).catch((err: unknown) => {
            // Never sent: Redis holds the tail whole, read at the client's next try (see
            // `Takeover`). Sent and not answered, the read may have run and taken the keys
            // away: the tail is incomplete, and said so.
            const unread = this.#parts.commands.neverSent(err)
            this.#parts.warnings.warn(
              'claim',
              unread
                ? 'could not read the tail of a claimed session; its claim is given back for the client to try again'
                : 'could not read the tail of a claimed session',
              { code: codeOf(err), err },
            )
            return { tail: [], sealed: false, whole: false, ended: false, kept: false, places: '', unread }
          })
          // Given back: the server drops the socket here, as for one its old node kept.
          kept = read.kept || read.unread === true
          unsealed = !read.sealed && !read.ended && !kept
          // Sealed and the session's still: the claim's owner record stands (see `claimStands`).
          if (read.sealed && !read.ended && !kept) this.#parts.sessions.claimStands(sid)
          // Kept by its old node, which asked it what its rooms got: what a socket joined without
          // a cut held meanwhile is not given here, where the server drops it.
          if (kept) {
            this.#parts.uncut.forget(parsed.snapshot.id)
            this.#parts.cut.tailRead(parsed.snapshot.id, false, undefined, this.#parts.node)
          } else {
            const places = this.#places(read.places)
            // Unsealed, the tail lacks what the old node read after its last batch that landed:
            // given from what this node read before its cut, ahead of what the socket held.
            if (unsealed && places && joinedAt !== undefined)
              read = {
                ...read,
                tail: unsealedTail(this.#parts, parsed.snapshot, read.tail, places, joinedAt).tail,
              }
            const id = parsed.snapshot.id
            this.#parts.uncut.read(id, places, (node) => this.#parts.readPlaces.at(node), unsealed)
            // Joined before its marker came back: this node's own broadcasts before that marker
            // that an unsealed tail lacks are the socket's when they come back (see `Cut.tailRead`).
            this.#parts.cut.tailRead(id, unsealed, places, this.#parts.node)
          }
          return read
        } finally {
          // Kept by its old node, which answers for it, the server drops the socket here: the
          // questions it was asked meanwhile are not counted here. Read unsealed, that node may
          // keep it still, and its confirm tells (bounded: the server asks it right before it
          // answers the client, after the owner record within requestTimeout; the confirm waits
          // for Redis at most requestTimeout, then for its answer as long).
          if (unsealed) this.#parts.unread.unconfirmed(parsed.snapshot.id, 4 * this.#parts.requestTimeout)
          else this.#parts.unread.read(parsed.snapshot.id, kept)
        }
      },
      confirm: async () => {
        const standing = await this.#parts.handoffs
          .confirm(hash, won.claim)
          .catch((err: unknown): ClaimStanding => {
            // Never sent (Redis away past its wait, or MAX_QUEUED_COMMANDS waiting): the claim is
            // not confirmed, and a take-back of its old node's may still revoke it. The session
            // goes on here all the same (the read took its snapshot and tail away: this node
            // holds the only copy, as a rule), and is confirmed once Redis takes it (see
            // `#confirmLate`). Sent and unanswered, it may have run: taken as standing.
            const unsent = this.#parts.commands.neverSent(err)
            this.#parts.warnings.warn(
              'claim',
              unsent
                ? 'could not confirm the claim of a session whose tail was not sealed; it is confirmed once Redis takes it, and the session ends here should its old node have kept or ended it meanwhile'
                : 'could not confirm the claim of a session whose tail was not sealed',
              { code: codeOf(err), err },
            )
            if (unsent) void this.#confirmLate(sid, hash, won.claim, won.standsFor)
            return 'taken'
          })
        // Kept by its old node: as for a tail that says so (see `finish`).
        this.#parts.unread.read(parsed.snapshot.id, standing === 'kept')
        return standing
      },
      // On the old node's own response channel: only the node that asked reads it, and a sid
      // never goes on a channel every node reads.
      forward: (text) => {
        const answered: ResponsePacket = {
          n: this.#parts.node,
          id: '',
          k: 'answered',
          i: parsed.snapshot.id,
          p: text,
        }
        // Lost, the old node's question ends at its own limits (its timeout, or the move's).
        this.#parts.publisher.publish(`${this.#parts.prefix}:response:${won.oldNode}`, answered, (why) =>
          this.#parts.losses.lostReplySentBack(won.oldNode, why),
        )
      },
      failed: (err) => this.#parts.warnings.warn('claim', 'taking over a claimed session failed', { err }),
    })
  }

  /**
   * Sends the confirm of claim `claim` of session `sid` again until Redis takes it, for as long as
   * the claim may stand (`ms`, the life of its handoff's keys), the adapter open, after a pause that
   * grows after each refusal (see `longestConfirmPause`): its server went
   * on with the session unconfirmed (see `confirm` above). Should the answer say that the old
   * node kept the session (its take-back of the write revoked the claim: the owner record names
   * it again) or ended it, the copy here ends as a session taken over elsewhere does
   * (`LocalSockets.takenOver`): its client's next try finds the session where it lives, or how it
   * ended (its old node kept that record for it, see `EndedRecords`). A server without that hook
   * cannot end the copy, which its client is with: the confirm leaves the owner record to it, and
   * a warning says the copy goes on. Never rejects.
   */
  async #confirmLate(sid: string, hash: string, claim: string, ms: number): Promise<void> {
    // The monotonic clock: a step of the wall clock (NTP) must not end the tries while the claim
    // still stands (the copy here would go on unconfirmed), nor stretch them past it.
    const until = performance.now() + ms
    let pause = LOOK_AGAIN_MS
    // A server without the hook cannot end the copy here, which its client is with: the owner
    // record is left to it whatever the answer (see CONFIRM).
    const endsCopy = this.#parts.sockets.takenOver !== undefined
    while (!this.#parts.closed() && performance.now() < until) {
      const standing = await this.#parts.handoffs
        .confirm(hash, claim, !endsCopy)
        .catch((err: unknown) => (this.#parts.commands.neverSent(err) ? undefined : 'unknown'))
      if (standing === undefined) {
        // Refused again. A burst that fills the queue refuses at once, and may last as long as
        // the claim stands (30 s or more): a pause that grows, twice as long after each refusal
        // up to a quarter of requestTimeout, so that a node held busy is not asked 50 times a
        // second, while a confirm that Redis takes again comes at most that much later.
        await pauseFor(Math.min(pause, until - performance.now()))
        pause = Math.min(2 * pause, longestConfirmPause(this.#parts.requestTimeout))
        continue
      }
      if (standing !== 'kept' && standing !== 'ended') return
      if (!endsCopy) {
        this.#parts.warnings.warn(
          'claim-revoked',
          `a claim confirmed late found its session ${standing} by the node it was handed off from; this server cannot end the copy taken over here (it has no takenOver), which goes on with its client and its owner record`,
        )
        return
      }
      this.#parts.warnings.warn(
        'claim-revoked',
        `a claim confirmed late found its session ${standing} by the node it was handed off from; the copy taken over here ends`,
      )
      try {
        this.#parts.sockets.takenOver?.(sid)
      } catch (err) {
        this.#parts.warnings.warn(
          'claim-revoked',
          'the server failed to end the copy of a session confirmed late as not its own',
          {
            err,
          },
        )
      }
      return
    }
  }

  /**
   * Nothing to claim, but Redis restarted without its data a moment ago (see `restoring`): the
   * session's owner may not have written its record again yet, so the client tries again rather
   * than start over. Logged at most once every 10 s. Redis that cannot say (away, silent, or a
   * burst on this node too long to wait behind) is a resume that could not be looked up: the
   * client tries again too, and the warning says why.
   */
  async #refilling(): Promise<boolean> {
    const refilling = await restoring(this.#parts.commands, this.#parts.prefix).catch((err: unknown) => err)
    if (refilling instanceof RedisUnreachableError || refilling instanceof RedisBusyError) {
      this.#cannotAsk(refilling)
      return true
    }
    // Not refilling, or Redis answered with an error (nothing then says it lost its data): the
    // resume goes on as one of no session.
    if (refilling !== true) return false
    this.#parts.warnings.warn(
      'claim-refilling',
      'a resume found no session while Redis is refilled after it lost its data; the client tries again',
    )
    return true
  }

  /**
   * A resume Redis cannot be asked about: logged (at most once every 10 s), and tried again. With
   * its `code` beside the `err`, as every warning of something given up: a burst on this node
   * too long for the claim to wait its turn (`PARLEY_REDIS_BUSY`) from a Redis away or silent.
   */
  #cannotAsk(err: RedisUnreachableError | RedisBusyError): 'retry' {
    this.#parts.warnings.warn(
      'claim-unreachable',
      'a resume of a session this node does not hold could not be looked up in Redis; the client tries again',
      { code: err.code, err },
    )
    return 'retry'
  }

  /**
   * A resume this node cannot take over without loss, its subscriber away (see `claim`): logged
   * (at most once every 10 s), and tried again.
   */
  #deaf(): 'retry' {
    this.#parts.warnings.warn(
      'claim-deaf',
      "a resume of a session this node does not hold came while this node's subscriber is not subscribed; the client tries again",
    )
    return 'retry'
  }

  /**
   * The places the old node wrote with a tail (see `ReadPlaces`). Undefined when it wrote none
   * (a node of an earlier version); one it wrote that cannot be read is logged, and filters
   * nothing: what the claimer's slow subscriber reads after the join goes to the socket, some of
   * which the tail may hold already.
   */
  #places(text: string): Map<string, Place> | undefined {
    const places = parsePlaces(text)
    if (!places && text !== '') {
      this.#parts.warnings.warn(
        'places-unreadable',
        "the places of a claimed session's tail could not be read: they filter nothing, and a broadcast may reach the session twice",
      )
    }
    return places
  }
}

/**
 * The longest pause between two tries of a confirm sent late (see `Claims.#confirmLate`): a
 * quarter of `requestTimeout`, and never less than `LOOK_AGAIN_MS`, the first pause.
 */
function longestConfirmPause(requestTimeout: number): number {
  return Math.max(LOOK_AGAIN_MS, requestTimeout / 4)
}

/** Resolves after `ms`; its timer holds no process open (the adapter closes as it will). */
function pauseFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref())
}
