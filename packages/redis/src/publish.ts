// Every PUBLISH of the adapter (broadcasts, requests, answers, claim markers) goes through here,
// so that each says in one way why it did not reach the other nodes, and none waits in the
// client's offline queue to arrive late.
import type { Commands } from './commands.js'
import { codeOf, RedisBusyError, RedisErrorCode, RedisUnreachableError } from './send.js'
import type { Warnings } from './warnings.js'

/**
 * Why a PUBLISH did not go, whether Redis may still run it (sent, no answer came), and the code
 * of the failure: `PARLEY_REDIS_UNREACHABLE` (away, or no answer), `PARLEY_REDIS_BUSY` (a
 * `publishInTurn` refused behind a burst), else what Redis refused it with
 * (`PARLEY_REDIS_REFUSED`). `cause`: the error the command failed with, when one did (none when
 * it was not sent because Redis could not be asked).
 */
export type PublishFailed = (why: string, sent: boolean, code: string, cause?: unknown) => void

/** PUBLISHes on the application's client, within the bounds of `Commands`. */
export class Publisher {
  readonly #commands: Commands
  readonly #requestTimeout: number
  readonly #warnings: Warnings

  constructor(commands: Commands, requestTimeout: number, warnings: Warnings) {
    this.#commands = commands
    this.#requestTimeout = requestTimeout
    this.#warnings = warnings
  }

  /**
   * PUBLISHes `packet`. `failed` runs at most once, with why, when it cannot go or is given up
   * (see `Commands`): Redis is away, refuses it, has left commands unanswered for
   * `requestTimeout` (or `MAX_UNANSWERED_COMMANDS` of them), or does not answer this one within
   * `requestTimeout`; at once, before this returns, when it is not sent at all. `sent` tells
   * whether Redis may still run it (sent, and no answer came). `answered` runs when Redis took it.
   */
  publish(channel: string, packet: object, failed?: PublishFailed, answered?: () => void): void {
    // While Redis is away, a PUBLISH would wait in the client's offline queue and arrive late
    // (and subscribers may have missed it anyway); while it does not answer, the connection
    // would hold every PUBLISH and deliver them all in a burst once it answers again. Either
    // way it is lost, and counted as such, now.
    const unavailable = this.#commands.unavailable()
    if (unavailable !== undefined) {
      failed?.(
        `Redis at ${this.#commands.address} is not reachable (${unavailable})`,
        false,
        RedisErrorCode.UNREACHABLE,
      )
      return
    }
    this.#told(this.#commands.send(['PUBLISH', channel, JSON.stringify(packet)]), channel, failed, answered)
  }

  /**
   * As `publish`, for a PUBLISH that must not be refused only because a burst fills this node's
   * connection (a claim's marker: refused, the claim is given back): it takes its turn (see
   * `Commands.sendInTurn`), in order behind the commands queued before it. `failed` runs, never
   * before this returns, with `sent` false when it never went on the connection (Redis away or
   * not answering, `MAX_QUEUED_COMMANDS` waiting already).
   */
  publishInTurn(channel: string, packet: object, failed?: PublishFailed, answered?: () => void): void {
    this.#told(
      this.#commands.sendInTurn(['PUBLISH', channel, JSON.stringify(packet)]),
      channel,
      failed,
      answered,
    )
  }

  /**
   * Tells `failed` or `answered` how the PUBLISH `sending` went. One `publish` refuses before it
   * sends was told already (`unavailable`); one `publishInTurn` refused while it waited its turn
   * never went on the connection (see `Commands.neverSent`): not sent.
   */
  #told(sending: Promise<unknown>, channel: string, failed?: PublishFailed, answered?: () => void): void {
    sending.then(
      () => answered?.(),
      (err: unknown) => {
        if (this.#commands.neverSent(err)) {
          failed?.(
            refusal(err, this.#commands.address),
            false,
            codeOf(err) ?? RedisErrorCode.UNREACHABLE,
            err,
          )
          return
        }
        if (err instanceof RedisUnreachableError) {
          failed?.(
            `Redis at ${this.#commands.address} did not answer the PUBLISH within ${this.#requestTimeout} ms`,
            true,
            RedisErrorCode.UNREACHABLE,
            err,
          )
          return
        }
        this.#warnings.warn('publish', 'PUBLISH failed', { err, channel })
        failed?.('Redis refused the PUBLISH', false, codeOf(err) ?? RedisErrorCode.REFUSED, err)
      },
    )
  }
}

/** What the package's errors and warnings begin with: the warning that gives `why` adds its own. */
const PREFIX = '@parley/redis: '

/**
 * Why a PUBLISH refused before it went on the connection did not go. The refusals of `Commands`
 * (Redis away or slow, a burst's queue full) say it whole already, the Redis address with it:
 * their message, less the package's prefix, so that the reason says it once. Anything else is
 * said as Redis not reachable, with its own words in brackets.
 */
function refusal(err: unknown, at: string): string {
  if (err instanceof RedisUnreachableError || err instanceof RedisBusyError)
    return err.message.startsWith(PREFIX) ? err.message.slice(PREFIX.length) : err.message
  const why = err instanceof Error ? err.message : String(err)
  return `Redis at ${at} is not reachable (${why})`
}
