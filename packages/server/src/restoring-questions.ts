import type { Settle } from '@parley/protocol'

/** A question's ack id, read when its packet is numbered: it may change until then. */
export interface Question {
  id: number
}

interface Entry {
  question: Question
  settle: Settle
  /** When its wait ends (`performance.now()` ms); undefined when it has no timeout. */
  deadline: number | undefined
}

/**
 * The questions a taken-over socket asks before the old node's tail is read. Their packets wait
 * for their numbers, after the tail's (see `Session.release`), and the ids the old node asked
 * with in that tail are known only then. The snapshot's `nextAckId` puts this node's ids half
 * the id space away from them, but a snapshot without it (an earlier version's, or an adapter's
 * that does not carry it) says nothing when no question was awaited: the old node may have been
 * numbering right where this one starts. So each question here keeps its wait, and one whose id
 * the tail turns out to use too is given another (`renumber`) before its packet is numbered:
 * the client's reply to the old node's question, dropped here, can then never settle it.
 */
export class RestoringQuestions {
  readonly #byId = new Map<number, Entry>()

  /**
   * Records a question registered under `id` by `register`, and returns it. `register` gets the
   * callback to register: it forgets the question here once settled.
   */
  ask(settle: Settle, timeout: number | undefined, register: (settle: Settle) => number): Question {
    const question: Question = { id: 0 }
    const done: Settle = (error, reply) => {
      this.forget(question)
      settle(error, reply)
    }
    question.id = register(done)
    this.#byId.set(question.id, {
      question,
      settle: done,
      deadline: timeout === undefined ? undefined : performance.now() + timeout,
    })
    return question
  }

  /** The question was settled, or dropped unsent: its id is no longer this node's to change. */
  forget(question: Question): void {
    if (this.#byId.get(question.id)?.question === question) this.#byId.delete(question.id)
  }

  /**
   * The tail is in and asked with `ackIds`: each question of this node under one of them is
   * registered again, with the time left of its wait, under an id `register` gives (one no
   * question of the old node uses: they are moved acks by then). `forget` drops the old id.
   */
  renumber(
    ackIds: readonly number[],
    forget: (id: number) => void,
    register: (settle: Settle, timeout: number | undefined) => number,
  ): void {
    for (const id of ackIds) {
      const entry = this.#byId.get(id)
      if (!entry) continue
      this.#byId.delete(id)
      forget(id)
      const left = entry.deadline === undefined ? undefined : Math.max(0, entry.deadline - performance.now())
      entry.question.id = register(entry.settle, left)
    }
  }
}
