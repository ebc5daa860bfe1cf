import type { Handshake } from './types.js'

/** What a socket must have for its resumes to take turns: the handshake its middleware reads. */
interface Resumable {
  handshake: Handshake
}

/** One resume of a socket, from its HELLO to its answer and the end of its middleware. */
interface Entry {
  handshake: Handshake
  /** True once its turn began. */
  started: boolean
  /** Begins its turn. */
  go: () => void
  /** The resume has its answer (or gave up waiting for its turn). */
  answered: boolean
  /** Its middleware runs: past the answer, when that answer was the bound's. */
  running: boolean
  /** Taken out of the queue: the turn is over. */
  over: boolean
}

/** The resumes of one socket under way, in the order their HELLOs came. */
interface Queue {
  entries: Entry[]
  /** The handshake of the socket's last attach: what a resume that does not attach puts back. */
  attached: Handshake
  /** Another node took the session over while these resumes were under way. */
  movedAway: boolean
}

/**
 * One resume's turn (see `ResumeTurns`). `socket.handshake` is the resume's own from the start
 * of the turn to its end.
 */
export interface ResumeTurn {
  /**
   * Settles when the turn begins; undefined when it began at once (no other resume of the socket
   * under way). A caller that stops waiting still ends the turn (`end`): it never begins then.
   */
  readonly waiting: Promise<void> | undefined
  /** True once another node took the session over: this resume cannot attach here. */
  readonly movedAway: boolean
  /**
   * The resume's middleware begins: the turn lasts until the returned function is called, once
   * that middleware has settled, even when the resume was answered before (its bound ran out).
   */
  running(): () => void
  /** The resume attaches its transport: its handshake stays on the socket. */
  attached(): void
  /** The resume has its answer: the next resume of the socket may begin, once the middleware is done. */
  end(): void
}

/**
 * Resumes of one session take turns, in the order their HELLOs came. A resume's middleware
 * reads its own handshake on the socket (`socket.handshake`: auth, headers, query) and may await
 * in between: a second resume of the same session that comes meanwhile (a client's retry, a
 * WebSocket probe beside an HTTP resume) waits for the first one's turn to end rather than put
 * its own handshake there under it. A turn ends once its resume has its answer and its
 * middleware has settled, with its resume attached (its handshake stays) or not (refused, its
 * client gone, or its middleware past `handshakeTimeout`: the handshake of the last attach is
 * put back).
 *
 * So two runs of the middleware on one session never overlap: one that ran past its bound (its
 * client answered PARLEY_HANDSHAKE_TIMEOUT) reads its own handshake until it settles, and holds
 * up the resumes that come meanwhile. Those do not wait for it past their own bound (see
 * `Hellos`), so a middleware that never settles costs its session's resumes a timeout each,
 * never a wait for good.
 *
 * Each socket's entry lives as long as its resumes; a socket that no resume names has none.
 */
export class ResumeTurns<S extends Resumable> {
  readonly #queues = new Map<S, Queue>()

  /**
   * Queues a resume of `socket`: its turn begins once the resumes of `socket` that came before
   * it are over, and then puts `handshake` on the socket. The caller ends the turn (`end`)
   * whatever happens, begun or not.
   */
  take(socket: S, handshake: Handshake): ResumeTurn {
    let queue = this.#queues.get(socket)
    if (!queue) {
      queue = { entries: [], attached: socket.handshake, movedAway: false }
      this.#queues.set(socket, queue)
    }
    const entered = queue
    const entry: Entry = {
      handshake,
      started: false,
      go: () => {},
      answered: false,
      running: false,
      over: false,
    }
    const waiting =
      queue.entries.length === 0
        ? undefined
        : new Promise<void>((resolve) => {
            entry.go = resolve
          })
    queue.entries.push(entry)
    this.#advance(socket, queue)
    let attached = false
    const over = () => {
      if (entry.over || !entry.answered || entry.running) return
      entry.over = true
      // Put back only if no later resume (nor the middleware itself) put another one there.
      if (!attached && socket.handshake === handshake) socket.handshake = entered.attached
      entered.entries.splice(entered.entries.indexOf(entry), 1)
      if (entered.entries.length === 0) this.#queues.delete(socket)
      else this.#advance(socket, entered)
    }
    return {
      waiting,
      get movedAway() {
        return entered.movedAway
      },
      running: () => {
        entry.running = true
        return () => {
          entry.running = false
          over()
        }
      },
      attached: () => {
        attached = true
        entered.attached = handshake
      },
      end: () => {
        entry.answered = true
        over()
      },
    }
  }

  /**
   * Another node took `socket`'s session over: the resumes of it under way here, or waiting for
   * their turn, cannot attach (see `ResumeTurn.movedAway`).
   */
  movedAway(socket: S): void {
    const queue = this.#queues.get(socket)
    if (queue) queue.movedAway = true
  }

  /** Begins the first resume's turn, if it has not begun. */
  #advance(socket: S, queue: Queue): void {
    const first = queue.entries[0]
    if (!first || first.started) return
    first.started = true
    socket.handshake = first.handshake
    first.go()
  }
}
