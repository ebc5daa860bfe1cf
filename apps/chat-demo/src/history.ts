import type { ChatMessage } from './shared.js'

/** The last `size` messages of each room, oldest first. In memory: a restart forgets them. */
export class History {
  readonly #rooms = new Map<string, ChatMessage[]>()

  constructor(private readonly size: number) {}

  add(message: ChatMessage): void {
    let list = this.#rooms.get(message.room)
    if (!list) {
      list = []
      this.#rooms.set(message.room, list)
    }
    list.push(message)
    if (list.length > this.size) list.splice(0, list.length - this.size)
  }

  of(room: string): ChatMessage[] {
    return [...(this.#rooms.get(room) ?? [])]
  }
}
