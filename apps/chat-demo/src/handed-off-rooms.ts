/**
 * The rooms of the sessions this node handed off while it drained, told who is there once the
 * drain is over. A handed-off session's `disconnect` announces nothing (the person is moving to
 * another node, and a list made meanwhile could miss them); the node that takes it over sends the
 * room's list again. But a session nobody claims (its page vanished without a goodbye: a killed
 * tab, a lost network) is taken over nowhere, and its stored copy lapses in silence: without a
 * list sent after the drain, the others would see that person listed until the room next
 * changed. When the drain is over, every session it handed off was claimed or never will be
 * within it: a list made then, from the sockets of the nodes still up, lacks only those, and a
 * late claim still sends its own list.
 */
export class HandedOffRooms {
  readonly #rooms = new Set<string>()

  constructor(private readonly announce: (room: string) => Promise<void>) {}

  /** A session in `room` was handed off. */
  add(room: string): void {
    this.#rooms.add(room)
  }

  /**
   * Sends each room's list again, once the drain is over (and before the adapter closes: the
   * lists go to the other nodes through it). A list that cannot be made is only missed.
   */
  async announceAll(): Promise<void> {
    const rooms = [...this.#rooms]
    this.#rooms.clear()
    await Promise.all(rooms.map((room) => this.announce(room).catch(() => {})))
  }
}
