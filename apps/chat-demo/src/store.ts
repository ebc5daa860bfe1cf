import { randomBytes } from 'node:crypto'
import { type ChatMessage, DEFAULT_ROOMS, Limits } from './shared.js'

/** How much a store keeps; the chat's `Limits` unless a test asks for less. */
export interface ChatStoreOptions {
  /** Messages kept per room (`Limits.history`). */
  history?: number
  /** Rooms at most, the default ones included (`Limits.rooms`). */
  rooms?: number
}

/**
 * What the chat keeps: its rooms and the last messages of each, oldest first. This one lives in
 * memory, so a new process starts empty; give the same store to a new `buildChatApp` (or write
 * one backed by a database) to keep rooms and history across a server restart.
 */
export class ChatStore {
  readonly #rooms = new Set<string>(DEFAULT_ROOMS)
  readonly #messages = new Map<string, Stored[]>()
  /**
   * When each room was last used (opened, joined, written in), as a count of uses rather than a
   * time: two uses in the same millisecond still tell which came last.
   */
  readonly #lastUsed = new Map<string, number>()
  #uses = 0
  // Message ids must not repeat across stores: a page that stayed open through a restart
  // remembers the ids it shows, and would drop a new message that reused one.
  readonly #idPrefix = randomBytes(4).toString('hex')
  #nextId = 0
  readonly #historySize: number
  readonly #maxRooms: number

  constructor(options: ChatStoreOptions = {}) {
    this.#historySize = options.history ?? Limits.history
    this.#maxRooms = options.rooms ?? Limits.rooms
  }

  get rooms(): string[] {
    return [...this.#rooms]
  }

  /** True when a new room needs another one closed first. */
  get full(): boolean {
    return this.#rooms.size >= this.#maxRooms
  }

  hasRoom(room: string): boolean {
    return this.#rooms.has(room)
  }

  /** Adds a room; false when the store is `full`. */
  addRoom(room: string): boolean {
    if (this.#rooms.has(room)) return true
    if (this.full) return false
    this.#rooms.add(room)
    this.touch(room)
    return true
  }

  /** Forgets a room and its history; false for the default rooms, which always stay. */
  removeRoom(room: string): boolean {
    if ((DEFAULT_ROOMS as readonly string[]).includes(room)) return false
    this.#messages.delete(room)
    this.#lastUsed.delete(room)
    return this.#rooms.delete(room)
  }

  /** Notes that someone used the room (joined it, or wrote in it). */
  touch(room: string): void {
    if (this.#rooms.has(room)) this.#lastUsed.set(room, ++this.#uses)
  }

  /** The rooms that may be closed (not the default ones), the one used longest ago first. */
  quietest(): string[] {
    return [...this.#rooms]
      .filter((room) => !(DEFAULT_ROOMS as readonly string[]).includes(room))
      .sort((a, b) => (this.#lastUsed.get(a) ?? 0) - (this.#lastUsed.get(b) ?? 0))
  }

  /**
   * Stores a message under a new id, and forgets the oldest of its room past the history size.
   * `key` is the sender's own name for the message (see `find`).
   */
  add(draft: Omit<ChatMessage, 'id'>, key?: string): ChatMessage {
    const message: ChatMessage = { id: `${this.#idPrefix}-${++this.#nextId}`, ...draft }
    let list = this.#messages.get(message.room)
    if (!list) {
      list = []
      this.#messages.set(message.room, list)
    }
    list.push({ message, key })
    if (list.length > this.#historySize) list.splice(0, list.length - this.#historySize)
    this.touch(message.room)
    return message
  }

  /** The message of the room's history that `from` stored under `key`, if any. */
  find(room: string, from: string, key: string): ChatMessage | undefined {
    return this.#messages.get(room)?.find((s) => s.key === key && s.message.from === from)?.message
  }

  /** The room's last messages, oldest first. */
  history(room: string): ChatMessage[] {
    return (this.#messages.get(room) ?? []).map((s) => s.message)
  }
}

interface Stored {
  message: ChatMessage
  key: string | undefined
}
