// How far the adapter's start went, and the `ready()` calls that wait for its end: apart from
// the start itself (the adapter's), so that what a caller is told, and when, reads in one place.
import { RedisUnreachableError } from './send.js'

/** The step the start is at: what a `ready()` given up names. */
export type StartStep = 'connect' | 'subscribe' | 'heartbeat' | 'done'

/** How the start ended: subscribed and beaten (ok), or failed. */
export type StartOutcome = { ok: true } | { ok: false; err: unknown }

/** A `ready()` call that waits. */
interface ReadyWait {
  /** The adapter closed first. */
  closed(): void
  /** The start ended. */
  started(outcome: StartOutcome): void
}

/** The start's progress and the `ready()` calls waiting on it (see `RedisAdapter.ready`). */
export class Readiness {
  /** How far the start went. */
  step: StartStep = 'connect'
  /** The subscriber's last connection error: the `cause` of a `ready()` given up. */
  subscriberError: Error | undefined
  readonly #address: string
  readonly #bound: number
  readonly #closed: () => boolean
  /**
   * The calls still waiting: the end of the start (`started`) or the close (`closed`) settles
   * them. Each waits here, not on the start's promise: a start that never ends would keep every
   * call that ever waited on it.
   */
  readonly #waits = new Set<ReadyWait>()
  /** How the start ended, once it did. */
  #outcome: StartOutcome | undefined

  /** `address` is Redis's, as told; `bound` the longest a call waits (`requestTimeout`). */
  constructor(address: string, bound: number, closed: () => boolean) {
    this.#address = address
    this.#bound = bound
    this.#closed = closed
  }

  /** What `RedisAdapter.ready()` returns. */
  wait(): Promise<void> {
    const bound = this.#bound
    if (this.#closed()) {
      return this.step === 'done'
        ? Promise.resolve()
        : Promise.reject(this.#notReady('the adapter was closed before it was ready'))
    }
    return new Promise((resolve, reject) => {
      const settle = (err?: RedisUnreachableError) => {
        clearTimeout(timer)
        this.#waits.delete(wait)
        if (err) reject(err)
        else resolve()
      }
      const wait: ReadyWait = {
        closed: () => settle(this.#notReady('the adapter was closed before it was ready')),
        started: (outcome) => {
          if (outcome.ok) {
            settle(
              this.step === 'done' ? undefined : this.#notReady('the adapter was closed before it was ready'),
            )
            return
          }
          settle(
            this.#closed()
              ? this.#notReady('the adapter was closed before it was ready', outcome.err)
              : new RedisUnreachableError(
                  'could not subscribe; other nodes are out of reach until the adapter is made again',
                  { cause: outcome.err, at: this.#address },
                ),
          )
        },
      }
      const timer = setTimeout(() => settle(this.#notReady(`not ready within ${bound} ms`)), bound)
      this.#waits.add(wait)
      // Started already: told on the next turn, as a reaction on the start's promise would be.
      const outcome = this.#outcome
      if (outcome) queueMicrotask(() => wait.started(outcome))
    })
  }

  /** The start ended: every call still waiting is told how. */
  started(outcome: StartOutcome): void {
    this.#outcome = outcome
    for (const wait of [...this.#waits]) wait.started(outcome)
  }

  /** The adapter closes: every call still waiting is told it was not ready. */
  closed(): void {
    for (const wait of [...this.#waits]) wait.closed()
  }

  #notReady(what: string, cause: unknown = this.subscriberError): RedisUnreachableError {
    // The message names the address once, before the parentheses (see `RedisUnreachableError`).
    const login = this.step === 'connect' ? loginRefused(cause) : undefined
    const step =
      login !== undefined
        ? `no connection yet: Redis answered, and refused this client's login (${login}): check the user name and password of the client's URL, and the user's ACL`
        : this.step === 'connect'
          ? 'no connection yet'
          : this.step === 'subscribe'
            ? 'connected, not subscribed yet'
            : 'subscribed, and no heartbeat went through yet'
    const keeps = this.#closed()
      ? ''
      : login !== undefined
        ? '; it keeps trying, and works once Redis accepts the login'
        : '; it keeps trying, and works once Redis answers'
    return new RedisUnreachableError(`${what}: ${step}${keeps}`, { cause, at: this.#address })
  }
}

/**
 * Redis' own answer when it refused the connection's login (a password missing or wrong, a user
 * disabled), from the subscriber's last connection error: undefined for any other error. Such
 * a Redis is reachable, and no wait mends it: the message must not send the operator looking
 * for a Redis that is down.
 */
function loginRefused(cause: unknown): string | undefined {
  if (!(cause instanceof Error)) return undefined
  return /^(NOAUTH|WRONGPASS)\b/.test(cause.message) ? cause.message : undefined
}
