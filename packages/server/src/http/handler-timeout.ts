import type { FastifyReply } from 'fastify'

/** Replies taken from Fastify when its handlerTimeout ran out during a wait on another node. */
const taken = new WeakSet<FastifyReply>()

/**
 * Waits for `wait`, a wait on another node's behalf (the owner's lookup in the adapter, then the
 * owner's answer to a request forwarded there), which the application's Fastify `handlerTimeout`
 * must not cut: it bounds this node's own work, and the owner counts its own. Should it run out
 * meanwhile, the reply is taken from Fastify (hijacked, which Fastify then leaves alone) and
 * the request goes on, answered on the raw response: by the owner, or by `answer` (answer.ts).
 * The waits are bounded all the same: the lookup by the forwarder, a held request by its owner.
 * Without a handlerTimeout (Fastify's default), nothing to do.
 *
 * Fastify counts until the handler answers or hijacks the reply, or until the request's body has
 * been read (Node's request closes then, and Fastify clears its timer, aborting the signal with
 * no timeout). So this matters where the body is not read yet: the owner lookup of a GET (an SSE
 * stream, a poll) and of an upstream POST (looked up before its body, which may still be on its
 * way, or never be read: one past maxPayload), and the owner's answer to a GET (a stream or a
 * held poll, for as long as the owner holds it) or to a POST past maxPayload. Not for a
 * handshake POST, whose HELLO (in its body) names the session it resumes, and not for a
 * WebSocket's HELLO, whose upgrade @fastify/websocket took from Fastify: their lookups need no
 * wrapping (slow-owner-lookups.test.ts holds each case to this).
 *
 * Taking the reply is what costs the application's `onSend` hooks on its answer (answer.ts).
 * The other ways do not work: a route cannot opt out of the server's handlerTimeout (Fastify
 * takes only another positive value per route), and letting the timeout reach the route's error
 * handler, to answer once the wait ends, would first run the application's `onError` hooks with
 * a timeout, for requests the owner then answers.
 */
export async function outlastHandlerTimeout<T>(reply: FastifyReply, wait: Promise<T>): Promise<T> {
  if (!(reply.request.routeOptions.handlerTimeout > 0) || reply.sent) return wait
  const signal = reply.request.signal
  if (signal.aborted) return wait
  const take = () => {
    if (!timedOut(reply) || reply.sent) return
    taken.add(reply)
    reply.hijack()
  }
  // Fastify calls the signal's listeners before it answers, and leaves a hijacked reply alone.
  signal.addEventListener('abort', take)
  try {
    return await wait
  } finally {
    signal.removeEventListener('abort', take)
  }
}

/**
 * True when Fastify's handlerTimeout ran out while this node still worked on the request (a
 * POST's body still coming): Fastify answers it (or did), not Parley.
 */
export function answeredByFastify(reply: FastifyReply): boolean {
  return timedOut(reply) && !taken.has(reply)
}

/** Fastify's handlerTimeout ran out for this request (its signal aborted with that error). */
function timedOut(reply: FastifyReply): boolean {
  if (!(reply.request.routeOptions.handlerTimeout > 0)) return false
  const signal = reply.request.signal
  return (
    signal.aborted && (signal.reason as { code?: unknown } | undefined)?.code === 'FST_ERR_HANDLER_TIMEOUT'
  )
}
