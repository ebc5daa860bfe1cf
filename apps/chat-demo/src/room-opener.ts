import { ChatErrorCode, Limits, type Refusal, ROOM_PATTERN, refusal } from './shared.js'
import type { ChatStore } from './store.js'

/** The refusal of a name that is not a room name (see `ROOM_PATTERN`), or undefined for a room name. */
export function badRoomName(room: string): Refusal | undefined {
  return ROOM_PATTERN.test(room)
    ? undefined
    : refusal(ChatErrorCode.BAD_ROOM_NAME, 'room names are 1 to 32 lower-case letters, digits or dashes')
}

/** What a session keeps of the rooms it opened (in `socket.data`: plain JSON, it makes a handoff). */
export interface Opener {
  roomsOpened: number
}

/**
 * Opens rooms so that no one can use up the rooms of everyone. A session opens at most
 * `Limits.roomsPerSession`; a burst of new sessions can do no more than take the places of rooms
 * nobody is in: when the store is full, the room used longest ago that no one is in (or on the
 * way to) is forgotten, history and all, to make room. A room with someone in it is never
 * closed, so its history stays; when every room has someone, a new one is refused.
 */
export class RoomOpener {
  constructor(
    private readonly store: ChatStore,
    /**
     * The rooms someone is in or on their way to (a change of room may still be under way), on
     * every node of a cluster.
     */
    private readonly inUse: () => Promise<ReadonlySet<string>>,
    /** Told each time the rooms list changed (the store has the list). */
    private readonly changed: () => void,
  ) {}

  /**
   * Opens `room` for `opener` if it is new; the refusal when it cannot be, or undefined. Rejects
   * when the store does (it cannot be reached).
   */
  async open(room: string, opener: Opener): Promise<Refusal | undefined> {
    const bad = badRoomName(room)
    if (bad) return bad
    if (await this.store.hasRoom(room)) return undefined
    if (opener.roomsOpened >= Limits.roomsPerSession) {
      return refusal(
        ChatErrorCode.TOO_MANY_ROOMS_OPENED,
        `you have opened ${Limits.roomsPerSession} rooms already: join one of the list`,
      )
    }
    let added = await this.store.addRoom(room)
    // Full: the quietest room goes, and the new one takes its place (unless a room made
    // meanwhile, on another node, took it first: the list changed all the same).
    if (!added && (await this.#closeQuietest())) {
      added = await this.store.addRoom(room)
      if (!added) this.changed()
    }
    if (!added) {
      return refusal(ChatErrorCode.ROOMS_FULL, 'there are too many rooms, all in use: join one of the list')
    }
    opener.roomsOpened++
    this.changed()
    return undefined
  }

  /** Forgets the room used longest ago that nobody is in; false when there is none. */
  async #closeQuietest(): Promise<boolean> {
    const busy = await this.inUse()
    const idle = (await this.store.quietest()).find((room) => !busy.has(room))
    return idle !== undefined && (await this.store.removeRoom(idle))
  }
}
