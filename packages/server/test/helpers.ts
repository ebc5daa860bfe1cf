import parley, { type ParleyServer, type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'

export interface Started {
  app: FastifyInstance
  /** http://127.0.0.1:PORT/parley */
  base: string
}

/** A Fastify app with Parley, listening on 127.0.0.1 and `port` (a free one by default). */
export async function startServer(
  options: ParleyServerOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>,
  fastify: FastifyServerOptions = {},
  port = 0,
): Promise<Started> {
  // Tests drop client connections on purpose: close everything at app.close(), requests a test
  // abandoned mid-way included (the plugin itself only ends unused and idle connections).
  const app = Fastify({ forceCloseConnections: true, ...fastify })
  await app.register(parley, options)
  await setup?.(app)
  await app.listen({ port, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  return { app, base: `http://127.0.0.1:${address.port}${options.path ?? '/parley'}` }
}

/** What `closeApp` needs of a Fastify instance, over HTTP/1.1 or HTTP/2. */
/**
 * Registers Parley with `options` on a fresh Fastify (`fastify`: its own options), then closes
 * it: the error the registration failed with, undefined when it did not.
 */
export async function registrationError(
  options: unknown,
  fastify: FastifyServerOptions = {},
): Promise<unknown> {
  const app = Fastify(fastify)
  try {
    await app.register(parley, options as ParleyServerOptions)
    await app.ready()
    return undefined
  } catch (err) {
    return err
  } finally {
    await app.close()
  }
}

export interface ClosableApp {
  parley?: ParleyServer
  close(): Promise<unknown>
}

/**
 * Closes `app` once its test is over, ending its sessions first. At close, a session still alive
 * ends with a CLOSE that the server keeps, for a polling or SSE client, for the GET it expects
 * from that client next, and the close waits up to 1 s for that GET (`nextGetWithin`): a GET that
 * a test's client, closed a moment before, never sends. A test of what a closing server does
 * calls `app.close()` itself. Nothing for an app that is closed already or has no Parley.
 */
export async function closeApp(app: ClosableApp | undefined): Promise<void> {
  if (!app) return
  const sockets = app.parley?.sockets
  for (const socket of [...(sockets?.values() ?? [])]) socket.disconnect()
  await app.close()
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Waits until `check` is true, polling every 5 ms, at most `timeoutMs` of the monotonic clock
 * (`performance.now()`): a test that steps the wall clock meanwhile neither ends the wait at once
 * nor stretches it.
 */
export async function until(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/**
 * `promise`'s value; rejects with an error naming `what` when it has not settled after
 * `timeoutMs`. Bound a wait by something shorter than the test's own timeout with it, so that a
 * wait that never ends fails by saying what it waited for, not by the timeout of the whole test.
 */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${timeoutMs} ms for ${what}`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
