// An adapter whose joins and leaves answer only when the test says so, in whatever order it
// says: an application's own adapter over a network, where one answer may overtake another.
// What a call does is applied to this node's memory when its answer comes, as a store would
// apply it when the write reaches it.
import { MemoryAdapter, type Room } from '@parley/server'

/** A join or leave the adapter was called for and has not answered yet. */
export interface HeldCall {
  /** 'join a,b' or 'leave a'. */
  readonly name: string
  /** Applies the call and resolves its promise. */
  pass(): void
  /** Applies nothing and rejects its promise with `error`. */
  fail(error: Error): void
}

/** A later turn of the event loop: what the server's next call needs to be made. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Joins and leaves held until the test answers them: what `GatedAdapter` does, for any adapter
 * that keeps its rooms in memory (a node of the test cluster too, see `ClusterAdapter.gate`).
 */
export class Gate {
  /** Calls not answered yet, in the order they were made. */
  readonly held: HeldCall[] = []
  /** Every join, leave and leave of every room, in the order the server called them. */
  readonly calls: string[] = []

  /**
   * A join of `rooms`, done by `apply` when the test answers it. A socket's own room, at its
   * handshake, is joined at once: every other join is held.
   */
  join(id: string, rooms: Iterable<Room>, apply: (rooms: Room[]) => void): void | Promise<void> {
    const list = [...rooms]
    if (list.length === 1 && list[0] === id) return apply(list)
    return this.#hold(`join ${list.join(',')}`, () => apply(list))
  }

  /** A leave of `room`, done by `apply` when the test answers it. */
  leave(room: Room, apply: () => void): Promise<void> {
    return this.#hold(`leave ${room}`, apply)
  }

  /** A leave of every room, done at once (the server expects no answer). */
  leaveAll(apply: () => void): void {
    this.calls.push('leave all')
    apply()
  }

  /** What is held, by name, oldest first. */
  get heldNames(): string[] {
    return this.held.map((call) => call.name)
  }

  /**
   * Answers the newest held call, again and again, a turn apart, until none is left: calls
   * that were all under way at once are answered in the reverse of the order they were made.
   */
  async answerNewestFirst(): Promise<void> {
    await turn()
    while (this.held.length > 0) {
      this.held[this.held.length - 1]!.pass()
      await turn()
    }
  }

  #hold(name: string, apply: () => void): Promise<void> {
    this.calls.push(name)
    return new Promise<void>((resolve, reject) => {
      const call: HeldCall = {
        name,
        pass: () => {
          this.#forget(call)
          apply()
          resolve()
        },
        fail: (error) => {
          this.#forget(call)
          reject(error)
        },
      }
      this.held.push(call)
    })
  }

  #forget(call: HeldCall): void {
    this.held.splice(this.held.indexOf(call), 1)
  }
}

/** One node's MemoryAdapter whose joins and leaves go through a `Gate` (held calls by name). */
export class GatedAdapter extends MemoryAdapter {
  readonly gate = new Gate()
  readonly held = this.gate.held
  readonly calls = this.gate.calls

  override addAll(id: string, rooms: Iterable<Room>): void | Promise<void> {
    return this.gate.join(id, rooms, (list) => super.addAll(id, list))
  }

  override del(id: string, room: Room): void | Promise<void> {
    return this.gate.leave(room, () => super.del(id, room))
  }

  override delAll(id: string): void {
    this.gate.leaveAll(() => super.delAll(id))
  }

  get heldNames(): string[] {
    return this.gate.heldNames
  }

  answerNewestFirst(): Promise<void> {
    return this.gate.answerNewestFirst()
  }
}
