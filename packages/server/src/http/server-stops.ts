import { Server as NetServer } from 'node:net'

/** How often a close waiting on the hooks ahead of Parley's looks at the server. */
const LOOK_EVERY_MS = 50

/**
 * Calls `stopped` once the HTTP server stops listening, looked at every 50 ms until the returned
 * function is called (Parley's preClose hook has begun: the close reached it) or `stopped` ran.
 *
 * From the first moment of `app.close()` Parley serves its endpoints itself (see `atCloseStart`):
 * a live session's GET is served as on the route, a held poll or an event stream that ends only
 * with the session. Where a preClose hook ahead of Parley's throws or outlasts `pluginTimeout`,
 * Fastify skips the hooks after it, Parley's among them, and closes the HTTP server at once, which
 * waits for every response under way, those included: Parley's onClose hook, where the sessions
 * end, would run only once they had ended by themselves (a held poll at the next heartbeat, an
 * event stream never). Node says nothing when `close()` is called (its 'close' event comes once
 * every connection has ended), but the server stops listening at that call: that is looked for.
 * Nothing is watched on a server that does not listen (a `serverFactory`'s, which Fastify does not
 * close), or that is no Node server.
 */
export function whenServerStops(server: unknown, stopped: () => void): () => void {
  if (!(server instanceof NetServer) || !server.listening) return () => {}
  const timer = setInterval(() => {
    if (server.listening) return
    clearInterval(timer)
    stopped()
  }, LOOK_EVERY_MS)
  // Not what keeps the process alive: the close that waits on the hooks does.
  timer.unref()
  return () => clearInterval(timer)
}
