// A broadcast with acks across nodes: this node's sockets and the other live nodes' at once,
// their counts and replies gathered node by node (see replies.ts), bounded by requestTimeout
// where Redis may have lost what a node sent, whatever the caller's timeout. A node that drops
// out of the live set before it counts is not waited for: counted and logged when its record
// lapsed (it may still hold sockets that took it), not when it said goodbye.
import { MAX_TIMER_MS } from '@parley/protocol'
import type {
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSockets,
  MemoryAdapter,
} from '@parley/server'
import { AnswersFirstTimer } from './answers-first-timer.js'
import { askAtSeal } from './at-seal.js'
import type { AskAwaited } from './awaited.js'
import type { Cut } from './cut.js'
import { type AskWithAck, askHolding } from './held-questions.js'
import { ANSWERS_REPLIED, ASKS_ACKS_AGAIN } from './nodes.js'
import type { OwnAcks } from './own-acks.js'
import { requestId } from './pending.js'
import type { ReadPlaces } from './places.js'
import type { QueryParts } from './query.js'
import { toReply } from './remote.js'
import { BroadcastReplies } from './replies.js'
import { shortReasons } from './short-reasons.js'
import type { Losses } from './stats.js'
import type { UncutSockets } from './uncut-sockets.js'
import type { UnreadTakeovers } from './unread-takeovers.js'
import { type RepliedRequest, type RequestPacket, toWireOptions } from './wire.js'

/** What a broadcast with acks needs of the adapter. */
export type AckParts = Pick<
  QueryParts,
  'node' | 'pending' | 'publisher' | 'channel' | 'requestTimeout' | 'warnings'
> & {
  /** This node's rooms and sockets. */
  readonly memory: MemoryAdapter
  readonly sockets: LocalSockets
  readonly losses: Losses
  /** Asks this node's sockets, those past their claim marker too (see `PastMarkerSockets.askWithAck`). */
  readonly ask: AskWithAck
  /** Now on Redis' clock, as this node reads it (see `Nodes.redisNow`). */
  readonly redisNow: () => number | undefined
  /** Which Redis server that clock is (see `Nodes.redisRun`). */
  readonly redisRun: () => string | undefined
  /** The version a live node's note gives (0 when it gives none): what it can be asked. */
  readonly version: (node: string) => number
  /** The other live nodes now (see `Nodes.others`). */
  readonly others: () => readonly string[]
  /** The sockets being handed over, and the count of this node's broadcasts. */
  readonly cut: Cut
  /** The sockets joined without a cut, which take this node's own when they come back too. */
  readonly uncut: UncutSockets
  /** The sockets a takeover joined, until its tail is read (see unread-takeovers.ts). */
  readonly unread: UnreadTakeovers
  /** Where this node is on the channel: a request given up is kept there as a broadcast is. */
  readonly readPlaces: ReadPlaces
  readonly ownAcks: OwnAcks
  /**
   * PUBLISHes a note to this node itself, behind what it PUBLISHed so far: when it comes back,
   * those of its broadcasts with acks not back before it never ran (see `OwnAcks.passed`).
   */
  readonly probe: () => void
  /** See `Broadcasts.awaitQuestion`. */
  readonly awaitQuestion: (
    q: number,
    message: BroadcastMessage,
    options: BroadcastOptions,
    ask: AskAwaited,
  ) => boolean
  /** See `Broadcasts.questionBehind`. */
  readonly questionBehind: (
    q: number,
    message: BroadcastMessage,
    options: BroadcastOptions,
    ask: AskAwaited,
  ) => boolean
}

/**
 * Broadcasts `message` with acks to this node's matching sockets and to those of the live nodes
 * `others` (none when this node is alone but has sockets that take its own broadcasts by their
 * place): see `Adapter.broadcastWithAck`.
 */
export function broadcastAcross(
  parts: AckParts,
  others: string[],
  message: BroadcastMessage,
  options: BroadcastOptions,
  timeout: number,
  expect: (count: number) => void,
  reply: (reply: BroadcastReply) => void,
): void {
  const { pending } = parts
  const id = requestId()
  let countTimer: AnswersFirstTimer | undefined
  let askTimer: NodeJS.Timeout | undefined
  let probeTimer: NodeJS.Timeout | undefined
  /** The caller's timeout: set once this node's sockets were asked (see below). */
  let timer: AnswersFirstTimer | undefined
  /** Whether Redis took the request: until then, no other node could count. */
  let taken = false
  const end = () => {
    timer?.clear()
    countTimer?.clear()
    clearInterval(askTimer)
    clearInterval(probeTimer)
    pending.delete(id)
  }
  /** Nodes whose record lapsed while their count was awaited (see `gone` below). */
  const lapsed: string[] = []
  /** Whether the total was counted and logged as short already: one request, said once. */
  let saidShort = false
  /**
   * Counts and logs the total as short of some nodes' counts: `why` (their counts late), with
   * the nodes that lapsed before counting said beside it.
   */
  const uncounted = (why?: string) => {
    if (saidShort) return
    saidShort = true
    const incompleteRequests = parts.losses.incomplete()
    const reasons = shortReasons(why, lapsed, 'counting their sockets')
    parts.warnings.warn('request', `a broadcast with acks went uncounted by some nodes: ${reasons}`, {
      ...(lapsed.length > 0 && { lapsed: [...lapsed] }),
      incompleteRequests,
    })
  }
  const replies = new BroadcastReplies(
    others,
    (total) => {
      countTimer?.clear()
      if (lapsed.length > 0) uncounted()
      expect(total)
    },
    reply,
    end,
  )
  pending.set(id, {
    answer: (node, packet) => {
      if (packet.k === 'count') {
        // A lapsed node alive after all: its count, taken while the total is open, is not lost.
        if (!replies.expected && lapsed.includes(node)) lapsed.splice(lapsed.indexOf(node), 1)
        replies.counted(node, packet.c)
      } else if (packet.k === 'reply') replies.relayed(node, () => toReply(packet))
      else if (packet.k === 'replied')
        parts.losses.lostReplies(node, replies.replied(node, packet.all ? 'all' : packet.c))
    },
    // Redis delivers a PUBLISH only to the connections subscribed as it runs it: a node whose
    // subscriber was reconnecting then never had the request, nor this node the counts sent
    // while its own was. Each says when it is subscribed again, and is asked again (see
    // `askAgain`), within the same bound (`countsLate`).
    heard: (node) => askAgain(node),
    // Not waited for any more. A node that said goodbye closed with its sockets: the total is
    // whole without it. One whose record lapsed may still hold sockets that took the broadcast,
    // which the total lacks: said with it, as a count that comes too late is.
    gone: (node, lapse) => {
      if (lapse && replies.awaits(node)) lapsed.push(node)
      replies.gone(node)
    },
    cancel: () => {
      settleLocal()
      replies.cancel()
    },
  })
  const { cut } = parts
  // A socket being handed over is asked when the request comes back, at its place among the
  // broadcasts, on the side of the claim marker it comes back on (see own-acks.ts), not now:
  // asked here into the old node's tail, it would be asked again by the claimer should Redis
  // run the request after the marker; or, not joined yet on the claimer, by neither node.
  // This node's count waits for that moment.
  // So is a socket joined without a cut whose tail is not read yet (see uncut-sockets.ts): asked
  // now, the question would reach it ahead of the broadcasts it holds, and of this node's own
  // emitted before that it was left out of; when it comes back, it is held behind them.
  const { uncut } = parts
  const uncutOut: string[] = []
  const uncutAtEmit = uncut.empty ? undefined : uncut.leftOut(uncutOut)
  let askNow: ((socket: string) => boolean) | undefined = cut.empty ? undefined : cut.atEmit
  if (uncutAtEmit) askNow = (socket) => cut.atEmit(socket) && uncutAtEmit(socket)
  /**
   * How many sockets were asked at emit: given at once, unless one is a socket a takeover joined
   * whose tail is not read yet (see unread-takeovers.ts), counted once it is.
   */
  let atEmit: number | undefined
  /** This node's count but for `atEmit`, once known, while `atEmit` is not. */
  let rest: number | undefined
  /** Whether this node's count is given. */
  let localGiven = false
  // Not run on the channel: a socket past its claim marker (none is asked at emit while it is
  // positioned) would take it where it is.
  const giveAskedNow = parts.ask(
    message,
    options,
    timeout,
    (count) => {
      atEmit = count
      if (rest !== undefined) local(rest)
    },
    reply,
    askNow,
    false,
  )
  /** When the caller's timer started, on this node's monotonic clock (see `RequestPacket.l`). */
  const timerStarted = performance.now()
  /** The caller's timeout: what the nodes gave by then is the answer. */
  const atTimeout = () => {
    // Ended in the turn the verdict waited (every reply came): nothing is left to give.
    if (!pending.has(id)) return
    // Asked when it came back, a count held there for a socket joined without a cut (see
    // held-questions.ts) is given now with what it has: its own bound, set then, ends later,
    // and the replies of the sockets asked with it would be lost.
    giveHeldNow()
    // Bounded there at the same timeout, set before this timer: given by now, as a rule.
    giveAskedNow?.()
    // Not back by now (a Redis that slow), the sockets being handed over are not asked.
    settleLocal()
    // A node that has not counted by now may hold sockets that took it, which the total lacks:
    // said as a count later than requestTimeout is (and once: `countsLate` ends with this).
    if (!replies.expected && replies.uncounted > 0)
      uncounted(
        taken
          ? `${replies.uncounted} did not count its sockets within the broadcast's own timeout of ${timeout} ms`
          : `Redis did not answer its PUBLISH within the broadcast's own timeout of ${timeout} ms`,
      )
    replies.stopWaiting()
    end()
  }
  // Past MAX_TIMER_MS (Infinity included) no timer, as for one socket: a timer given more would
  // fire at once. The wait then ends when every counted socket replied, or its node left. Set
  // after the ask: a count held there (a takeover's socket whose tail is unread) is given at the
  // same timeout with what it has, and this one then counts it.
  if (timeout <= MAX_TIMER_MS && pending.has(id)) {
    // The verdict waits one turn of the event loop (see `AnswersFirstTimer`), as the count's
    // bound does (see `waitForCounts`): the counts and replies that reached this node in time
    // are read first, even when this node was held past the timeout. A count held here, bounded
    // at the same timeout and set before, is given in that turn before it. The server's own timer
    // at this timeout waits two turns, set before this one: its verdict follows this one's.
    timer = new AnswersFirstTimer(timeout, atTimeout)
  }
  const q = cut.sent()
  if (uncutOut.length > 0) uncut.owe(uncutOut, q)
  // Whether a socket was left out here, to be asked when the request comes back.
  const leftOut = !cut.empty || uncutOut.length > 0
  /** Whether the sockets left out were asked (or found to take none). */
  let counted = false
  /**
   * This node's count: `count` for the sockets asked since emit, with those asked at emit once
   * that count is known, or at once `now` (the wait is over: those not counted by now, none).
   */
  const local = (count: number, now = false) => {
    if (localGiven) return
    rest ??= count
    if (atEmit === undefined && !now) return
    localGiven = true
    replies.local((atEmit ?? 0) + rest)
  }
  /** Whether the count of the sockets left out came in time, so that their replies count. */
  let returnCounted = false
  /** Gives the count of the sockets left out, asked when it came back, with what it has. */
  let giveHeldNow = () => {}
  /**
   * Sockets left out asked ahead of the others, each as its tail was sealed while the others
   * still waited for what was given up before this (see `askLeaving`), and how many matched:
   * counted with this node's, whenever that is given.
   */
  const askedEarly = new Set<string>()
  let earlyCount = 0
  /**
   * This node's count: the sockets asked at emit, and those left out asked `now`, as Redis ran
   * it (`ran`: back on the channel) or never. Among these, a socket joined without a cut is
   * counted once its tail is read (see held-questions.ts).
   */
  const countLocal = (now: boolean, ran = true) => {
    if (counted || !pending.has(id)) return
    counted = true
    if (!now || (cut.empty && uncut.empty)) {
      local(earlyCount)
      return
    }
    const positioned = cut.empty ? undefined : cut.atReturn(q)
    giveHeldNow = askHolding(
      parts,
      { node: parts.node, q, ran },
      message,
      options,
      timeout,
      (count) => {
        if (localGiven || !pending.has(id)) return
        returnCounted = true
        local(earlyCount + count)
      },
      (made) => {
        if (returnCounted) reply(made)
      },
      (socket) => !askedEarly.has(socket) && (uncut.owes(socket, q) || positioned?.(socket) === true),
      // Before the marker of a socket joined without it, whose unsealed tail may lack it: held
      // for that tail to say, as a broadcast is (see `Cut.beforeCut`). Back on the channel only:
      // one that never ran is not before any marker a claimer read.
      ran && !cut.empty ? (socket) => cut.beforeCut(socket, q) : undefined,
    )
  }
  /**
   * Socket `socket`, left out, leaves the positioned ones (its tail is sealed) while the others
   * still wait for the own broadcasts given up before this question: asked now, alone, into its
   * tail; the others at the question's turn (see awaited.ts). Its count joins this node's, which
   * is given then, and so its reply counts whenever it comes.
   */
  const askLeaving = (socket: string) => {
    if (counted || !pending.has(id) || askedEarly.has(socket) || !cut.atReturn(q)(socket)) return
    askedEarly.add(socket)
    // Its own throw costs that socket this question alone (see at-seal.ts).
    askAtSeal(
      parts.memory,
      parts.sockets,
      parts.warnings,
      message,
      options,
      timeout,
      (count) => {
        earlyCount += count
      },
      reply,
      socket,
    )
  }
  /**
   * Proved never run (or never sent) while sockets being handed over wait for what is before it
   * (see awaited.ts): asked of socket `only` alone, its tail about to be sealed, or of every
   * socket left out that was not asked so.
   */
  const askAwaited: AskAwaited = (only) => {
    if (only !== undefined) askLeaving(only)
    else countLocal(true, false)
  }
  /** The wait ends: this node counts what it asked so far, the sockets left out none if not asked by now. */
  const settleLocal = () => {
    countLocal(false)
    local(earlyCount, true)
  }
  /** Given up unanswered, and waited for all the same (see the PUBLISH below). */
  let givenUp = false
  // Right after its count was taken, so that the requests on their way are in the order of their
  // counts (see `OwnAcks.passed`).
  parts.ownAcks.sent(id, q, (came) => {
    clearInterval(probeTimer)
    countLocal(came)
    if (!givenUp) return
    if (came) waitForCounts()
    else replies.stopWaiting()
  })
  const request: RequestPacket = {
    n: parts.node,
    id,
    k: 'ack',
    o: toWireOptions(options),
    e: message.prepared().text(0, 0),
    // JSON has no Infinity (it would be null, refused): any number past MAX_TIMER_MS means
    // "no timer" on the other side too.
    t: Math.min(timeout, Number.MAX_SAFE_INTEGER),
    q,
  }
  /** What is left of the caller's timeout now, rounded down: less left is safe. */
  const left = () => Math.max(0, timeout - (performance.now() - timerStarted))
  // What is left of the caller's timeout as it leaves, and when it runs out on Redis' clock, so
  // that a node holding its count gives it before this node stops waiting, however long the
  // request waits before Redis runs it (see sender-deadline.ts).
  if (timeout <= MAX_TIMER_MS) {
    const redisNow = parts.redisNow()
    request.l = Math.floor(left())
    if (redisNow !== undefined) {
      request.d = Math.floor(redisNow + left())
      const run = parts.redisRun()
      if (run !== undefined) request.r = run
    }
  }
  const { requestTimeout } = parts
  // Redis delivers at most once: a reply it lost (this node's subscriber was reconnecting, the
  // other node's PUBLISH failed) would be waited for until its node leaves, whatever the
  // caller's timeout. Every requestTimeout while a counted node owes replies, it is asked how
  // many it made; its answer comes after those replies, so any missing then was lost, and
  // fails at once. Nodes of an earlier version are not asked (their note says less than 2).
  const askOwing = () => {
    for (const node of replies.owing()) {
      if (parts.version(node) < ANSWERS_REPLIED) continue
      const ask: RepliedRequest = { n: parts.node, id, k: 'replied', to: node }
      parts.publisher.publish(parts.channel, ask)
    }
  }
  // A node counts its sockets as soon as the request reaches it. A live node whose count has not
  // come within requestTimeout of Redis taking the request never got it (its subscriber was
  // reconnecting) or its answer was lost: it counts as none, as a silent node does for a
  // cluster query, whatever the caller's timeout (without a timer it would be waited for as
  // long as it stays live).
  const countsLate = () => {
    if (replies.uncounted === 0 || !pending.has(id)) return
    uncounted(`${replies.uncounted} did not count its sockets within ${requestTimeout} ms`)
    replies.stopWaiting()
  }
  /** The nodes heard subscribing again before Redis took the request (see `askAgain`). */
  const heardEarly = new Set<string>()
  /**
   * Node `node` subscribed again (this node: its own subscriber did): each node whose count is
   * still awaited among them is asked again, alone (`to`), the others ignoring it. One that had
   * the request after all (it came right after its subscriber was back, or its count was what
   * got lost) asks no socket twice, and gives its count again (see asked-here.ts). Heard before
   * Redis took the request, it may have missed it all the same: asked again once Redis has. Not
   * while a node of an earlier version is live, which would ask its sockets a second time. Not
   * sent, it is not counted here: the count is late at its bound, as for a silent node.
   */
  const askAgain = (node: string) => {
    if (replies.expected || !pending.has(id)) return
    if (!taken) {
      heardEarly.add(node)
      return
    }
    const nodes = node === parts.node ? replies.awaited() : replies.awaits(node) ? [node] : []
    if (nodes.length === 0) return
    if (parts.others().some((other) => parts.version(other) < ASKS_ACKS_AGAIN)) return
    // `l` as left now; `d`, a time on Redis' clock, stays as it was.
    const again: RequestPacket = { ...request, ...(request.l !== undefined && { l: Math.floor(left()) }) }
    for (const to of nodes) parts.publisher.publish(parts.channel, { ...again, to })
  }
  /** Redis took the request (it answered the PUBLISH, or ran it late): the counts are due. */
  const waitForCounts = () => {
    if (!pending.has(id)) return
    taken = true
    for (const node of heardEarly) askAgain(node)
    heardEarly.clear()
    // The verdict waits one turn of the event loop (see `AnswersFirstTimer`): a count that
    // reached this node in time is read first, even when this node was held past the bound (a
    // long pause, a loaded machine).
    if (!replies.expected) countTimer = new AnswersFirstTimer(requestTimeout, countsLate)
    askTimer = setInterval(askOwing, requestTimeout)
    askTimer.unref()
  }
  parts.publisher.publish(
    parts.channel,
    request,
    (why, sent) => {
      parts.losses.lostBroadcast(why)
      if (sent && leftOut) {
        // Redis may still run it, after a claim marker too: the claimer then asks the session,
        // which the old node cannot take back, nor can a claimer joined at its marker tell that
        // it was asked (only one joined before filters by the tail's places). So the sockets
        // left out are not asked
        // now: it stays on its way (own-acks.ts), asked of them when it comes back, on the side
        // of the marker it comes back on, and the other nodes' counts awaited then; settled as
        // lost when a later own message comes back first, or at the caller's timeout.
        // Neither back nor lost in the cut's count, it is on its way to the sockets left out:
        // the settle before an unclaimed seal waits for it (`Cut.onItsWayTo`), and back in time
        // it is asked into the tail. The sockets being handed over wait for it as for a
        // broadcast given up (awaited.ts): proved never run, it is asked of them then, at its
        // turn, before the later own message that proved it, into the tail at their marker
        // (whose seal waits for it as for a broadcast); so it runs on every socket of this node,
        // as a broadcast with acks given up does, and misses only the other nodes.
        givenUp = true
        // Back already (the answer alone was slow): Redis ran it, and the counts are due. Or the
        // adapter closed, which settled the question (see `OwnAcks.close`): no probe may start
        // then, nothing would clear its timer.
        if (!parts.ownAcks.has(id)) {
          waitForCounts()
          return
        }
        parts.awaitQuestion(q, message, options, askAwaited)
        // Never run, it would be settled only by a later own message, and the caller without a
        // timer (`timeout(Infinity)`) would wait for one forever: the node sends itself one, and
        // again every requestTimeout while Redis takes no PUBLISH (a note it cannot send now).
        parts.probe()
        probeTimer = setInterval(parts.probe, requestTimeout)
        probeTimer.unref()
        return
      }
      // It will not come back here (never sent, or refused), or no socket waits for it: the
      // sockets being handed over are asked now, as for a broadcast given up (see
      // broadcasts.ts). Run late by Redis, it is not asked of them again here, nor by a
      // claimer joined early, by the places of the tails this node appends to.
      parts.readPlaces.skipped(parts.node, q)
      parts.ownAcks.forget(id)
      replies.stopWaiting()
      const ask: AskAwaited = (only) => {
        askAwaited(only)
        if (only !== undefined) return
        cut.lost(q)
        if (!uncut.empty) uncut.settled(q)
      }
      // Behind the own broadcasts given up before it that the sockets being handed over wait
      // for: asked of them once those reach them, not ahead (see awaited.ts). The sockets it is
      // asked of stay positioned, and owe it, until then.
      if (!parts.questionBehind(q, message, options, ask)) ask()
    },
    waitForCounts,
  )
}
