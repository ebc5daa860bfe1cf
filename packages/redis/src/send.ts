import type { RedisClient } from './options.js'

/** Sends a command; a client that throws instead of rejecting (closed, misused) rejects here too. */
export function send(client: RedisClient, args: string[]): Promise<unknown> {
  try {
    return client.sendCommand(args)
  } catch (err) {
    return Promise.reject(err)
  }
}

/** Error codes of this package, stable: a user's code may test them. */
export const RedisErrorCode = {
  /** Redis is not connected, or did not answer within the adapter's bound. */
  UNREACHABLE: 'PARLEY_REDIS_UNREACHABLE',
  /**
   * A reply of another node's socket to a broadcast with acks was made there, and Redis lost
   * it on its way here (pub/sub delivers at most once): the `error` of that socket's reply.
   */
  REPLY_LOST: 'PARLEY_REDIS_REPLY_LOST',
  /** Redis answered a command of the adapter with an error (a key of another type, a replica, out of memory). */
  REFUSED: 'PARLEY_REDIS_REFUSED',
  /** A listener of `onNodesChange` threw or rejected: the `code` of the warning that logs it. */
  LISTENER_FAILED: 'PARLEY_REDIS_LISTENER_FAILED',
  /**
   * A message on the adapter's channels that no node of this version sends (not JSON, a kind it
   * does not know, a field missing or of another type): dropped, and the `code` of the warning
   * that logs it, with its `channel`.
   */
  MALFORMED: 'PARLEY_REDIS_MALFORMED',
  /**
   * A message of another node, well formed, that failed in this node as it was handled (a throw
   * in what it called, the server's code or the adapter's own: a bug, most likely): dropped, and
   * the `code` of the warning that logs it, with its `err`; and of the warning of a
   * `fetchSockets` of another node's whose description of this node's sockets failed.
   */
  HANDLING_FAILED: 'PARLEY_REDIS_HANDLING_FAILED',
  /**
   * What the server gave a handed-off session after the adapter closed, which its tail can no
   * longer take: the `code` of the warning that says how many such appends one turn dropped.
   */
  APPEND_AFTER_CLOSE: 'PARLEY_REDIS_APPEND_AFTER_CLOSE',
  /**
   * A command the adapter lets wait for its turn (a session's owner record, a resume's claim) behind
   * `MAX_UNANSWERED_COMMANDS` unanswered ones found `MAX_QUEUED_COMMANDS` waiting already: not
   * sent. The `code` of a `RedisBusyError`, the `err` of the warning that says so.
   */
  BUSY: 'PARLEY_REDIS_BUSY',
} as const

/**
 * Redis could not be asked, or did not answer in time: what `sessionOwner` rejects with (the
 * server then treats the session as unknown), what `ready()` rejects with when the adapter has
 * not started within `requestTimeout` (its message names the Redis address), and the `err` of
 * the warning when the adapter gives up another command (see `Commands`). `code` is
 * `'PARLEY_REDIS_UNREACHABLE'`.
 */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError'
  readonly code = RedisErrorCode.UNREACHABLE

  /**
   * `options.at`: the Redis address (`redisAddress`, never its credentials), named in the
   * message: required, so that no message says "Redis" alone, which an operator cannot act on.
   */
  constructor(why: string, options: { cause?: unknown; at: string }) {
    super(
      `@parley/redis: Redis at ${options.at} is not reachable (${why})`,
      options.cause === undefined ? undefined : { cause: options.cause },
    )
  }
}

/**
 * Redis is connected and answering, but a burst on this node left `MAX_UNANSWERED_COMMANDS`
 * commands unanswered and `MAX_QUEUED_COMMANDS` waiting behind them (see
 * `Commands.sendInTurn`): one more is refused rather than held, so that memory stays bounded.
 * The `err` of the warning that gives up an owner record then, or tells a resume to try again.
 * `code` is `'PARLEY_REDIS_BUSY'`.
 */
export class RedisBusyError extends Error {
  override readonly name = 'RedisBusyError'
  readonly code = RedisErrorCode.BUSY

  constructor(unanswered: number, waiting: number, options: { command: string; at: string }) {
    super(
      `@parley/redis: Redis at ${options.at} has ${unanswered} command(s) of this node unanswered and ${waiting} waiting behind them, the most that wait (MAX_QUEUED_COMMANDS): ${options.command.toUpperCase()} not sent`,
    )
  }
}

/**
 * Redis answered a command of the adapter with an error instead of a result: what `sessionOwner`
 * rejects with then, and the `err` of the warning when another command is refused. The message
 * names the Redis address, the command and the key it was about, what Redis said, and what to
 * check; `cause` is node-redis' own error. `code` is `'PARLEY_REDIS_REFUSED'`.
 */
export class RedisRefusedError extends Error {
  override readonly name = 'RedisRefusedError'
  readonly code = RedisErrorCode.REFUSED

  constructor(args: readonly string[], cause: unknown, at: string) {
    const said = cause instanceof Error ? cause.message : String(cause)
    super(`@parley/redis: Redis at ${at} refused ${described(args)}: ${said}; ${remedy(said)}`, { cause })
  }
}

/** A command as a warning names it: its name, and the key it is about (a script's first key). */
function described(args: readonly string[]): string {
  const [name = '', first, numKeys, key] = args
  const command = name.toUpperCase()
  if (command === 'EVAL' || command === 'EVALSHA')
    return numKeys !== undefined && Number(numKeys) > 0 && key !== undefined
      ? `a script (${command}) on ${key}`
      : `a script (${command})`
  if (command === 'PUBLISH') return `PUBLISH to ${first}`
  return first === undefined ? command : `${command} on ${first}`
}

/** What an operator checks for Redis' error `said`. */
function remedy(said: string): string {
  if (said.startsWith('WRONGTYPE'))
    return "a key under the adapter's prefix holds a value of another type: another application uses the prefix, give each its own `prefix` (or delete that key if nothing needs it)"
  return 'check that the client reaches a primary that accepts writes and scripts (not a replica, not loading its data, not out of memory, no ACL that forbids the command)'
}

/**
 * A bulk string reply as text. A client made with a type mapping may hand bulk strings over
 * as Buffers: the adapter reads them the same.
 */
export function asText(reply: unknown): string | undefined {
  if (typeof reply === 'string') return reply
  if (reply instanceof Uint8Array)
    return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString()
  return undefined
}

/**
 * `promise`'s value, or `fallback` once `ms` passed (the command itself may still run: a caller
 * that must not leave its effect behind undoes it). A rejection becomes `fallback` too.
 */
export function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      () => {
        clearTimeout(timer)
        resolve(fallback)
      },
    )
  })
}

/** A promise and the call that resolves it (Node 20 has no `Promise.withResolvers`). */
export function settleable(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/**
 * The `code` of what a command failed with (one of this file's errors, or a client's own coded
 * error), for the warning that gives it up: an operator tells a burst (`PARLEY_REDIS_BUSY`) from
 * a Redis away or slow (`PARLEY_REDIS_UNREACHABLE`) or refusing (`PARLEY_REDIS_REFUSED`).
 */
export function codeOf(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object' || !('code' in err)) return undefined
  return typeof err.code === 'string' ? err.code : undefined
}
