import { cutText } from '@parley/protocol'
import { type EndedSession, MAX_ENDED_SESSIONS } from '@parley/server'
import type { Commands } from './commands.js'
import { asText, codeOf } from './send.js'
import { sidHash } from './sessions.js'
import type { Warnings } from './warnings.js'
import { packEnded, parseEnded } from './wire.js'

/**
 * The longest CLOSE message kept for an ended session, in UTF-16 units: a longer one (an
 * application's own words) is cut, so that each record stays small whatever the application
 * says. The reason, `retryAfter` and the ACK, what the client acts on, are kept whole.
 */
export const MAX_ENDED_MESSAGE = 512

/**
 * `message` cut to at most `MAX_ENDED_MESSAGE` UTF-16 units, at a code point's edge: a
 * character outside the BMP (an emoji) across the limit is left out whole, never kept as its
 * first half alone, which the client would show as a replacement character.
 */
export function cutMessage(message: string): string {
  return cutText(message, MAX_ENDED_MESSAGE)
}

/**
 * The most records of ended sessions one node keeps in Redis at a time: those it wrote whose TTL
 * has not run out. As many as its server remembers itself (`MAX_ENDED_SESSIONS` of
 * `@parley/server`, 10 000, taken from there so the two cannot differ), so that a storm of ends
 * (a mass disconnect, an application ending sessions in a loop) cannot fill Redis, whatever the
 * TTL. Past it, how a session ended is kept on its node alone, with a warning.
 */
export const MAX_ENDED_RECORDS: number = MAX_ENDED_SESSIONS

/**
 * How sessions ended, where every node finds it: `<prefix>:ended:<sha256(sid)>` holds one
 * session's CLOSE and last ACK (see `packEnded`), written as the session ends, with the TTL of
 * the ending node's own table (PX), so that a resume reaching any node gets the answer it
 * would have got on that one for as long, and no longer. Bounded in time by that TTL, in size by
 * `MAX_ENDED_MESSAGE`, and in count by `MAX_ENDED_RECORDS` per node: one key per session that
 * ended within the TTL, until that many of this node's are alive; the next end's SET is then
 * not sent (a resume of it that reaches another node gets a new session, as before the records
 * were shared; the node that ended it still answers one that reaches it), warned once per burst.
 *
 * Neither the write nor the read waits on an absent Redis: while Redis is away or has left a
 * command unanswered for `requestTimeout`, neither is sent (see `Commands`); the write is not
 * made again (the record would come late, and the node that ended the session still answers
 * a resume that reaches it), and a failed read resolves as nothing known, with a warning: the
 * resume gets a new session, as it did before the records were shared. Behind a burst on this
 * node (`MAX_UNANSWERED_COMMANDS` unanswered, Redis answering), both wait their turn, bounded
 * (see `Commands.sendInTurn`), the write with what is left of its TTL when its turn comes (see
 * `LeftOfTtl`); one given up all the same is warned with its `code`. The record of a session
 * this node handed off is the exception to both: it goes with the take-back steps, at once, or
 * first once Redis answers again, ahead of its snapshot's withdrawal, with what is left of its
 * TTL too (see `#keep`).
 */
export class EndedRecords {
  /** When each record Redis took from this node expires, oldest first (see `LiveCount`). */
  readonly #written = new LiveCount()
  /** Records sent and not answered yet: perhaps in Redis already. */
  #sending = 0

  constructor(
    private readonly commands: Commands,
    private readonly prefix: string,
    private readonly warnings: Warnings,
  ) {}

  key(sid: string): string {
    return this.#keyOf(sidHash(sid))
  }

  #keyOf(hash: string): string {
    return `${this.prefix}:ended:${hash}`
  }

  /**
   * Keeps how `sid` ended for `ttl` ms. `handedOff`: this node stored the session's snapshot for
   * another node to claim, and a claim may have won it (see `#keep`). Never throws nor rejects.
   */
  write(sid: string, ending: EndedSession, ttl: number, handedOff = false): void {
    const ms = Math.floor(ttl)
    if (!(ms > 0)) return
    const now = performance.now()
    if (this.#written.live(now) + this.#sending >= MAX_ENDED_RECORDS) {
      this.warnings.warn(
        'ended-cap',
        `${MAX_ENDED_RECORDS} records of sessions this node ended are still kept in Redis; how the sessions ending now ended stays on this node alone (a resume of one that reaches another node gets a new session)`,
        { max: MAX_ENDED_RECORDS },
      )
      return
    }
    const { close } = ending
    const cut =
      close.message.length > MAX_ENDED_MESSAGE ? { ...close, message: cutMessage(close.message) } : close
    let text: string
    try {
      text = packEnded({ ...ending, close: cut })
    } catch (err) {
      this.warnings.warn('ended-record', 'could not encode how a session ended', { err })
      return
    }
    const hash = sidHash(sid)
    const record = new LeftOfTtl(this.#keyOf(hash), text, now + ms)
    if (handedOff) {
      this.#keep(record, hash)
      return
    }
    this.#sending++
    // In turn behind a burst on this node (see `Commands.sendInTurn`): a burst of ends, or of
    // broadcasts as a session ends, would otherwise give the record up, and a resume of the
    // session that reaches another node would get a new session instead of its CLOSE. Made
    // when its turn comes, with what is left of its TTL then (see `LeftOfTtl`): none left, it is
    // not sent, and there is nothing to warn of (this node's own table forgot the session too).
    this.commands.sendInTurn(record.set).then(
      () => {
        this.#sending--
        this.#landed(record)
      },
      (err: unknown) => {
        this.#sending--
        // Not connected: the heartbeat and the subscriber say so already.
        if (this.commands.client.isReady)
          this.warnings.warn(
            'ended-record',
            'could not keep how a session ended; a resume of it that reaches another node gets a new session',
            { code: codeOf(err), err },
          )
      },
    )
  }

  /**
   * The record of a session this node handed off: always a step among those that take a handoff
   * back (see `Commands.undo`), sent at once while Redis is connected, else first once it is
   * again, until Redis answers it. The server ends such a session here before it withdraws its
   * snapshot, and the withdraw must reach Redis behind this record: a claimer whose claim won
   * meanwhile reads the session ended from it (see CONFIRM in handoff.ts), ends its copy, and
   * its client's next try, wherever it lands, must find how the session ended (its CLOSE), not a
   * new session. A step from the start, the record is ahead of the withdraw whatever becomes of
   * either (see `HandOffStore.withdraw`): the withdraw goes on the connection behind it, or
   * waits its turn behind it, or, refused (Redis away, silent, or this node's queue of commands
   * waiting their turn full), is kept as a step behind it; the steps go in the order they were
   * kept, again after a dropped connection. Sent in its turn instead, the record could wait in
   * that queue while the withdraw, refused as busy there, went ahead of it as a step. The two
   * share one of the `MAX_KEPT_UNDOS` places, the session's (`place`, the hash of its sid), and
   * are given up together when pushed out (see `Undos.add`). Sent late, it lives only what is
   * left of its TTL (see `LeftOfTtl`), made again at each try; none left, the undo is given up,
   * as one past its time.
   */
  #keep(record: LeftOfTtl, place: string): void {
    this.#sending++
    void this.commands
      .undo(record.set, record.left(), () => this.#landed(record), place)
      .finally(() => this.#sending--)
  }

  /**
   * Redis answered `record`'s SET: counted until it expires there, from the answer, which comes
   * after Redis set the key's expiry (never before it). Not sent (nothing was left): not counted.
   */
  #landed(record: LeftOfTtl): void {
    if (record.px > 0) this.#written.add(performance.now() + record.px)
  }

  /**
   * How `sid` ended, if a node kept it and its TTL has not run out; undefined otherwise, and
   * when Redis cannot be asked, does not answer within `requestTimeout`, or holds something
   * that does not read as a record (warned: the resume gets a new session). Never rejects.
   */
  async read(sid: string): Promise<EndedSession | undefined> {
    let reply: unknown
    try {
      // In turn behind a burst on this node, as the owner look-up before it: refused for it, the
      // resume would get a new session instead of its CLOSE.
      reply = await this.commands.sendInTurn(['GET', this.key(sid)])
    } catch (err) {
      this.warnings.warn(
        'ended-lookup',
        'could not read how a resumed session ended; the resume got a new session',
        { code: codeOf(err), err },
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

/**
 * The SET of a record of how a session ended that lives what is left of its TTL from `end` (when
 * the session ended, on `performance.now()`), made as it goes (see `MadeArgs`): however long it
 * waited its turn behind a burst, or for Redis to answer again, it outlives the end it describes
 * no longer than the node's own table keeps the session. Nothing left, it is not sent.
 *
 * Not PXAT (PEXPIREAT) at the end's time on this node's wall clock plus the TTL: Redis reads that
 * on its own clock, so a node clock ahead of Redis's would keep the record that much longer, one
 * behind it that much shorter (a resume would then get a new session in place of its CLOSE), and
 * the wall clock may be stepped meanwhile (NTP). A span measured on this node's monotonic clock
 * needs no agreement between the two; its one error is the time the SET takes to reach Redis, by
 * which the record outlives its end a little, never dies before it.
 */
class LeftOfTtl {
  /** The PX of the SET made last, 0 before one is made or when none was (nothing was left). */
  px = 0

  constructor(
    private readonly key: string,
    private readonly text: string,
    private readonly end: number,
  ) {}

  /** What is left of the TTL now, in ms. */
  left(): number {
    return this.end - performance.now()
  }

  readonly set = (): string[] | undefined => {
    const px = Math.floor(this.left())
    this.px = Math.max(0, px)
    return px > 0 ? ['SET', this.key, this.text, 'PX', String(px)] : undefined
  }
}

/**
 * How many of the times added are still to come. Times are added in the order they were made
 * from one TTL (a server's own), so the oldest expire first and are dropped from the front; a
 * shorter TTL after a longer one is counted until those before it expire: more, never fewer.
 */
class LiveCount {
  #times: number[] = []
  #head = 0

  add(until: number): void {
    this.#times.push(until)
  }

  /** Those still to come at `now`, the others dropped. */
  live(now: number): number {
    const times = this.#times
    while (this.#head < times.length && times[this.#head]! <= now) this.#head++
    // Let go of what was dropped once it is most of the list: at most twice the count is held.
    if (this.#head > 0 && this.#head * 2 >= times.length) {
      this.#times = times.slice(this.#head)
      this.#head = 0
    }
    return this.#times.length - this.#head
  }
}
