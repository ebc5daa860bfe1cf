import type { Transport } from './transports/transport.js'
import type { Handshake } from './types.js'

/** What a socket must have for its resumes to take turns: the handshake its middleware reads. */
interface Resumable {
  handshake: Handshake
}

/** One resume of a socket, from its HELLO to its answer. */
interface Entry {
  /** Its transport: closed once its client has left. */
  transport: Pick<Transport, 'open'>
  handshake: Handshake
  /** True once its turn began. */
  started: boolean
  /** Begins its turn. */
  go: () => void
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
  /** True once another node took the session over: this resume cannot attach here. */
  readonly movedAway: boolean
  /** The resume attaches its transport: its handshake stays on the socket. */
  attached(): void
  /** The turn is over: the next resume of the socket may begin. */
  end(): void
}

/**
 * Resumes of one session take turns, in the order their HELLOs came. A resume's middleware
 * reads its own handshake on the socket (`socket.handshake`: auth, headers, query) and may await
 * in between: a second resume of the same session that comes meanwhile (a client's retry, a
 * WebSocket probe beside an HTTP resume) waits for the first one's turn to end rather than put
 * its own handshake there under it. A turn ends with its resume attached (its handshake stays)
 * or not (refused, or its client gone: the handshake of the last attach is put back, unless a
 * later resume's is there).
 *
 * A resume whose client has left (its transport closed) cannot attach, whatever its middleware
 * decides: it holds up no one. A resume that comes after it begins at once, and so does one
 * waiting when another turn ends; a middleware that never settles cannot lock a session's
 * client out. Such a left resume's middleware, still running, then reads the handshake of the
 * one that goes on (nothing it decides is used).
 *
 * Each socket's entry lives as long as its resumes; a socket that no resume names has none.
 */
export class ResumeTurns<S extends Resumable> {
  readonly #queues = new Map<S, Queue>()

  /**
   * Waits until the resumes of `socket` that came before this one are over (or their clients
   * have left), then puts this one's `handshake` on the socket. The caller ends the turn
   * (`end`) whatever happens.
   */
  async take(socket: S, transport: Pick<Transport, 'open'>, handshake: Handshake): Promise<ResumeTurn> {
    let queue = this.#queues.get(socket)
    if (!queue) {
      queue = { entries: [], attached: socket.handshake, movedAway: false }
      this.#queues.set(socket, queue)
    }
    const entry: Entry = { transport, handshake, started: false, go: () => {} }
    const began = new Promise<void>((resolve) => {
      entry.go = resolve
    })
    queue.entries.push(entry)
    this.#advance(socket, queue)
    await began
    const entered = queue
    let attached = false
    return {
      get movedAway() {
        return entered.movedAway
      },
      attached: () => {
        attached = true
        entered.attached = handshake
      },
      end: () => {
        // Put back only if no later resume (nor the middleware itself) put another one there.
        if (!attached && socket.handshake === handshake) socket.handshake = entered.attached
        entered.entries.splice(entered.entries.indexOf(entry), 1)
        if (entered.entries.length === 0) this.#queues.delete(socket)
        else this.#advance(socket, entered)
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

  /** Begins the turns that may begin: up to the first resume under way whose client is there. */
  #advance(socket: S, queue: Queue): void {
    for (const entry of queue.entries) {
      if (!entry.started) {
        entry.started = true
        socket.handshake = entry.handshake
        entry.go()
      }
      if (entry.transport.open) return
    }
  }
}
