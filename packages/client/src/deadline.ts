/**
 * A bound on a wait for the server's answer (an upgrade, an OPEN, a stream's first bytes, a
 * POST's answer) or for a sign of life (the heartbeat, whose verdict reads when it last heard
 * from the server): once `ms` passed, `verdict` runs one turn of the event loop later, unless
 * stopped by then. After a stall (a tab frozen and resumed, a laptop waking, a long synchronous
 * task), expired timers run before the input that came meanwhile is read: an answer already
 * waiting in the socket lost to its own timeout, and a working transport was failed (a WebSocket
 * stepped down to SSE or polling). The turn lets that input in first, and the answer, which stops
 * the bound, wins. In Node, `setImmediate` runs in the check phase, right after the poll phase
 * that reads sockets (timers, then poll, then check); in browsers a new timer task comes after the
 * network tasks already queued. A wait with no answer still ends, a turn (well under a
 * millisecond) later. Returns the stop, which also stops a verdict put off that way: the answer
 * came in that turn.
 */
export function deadline(verdict: () => void, ms: number): () => void {
  let on = true
  const timer = setTimeout(
    () =>
      ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE
        ? setTimeout
        : ((globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate ?? setTimeout))(() => {
        if (on) verdict()
      }),
    ms,
  )
  return () => {
    on = false
    clearTimeout(timer)
  }
}
