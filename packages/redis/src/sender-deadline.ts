// When a node gives its count for another node's broadcast with acks, at the latest, when that
// count is held here (a takeover's tail unread, a socket joined without a cut, one past its claim
// marker). The sender's timer starts at its emit; the question reaches this node a Redis hop
// later, and its count needs another hop back. Bounded by `t` from its arrival, a held count
// would be given after the sender stopped waiting, which then counts this node as none and
// drops the replies its sockets made in time.
//
// No machine's clock crosses nodes: clocks of different machines may differ by more than the
// whole timeout. Redis' clock does: every node reads it at each heartbeat (its TIME, see
// `Nodes.redisNow`), so the sender says on it when it stops waiting (`d`), and this node reads
// what is left of that at the question's arrival, whatever held the question on its way: the
// sender's own queue to Redis (commands ahead of it that Redis was slow to run, a PUBLISH given
// up and run late), Redis, this node's subscriber. The sender also sends what was left of its
// timeout when it PUBLISHed (`l`, on its own monotonic clock), which a node of an earlier version
// reads alone: it cannot know how long the question waited before Redis ran it. Both bounds are
// taken, the sooner wins. From each, this node subtracts what it cannot measure on its own
// monotonic clock: its last heartbeat's round trip to Redis twice (for `l`, the question's way
// here and the count's way back; for `d`, the count's way back and the two nodes' readings of
// Redis' clock, each off by up to half a round trip, the sender's taken as alike), and a slack
// for the timers and the event-loop turns of both ends (`slackFor`). That slack is a share of
// what was left, not a fixed few ms: a loaded node's event loop lags 100 to 200 ms (a major GC as
// much, timers tens of ms on top), and a count that reaches its sender after it stopped waiting
// costs every reply this node's sockets made in time (the sender counts the node as none), where
// a count given that much earlier costs only the held sockets whose hold outlasts it. A fifth of
// what was left, at least `SLACK_MS` (a short timeout keeps its room for the hops), at most
// `SLACK_MAX_MS` (a long one does not give up on its held sockets seconds early).
// A slow beat overestimates the hops: a floor keeps the count held at least half of what was
// left, so that one bad measure never gives a count (nearly) at once while the sockets it waits
// for could still be counted.
// The same floor holds for `d`: two nodes read Redis' clock at their own beats, and after a
// failover to a Redis on another machine, until both beat again, they read two clocks whose
// offset nothing here measures. `d` may then say the sender is done waiting when it is not, and
// a count given at once would drop the replies still coming in time. So each node's beat also
// reads which server it ran on (its run_id), and the sender names it beside `d` (`r`): a node
// that read another server ignores `d` (the floor stays for a reading it cannot tell apart: no
// INFO under an ACL, a node of an earlier version). The cost: a question that truly waited more
// than about half its timeout in its sender's queue has its count given after its sender
// stopped waiting (counted as none) rather than at once with what is in then.
// Never later than before: the bound never passes `t` from the arrival, nor `l`.

import { MAX_TIMER_MS } from '@parley/protocol'

/** The least time kept for both nodes' timers and event-loop turns, past the two Redis hops. */
export const SLACK_MS = 50

/** What was left, divided by this (a fifth), is kept for them, within `SLACK_MS`..`SLACK_MAX_MS`. */
export const SLACK_DIVISOR = 5

/** The most kept for them: a lag past it is rare, and held sockets are not given up on sooner. */
export const SLACK_MAX_MS = 500

/** The time kept for timers and event-loop lag out of `remaining`, what was left of the wait. */
export function slackFor(remaining: number): number {
  return Math.min(Math.max(remaining / SLACK_DIVISOR, SLACK_MS), SLACK_MAX_MS)
}

/**
 * How long after its arrival this node gives a count it holds for another node's question, or
 * undefined when that is `t` (as before: the question carries no `l`, from a node of an earlier
 * version, or no timer bounds it). `roundTrip`: this node's last measured Redis round trip, if
 * any. `leftByRedis`: what is left at the arrival of the sender's wait by Redis' clock (the
 * question's `d` less `Nodes.redisNow()`), when both are known.
 */
export function answerWithin(
  t: number,
  left: number | undefined,
  roundTrip: number | undefined,
  leftByRedis?: number,
): number | undefined {
  // Past MAX_TIMER_MS no timer bounds the question, here or at its sender.
  if (left === undefined || t > MAX_TIMER_MS) return undefined
  const remaining = Math.min(left, t)
  const margin = 2 * (roundTrip ?? 0) + slackFor(remaining)
  // Half of what the sender said was left, for both bounds: `d` is sooner, never by more.
  const floor = remaining / 2
  let within = Math.max(remaining - margin, floor)
  if (leftByRedis !== undefined && Number.isFinite(leftByRedis)) {
    const byRedis = Math.min(leftByRedis, remaining)
    within = Math.min(within, Math.max(byRedis - margin, floor))
  }
  return within < t ? Math.floor(within) : undefined
}
