// A leaving client's goodbye (docs/protocol.md, Ending a session): over SSE and polling the
// CLOSE packet travels in a POST, and a client sends it only once its POST before is answered.
// Connections closed right after `disconnect()` cut that POST off, and the server then kept the
// session until its heartbeat gave up on it, seconds later: a `--quick` run could not take its
// kept server again, and a scenario's later readings counted sessions nobody held. So every
// client here waits for its goodbye's answer before its connections go, within GOODBYE_MS.
import type WebSocket from 'ws'
import type { OwnFetch } from './http-fetch.ts'

/**
 * How long a leaving client waits for the answers it is still owed, its goodbye's among them.
 * The server answers a CLOSE as soon as it has read it; this bounds a server that does not.
 */
export const GOODBYE_MS = 3000

/** Resolves once `p` settles, or after `ms`, whichever comes first; never rejects. */
export function settledWithin(p: Promise<unknown>, ms = GOODBYE_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  const settled = p.then(
    () => {},
    () => {},
  )
  return Promise.race([settled, limit]).finally(() => clearTimeout(timer))
}

/**
 * Closes a thin client's WebSocket with 1000 and resolves once the server answered the close
 * frame (it does so after reading what came before it, a goodbye included), within GOODBYE_MS;
 * one not open is cut at once.
 */
export function closeWebSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState !== ws.OPEN) {
    ws.terminate()
    return Promise.resolve()
  }
  const closed = new Promise((resolve) => ws.once('close', resolve))
  ws.close(1000)
  return settledWithin(closed)
}

/** The next turn of the event loop: what the promises settled so far lead to has run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A client's own fetch, and a close that first lets every answer still owed come. */
export interface ClosingFetch {
  fetch: typeof fetch
  /**
   * Waits until no request waits for its answer (those started meanwhile too: the goodbye
   * that waited for the POST before it), at most `GOODBYE_MS`, then closes the connections.
   */
  close(): Promise<void>
}

/**
 * `own` with its requests counted from the call until the answer's status (or the failure):
 * once a POST is answered, the server has used what it carried, so the connection may go.
 */
export function closingFetch(own: OwnFetch, limitMs = GOODBYE_MS): ClosingFetch {
  const owed = new Set<Promise<Response>>()
  const counted = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const answer = own.fetch(input, init)
    owed.add(answer)
    // Callbacks written in place, not a `const` of its own: run under tsx (poll-count), a closure
    // bound to a name is given that name as it is made (esbuild's keepNames), a property
    // definition per request that the load generator counted as the client's CPU.
    answer.then(
      () => owed.delete(answer),
      () => owed.delete(answer),
    )
    return answer
  }
  return {
    fetch: counted as typeof fetch,
    async close() {
      const end = performance.now() + limitMs
      // A turn first: a goodbye may be sent from a continuation of `disconnect()`; and one
      // after each wait, for the goodbye that goes once the POST before it was answered.
      for (let turn = 0; turn < 1000; turn++) {
        await nextTurn()
        const left = end - performance.now()
        if (owed.size === 0 || left <= 0) break
        await settledWithin(Promise.all(owed), left)
      }
      own.close()
    },
  }
}
