import type { FastifyInstance } from 'fastify'

/**
 * How the boot under way of the Fastify instance that `context` belongs to ends: resolves once
 * every onReady hook of every context has run (its `ready()` resolved), rejects with what failed
 * it. For an onReady hook of `context`'s, which must not wait for it: that boot waits for the
 * hook.
 *
 * Fastify runs the onReady hooks of the root context first, then those of each context
 * registered in it, in turn, each with those of its own: a hook that runs after Parley's (of a
 * plugin registered after it) may still fail the boot, so Parley's own hook is no sign that it
 * succeeded. The root context's `ready()`, called while its hooks run, starts nothing: it hands
 * back the promise of the boot under way (Fastify keeps one from the first `ready()`, `listen()`
 * or `inject()` until the boot has settled; a failed one for good). An encapsulated context's own
 * `ready()` is avvio's, which waits in the queue of the hooks queued so far: those of the
 * contexts registered after this one are queued only once its own have run, so it would settle
 * before they run.
 *
 * That is Fastify's inside, read here: should the root found not hand back a promise (a Fastify
 * that makes its contexts otherwise), this resolves at once, never throws, and the boot is taken
 * as done at the hook, as before Parley waited for the whole of it. Thrown from the hook, that
 * would fail every boot of the application for a reading of Parley's.
 */
export function bootOutcome(context: FastifyInstance): PromiseLike<unknown> {
  try {
    const root: { ready?: unknown } = rootOf(context)
    const outcome: unknown = typeof root.ready === 'function' ? root.ready() : undefined
    if (isPromiseLike(outcome)) return outcome
  } catch {
    // As for no promise: below.
  }
  return Promise.resolve(undefined)
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}

/**
 * The root context of `context`'s Fastify instance: Fastify makes each encapsulated context with
 * `Object.create(parent)`, and the root is a plain object.
 */
export function rootOf(context: FastifyInstance): FastifyInstance {
  let root = context
  for (;;) {
    const parent: unknown = Object.getPrototypeOf(root)
    if (parent === null || parent === Object.prototype) return root
    root = parent as FastifyInstance
  }
}
