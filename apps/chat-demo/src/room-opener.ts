import { ChatErrorCode, Limits, type Refusal, ROOM_PATTERN, refusal } from './shared.js'
import type { ChatStore } from './store.js'

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
    /** The rooms someone is in or on their way to (a change of room may still be under way). */
    private readonly inUse: () => ReadonlySet<string>,
    /** Told the rooms list each time it changed. */
    private readonly changed: (rooms: string[]) => void,
  ) {}

  /**
   * Opens `room` for `opener` if it is new; the refusal when it cannot be, or undefined. Never
   * waits: a message that reopens a room is stored in the order it came.
   */
  open(room: string, opener: Opener): Refusal | undefined {
    if (!ROOM_PATTERN.test(room)) {
      return refusal(
        ChatErrorCode.BAD_ROOM_NAME,
        'room names are 1 to 32 lower-case letters, digits or dashes',
      )
    }
    if (this.store.hasRoom(room)) return undefined
    if (opener.roomsOpened >= Limits.roomsPerSession) {
      return refusal(
        ChatErrorCode.TOO_MANY_ROOMS_OPENED,
        `you have opened ${Limits.roomsPerSession} rooms already: join one of the list`,
      )
    }
    if (this.store.full && !this.#closeQuietest()) {
      return refusal(ChatErrorCode.ROOMS_FULL, 'there are too many rooms, all in use: join one of the list')
    }
    this.store.addRoom(room)
    opener.roomsOpened++
    this.changed(this.store.rooms)
    return undefined
  }

  /** Forgets the room used longest ago that nobody is in; false when there is none. */
  #closeQuietest(): boolean {
    const busy = this.inUse()
    const idle = this.store.quietest().find((room) => !busy.has(room))
    return idle !== undefined && this.store.removeRoom(idle)
  }
}
