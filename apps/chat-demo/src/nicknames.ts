import { createHash } from 'node:crypto'
import { MAX_ROOM_NAME_LENGTH, ParleyError } from '@parley/server'
import { monotonicNow } from './monotonic.js'
import { nicknameKey } from './nickname-key.js'
import { ChatErrorCode } from './shared.js'

/** A claim whose session has not opened yet, kept to stop a second one racing it. */
interface Claim {
  visitor: string | undefined
  since: number
}

/** How long a claim waits for its session to open: a handshake that never does is forgotten. */
const CLAIM_TTL = 10_000

/**
 * Who has which nickname, so that two people never show as one. A person is a browser: the page
 * sends a `visitor` id it keeps in localStorage, so the tabs of one browser (or a reload while
 * its old session is still in its recovery window) share their name, and are one entry in the
 * people list; anyone else asking for a name in use, in any letter case, is refused with
 * NICKNAME_TAKEN. The name's holders are the sockets in its room (`roomOf`), found with
 * fetchSockets, so the rule holds across the nodes of a cluster.
 */
export class Nicknames {
  readonly #claims = new Map<string, Claim>()

  constructor(
    /** The `visitor` of each socket in `room`, on every node. */
    private readonly holders: (room: string) => Promise<Array<string | undefined>>,
    private readonly now: () => number = monotonicNow,
  ) {}

  /**
   * The room of everyone using `nickname`: `nickname:<its key>`, a name with a colon, never a
   * chat room's. A key that would make it longer than Parley takes (NFKC makes some characters
   * into many, U+FDFA into 18; an emoji sequence joined with ZWJ is up to 20 units) gives
   * `nickname#<the key's SHA-256>` instead. Only those: nodes of older versions, which name
   * every room by its key, refused such names, so during a rolling restart every node that can
   * hold a name looks for it in the same room. (Not so for a name with what the key has folded
   * since (a variation selector, a joiner drawn as nothing): older nodes look for it in another
   * room until the restart is over.)
   */
  static roomOf(nickname: string): string {
    const key = nicknameKey(nickname)
    const room = `nickname:${key}`
    if (room.length <= MAX_ROOM_NAME_LENGTH) return room
    return `nickname#${createHash('sha256').update(key).digest('base64url')}`
  }

  /**
   * Takes `nickname` for `visitor`, or throws NICKNAME_TAKEN when someone else has it. The
   * session must then join `roomOf(nickname)` and call `opened`.
   */
  async claim(nickname: string, visitor: string | undefined): Promise<void> {
    const room = Nicknames.roomOf(nickname)
    const others = await this.holders(room)
    // Two handshakes for one name can both find its room empty: the first to get here holds it
    // until its session opened and joined that room.
    this.#forgetStale()
    const racing = this.#claims.get(room)
    if (
      others.some((other) => !samePerson(other, visitor)) ||
      (racing && !samePerson(racing.visitor, visitor))
    ) {
      throw new ParleyError(
        ChatErrorCode.NICKNAME_TAKEN,
        `someone is using the nickname "${nickname}" already: pick another one`,
      )
    }
    this.#claims.set(room, { visitor, since: this.now() })
  }

  /** The session that claimed `nickname` is open and in its room. */
  opened(nickname: string): void {
    this.#claims.delete(Nicknames.roomOf(nickname))
  }

  #forgetStale(): void {
    const now = this.now()
    for (const [room, claim] of this.#claims) if (now - claim.since > CLAIM_TTL) this.#claims.delete(room)
  }
}

/** Without a visitor id, a session is a person of its own. */
function samePerson(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && a === b
}
