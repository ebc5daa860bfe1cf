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

/**
 * Calls `failed` with what failed the boot of the Fastify instance that `context` belongs to, if
 * it fails: also where it fails before any onReady hook runs (a plugin registered after
 * Parley's throws), of which Fastify tells its plugins nothing. Fastify closes nothing of such an
 * instance, and an application that does not close it would keep what Parley opened (the
 * adapter's connections and timers) for good. Nothing when the boot succeeds.
 *
 * Fastify's inside again, read without a side effect: a boot under way now (Parley registered
 * while the instance loads its plugins, at a `ready()`, `listen()` or `inject()`) is read from
 * the instance's state, and its outcome is its root's `ready()`; else the boot begins later, at
 * the first call of the root's `ready` (which `listen()` and `inject()` make too): the root's
 * `ready` is wrapped until then, and put back at that call. Where neither can be read (a Fastify
 * made otherwise), `failed` is never called: a failed boot keeps what it kept before, until the
 * instance's close.
 */
export function whenBootFails(context: FastifyInstance, failed: (err: unknown) => void): void {
  try {
    const root = rootOf(context)
    if (bootUnderWay(root)) {
      bootOutcome(root).then(undefined, failed)
      return
    }
    const ready: unknown = root.ready
    if (typeof ready !== 'function' || !Object.hasOwn(root, 'ready')) return
    const watching = function (this: unknown, ...args: unknown[]): unknown {
      // Put back first: the call below begins the boot, and the outcome's `ready()` reads it.
      if (root.ready === watching) root.ready = ready as FastifyInstance['ready']
      const result: unknown = ready.apply(this, args)
      bootOutcome(root).then(undefined, failed)
      return result
    }
    root.ready = watching as FastifyInstance['ready']
  } catch {
    // Read otherwise: as where nothing can be read, above.
  }
}

/**
 * The state Fastify keeps on its root instance, under a symbol of its own: the boot's promise
 * from its first `ready()`, `readyResolver` (its resolvers, cleared once the boot succeeded) in
 * later releases of Fastify 5, `readyPromise` (kept) in the first ones.
 */
type FastifyState = { readyResolver?: unknown; readyPromise?: unknown }

/**
 * True when the root's boot has begun: its `ready()` then begins nothing. Read while Parley
 * registers, which no boot that is over lets happen.
 */
function bootUnderWay(root: FastifyInstance): boolean {
  const key = Object.getOwnPropertySymbols(root).find((symbol) => symbol.description === 'fastify.state')
  if (key === undefined) return false
  const state = (root as unknown as Record<symbol, FastifyState | undefined>)[key]
  return (state?.readyResolver ?? state?.readyPromise ?? null) !== null
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
