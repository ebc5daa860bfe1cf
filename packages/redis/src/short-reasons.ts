// Why a request across nodes (a cluster query, a broadcast with acks) ended short of some nodes'
// part, as its warning says it: one wording for both, so that an operator searching the logs
// for a node that lapsed finds either.

/**
 * `why` the request ends short (its bound passed, its PUBLISH given up), if it does, then the
 * nodes in `lapsed`, which dropped out of the live set without a goodbye before `before` (what
 * the request waited for them to do), joined with `; `.
 */
export function shortReasons(
  why: string | undefined,
  lapsed: readonly string[],
  before: 'answering' | 'counting their sockets',
): string {
  const reasons = why === undefined ? [] : [why]
  if (lapsed.length > 0)
    reasons.push(
      `${lapsed.length} dropped out of the live set before ${before}, their heartbeat record lapsed without a goodbye: ${lapsed.join(', ')}`,
    )
  return reasons.join('; ')
}
