import type { EndedSession } from '@parley/server'
import type { Commands } from './commands.js'
import { asText } from './send.js'
import { sidHash } from './sessions.js'
import type { Warnings } from './warnings.js'
import { packEnded, parseEnded } from './wire.js'

/**
 * The longest CLOSE message kept for an ended session, in characters: a longer one (an
 * application's own words) is cut, so that each record stays small whatever the application
 * says. The reason, `retryAfter` and the ACK, what the client acts on, are kept whole.
 */
export const MAX_ENDED_MESSAGE = 512

/**
 * How sessions ended, where every node finds it: `<prefix>:ended:<sha256(sid)>` holds one
 * session's CLOSE and last ACK (see `packEnded`), written as the session ends, with the TTL of
 * the ending node's own table (PX), so that a resume reaching any node gets the answer it
 * would have got on that one for as long, and no longer. Bounded in time by that TTL and in
 * size by `MAX_ENDED_MESSAGE`; one key per session that ended within it.
 *
 * Neither the write nor the read waits on an absent Redis: while Redis is away or has left a
 * command unanswered for `requestTimeout`, neither is sent (see `Commands`); the write is not
 * made again (the record would come late, and the node that ended the session still answers
 * a resume that reaches it), and a failed read resolves as nothing known, with a warning: the
 * resume gets a new session, as it did before the records were shared.
 */
export class EndedRecords {
  constructor(
    private readonly commands: Commands,
    private readonly prefix: string,
    private readonly warnings: Warnings,
  ) {}

  key(sid: string): string {
    return `${this.prefix}:ended:${sidHash(sid)}`
  }

  /** Keeps how `sid` ended for `ttl` ms. Never throws nor rejects. */
  write(sid: string, ending: EndedSession, ttl: number): void {
    const ms = Math.floor(ttl)
    if (!(ms > 0)) return
    const { close } = ending
    const cut =
      close.message.length > MAX_ENDED_MESSAGE
        ? { ...close, message: close.message.slice(0, MAX_ENDED_MESSAGE) }
        : close
    let text: string
    try {
      text = packEnded({ close: cut, ack: ending.ack })
    } catch (err) {
      this.warnings.warn('ended-record', 'could not encode how a session ended', { err })
      return
    }
    this.commands.send(['SET', this.key(sid), text, 'PX', String(ms)]).catch((err: unknown) => {
      // Not connected: the heartbeat and the subscriber say so already.
      if (this.commands.client.isReady)
        this.warnings.warn(
          'ended-record',
          'could not keep how a session ended; a resume of it that reaches another node gets a new session',
          { err },
        )
    })
  }

  /**
   * How `sid` ended, if a node kept it and its TTL has not run out; undefined otherwise, and
   * when Redis cannot be asked, does not answer within `requestTimeout`, or holds something
   * that does not read as a record (warned: the resume gets a new session). Never rejects.
   */
  async read(sid: string): Promise<EndedSession | undefined> {
    let reply: unknown
    try {
      reply = await this.commands.send(['GET', this.key(sid)])
    } catch (err) {
      this.warnings.warn(
        'ended-lookup',
        'could not read how a resumed session ended; the resume got a new session',
        { err },
      )
      return undefined
    }
    const text = asText(reply)
    if (text === undefined) return undefined
    const ending = parseEnded(text)
    if (!ending) {
      this.warnings.warn(
        'ended-lookup',
        'a record of how a session ended does not read as one; the resume got a new session',
      )
    }
    return ending
  }
}
