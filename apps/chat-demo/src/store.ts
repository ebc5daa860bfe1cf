import { randomBytes } from 'node:crypto'
import { type ChatMessage, DEFAULT_ROOMS, Limits } from './shared.js'

/**
 * What the chat keeps: its rooms and the last messages of each, oldest first. This one lives in
 * memory, so a new process starts empty; give the same store to a new `buildChatApp` (or write
 * one backed by a database) to keep rooms and history across a server restart.
 */
export class ChatStore {
  readonly #rooms = new Set<string>(DEFAULT_ROOMS)
  readonly #messages = new Map<string, Stored[]>()
  // Message ids must not repeat across stores: a page that stayed open through a restart
  // remembers the ids it shows, and would drop a new message that reused one.
  readonly #idPrefix = randomBytes(4).toString('hex')
  #nextId = 0

  constructor(private readonly historySize: number = Limits.history) {}

  get rooms(): string[] {
    return [...this.#rooms]
  }

  hasRoom(room: string): boolean {
    return this.#rooms.has(room)
  }

  /** Adds a room; false when there are `Limits.rooms` already. */
  addRoom(room: string): boolean {
    if (this.#rooms.has(room)) return true
    if (this.#rooms.size >= Limits.rooms) return false
    this.#rooms.add(room)
    return true
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
    if (list.length > this.historySize) list.splice(0, list.length - this.historySize)
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
