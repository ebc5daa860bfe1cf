import type { ServerSocket } from './socket.js'

// A socket of any event maps: only frozen, handed off and ended here.
// biome-ignore lint/suspicious/noExplicitAny: the event maps do not matter here.
type AnySocket = ServerSocket<any, any, any>

/**
 * Sessions frozen for a handoff (a drain's batch, a move) whose store has not answered yet. A
 * claim may come first: the snapshot is stored (the claim found it), and the client resumed on
 * the claimer already (an SSE or polling client whose upgrade to WebSocket reached another node,
 * say). Such a session ends here at the claim, as any claimed one: MOVED on its old transport
 * (its client is elsewhere), its last packets (answers to its open requests) into the tail, and
 * nothing more numbered into a tail that is sealed. The store's answer then finds it claimed.
 */
export class Storing {
  readonly #sockets = new Map<string, AnySocket>()
  /** Claimed before their stores answered. */
  readonly #claimed = new Set<string>()

  /** `socket` is frozen and its snapshot on its way to the store. */
  add(socket: AnySocket): void {
    this.#sockets.set(socket.session.sid, socket)
  }

  /**
   * Another node claimed `sid`: its last packets, the session ended here; undefined for a
   * session not waiting for its store, or no longer frozen (it ended meanwhile: its snapshot
   * is withdrawn, and the claimer finds it ended).
   */
  claimed(sid: string): string[] | undefined {
    const socket = this.#sockets.get(sid)
    if (socket?.session.state !== 'frozen') return undefined
    this.#sockets.delete(sid)
    this.#claimed.add(sid)
    socket.handOff(0, true)
    return socket.claimed()
  }

  /** The store answered for `sid` (or was given up on): true when a claim came first. */
  answered(sid: string): boolean {
    this.#sockets.delete(sid)
    return this.#claimed.delete(sid)
  }
}
