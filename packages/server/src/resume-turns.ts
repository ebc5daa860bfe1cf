import type { Handshake } from './types.js'

/** What a socket must have for its resumes to take turns: the handshake its middleware reads. */
interface Resumable {
  handshake: Handshake
}

/** One resume of a socket, from its HELLO to its answer. */
interface Entry {
  handshake: Handshake
  /** True once its turn began. */
  started: boolean
  /** Begins its turn. */
  go: () => void
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
  /** The resume attaches its transport: its handshake stays on the socket. */
  attached(): void
  /** The resume has its answer: the next resume of the socket may begin. */
  end(): void
}

/**
 * Resumes of one session take turns, in the order their HELLOs came. A resume's middleware
 * reads its own handshake on the socket (`socket.handshake`: auth, headers, query) and may await
 * in between: a second resume of the same session that comes meanwhile (a client's retry, a
 * WebSocket probe beside an HTTP resume) waits for the first one's turn to end rather than put
 * its own handshake there under it. A turn ends once its resume has its answer, attached (its
 * handshake stays) or not (refused, or its client gone: the handshake of the last attach is put
 * back).
 *
 * A resume is answered once its middleware has settled, or at `handshakeTimeout` (see
 * `HandshakeMiddleware.run`): so two runs of the middleware on one session that settle within
 * that bound never overlap, and one that does not (a database call without a timeout of its
 * own) holds its session's resumes up no longer than that. Past it, the next resume runs its own
 * middleware beside it; what the late run decides is ignored, and what it reads of the socket's
 * handshake from then on is the next resume's, or that of the last attach.
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
    const entry: Entry = { handshake, started: false, go: () => {}, over: false }
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
      if (entry.over) return
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
      attached: () => {
        attached = true
        entered.attached = handshake
      },
      end: over,
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
