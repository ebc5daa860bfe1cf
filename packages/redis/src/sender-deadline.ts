// When a node gives its count for another node's broadcast with acks, at the latest, when that
// count is held here (a takeover's tail unread, a socket joined without a cut, one past its claim
// marker). The sender's timer starts at its emit; the question reaches this node a Redis hop
// later, and its count needs another hop back. Bounded by `t` from its arrival, a held count
// would be given after the sender stopped waiting, which then counts this node as none and
// drops the replies its sockets made in time.
//
// No wall clock crosses nodes: clocks of different machines may differ by more than the whole
// timeout. The sender sends what is left of its timeout when it PUBLISHes (`l`, measured on its
// own monotonic clock from its timer's start); this node subtracts the two hops it can estimate
// on its own monotonic clock: its last heartbeat's round trip to Redis, once for the question's
// way here (the sender's half and this node's half, taken as alike) and once for the count's
// way back, and `SLACK_MS` for the timers and the event-loop turns of both ends. A slow beat
// overestimates the hops: the floor keeps the count held at least half of what was left, so that
// one bad measure never gives a count (nearly) at once, while the sockets it waits for could
// still be counted. Never later than today: the bound never passes `t` from the arrival, nor `l`.

import { MAX_TIMER_MS } from '@parley/protocol'

/** Time kept for the timers and event-loop turns of both nodes, past the two Redis hops. */
export const SLACK_MS = 50

/**
 * How long after its arrival this node gives a count it holds for another node's question, or
 * undefined when that is `t` (as today: the question carries no `l`, from a node of an earlier
 * version, or no timer bounds it). `roundTrip`: this node's last measured Redis round trip, if
 * any.
 */
export function answerWithin(
  t: number,
  left: number | undefined,
  roundTrip: number | undefined,
): number | undefined {
  // Past MAX_TIMER_MS no timer bounds the question, here or at its sender.
  if (left === undefined || t > MAX_TIMER_MS) return undefined
  const remaining = Math.min(left, t)
  const margin = 2 * (roundTrip ?? 0) + SLACK_MS
  const within = Math.max(remaining - margin, remaining / 2)
  return within < t ? Math.floor(within) : undefined
}
