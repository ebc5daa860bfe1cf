import type { Adapter } from './adapter/adapter.js'
import { safely, within } from './drain.js'
import type { Metrics } from './metrics.js'
import type { Session, SessionState } from './session.js'
import type { ServerSocket } from './socket.js'

/** What moves run on. */
export interface MoveContext {
  adapter: Adapter
  /** `handoff.timeout`: the longest a store may take, and a stored session waits for its claim. */
  timeout: number
  /** How long a stored session may wait to be claimed: the recovery window, in ms. */
  ttl: number
  /** Counts each session's outcome (as the drain does). */
  metrics: Metrics
}

// A socket of any event maps: a move only freezes, hands off and ends.
// biome-ignore lint/suspicious/noExplicitAny: the event maps do not matter here.
type AnySocket = ServerSocket<any, any, any>

const stateOf = (session: Session): SessionState => session.state

interface Moving {
  socket: AnySocket
  timer: NodeJS.Timeout
  /** Resolves `settled`: claimed, or sealed unclaimed. */
  done: () => void
  settled: Promise<void>
}

/**
 * Sessions handed off one at a time, each because another node asked for it: its client resumed
 * there over WebSocket. What the drain does for every session of the node, for one: freeze,
 * store the snapshot, and only then let the old transport go (MOVED: the client is already
 * elsewhere); the session stays, feeding its tail, until the asking node claims it (`claimed`),
 * or until `timeout` passes, when its tail is sealed for a later claim. A session whose snapshot
 * could not be stored thaws and goes on here, nothing lost.
 */
export class Moves {
  readonly #context: MoveContext
  readonly #moving = new Map<string, Moving>()

  constructor(context: MoveContext) {
    this.#context = context
  }

  /** Hands `socket`'s session off; true once stored (see `LocalSockets.handOff`). */
  async start(socket: AnySocket): Promise<boolean> {
    const { adapter, metrics, timeout, ttl } = this.#context
    const session = socket.session
    if (!adapter.handOff || ttl <= 0) return false
    // A session being taken over here has no complete books yet; a frozen one is moving.
    if ((session.state !== 'attached' && session.state !== 'detached') || session.restoring) return false
    const snapshot = socket.freeze()
    const stored = await within(
      safely(() => adapter.handOff?.(snapshot, ttl)),
      timeout,
      false,
    )
    // It may have ended meanwhile (a tail past maxBufferedBytes, the node closing, the
    // application's `disconnect()`: the server withdrew its snapshot then); read again after
    // the await.
    if (stateOf(session) !== 'frozen') return false
    if (!stored) {
      metrics.handoff('failed')
      socket.thaw(snapshot)
      return false
    }
    metrics.handoff('stored')
    const sid = session.sid
    let done: () => void = () => {}
    const settled = new Promise<void>((resolve) => {
      done = resolve
    })
    const timer = setTimeout(() => void this.#seal(sid), timeout)
    this.#moving.set(sid, { socket, timer, done, settled })
    socket.handOff(0, true)
    return true
  }

  /**
   * The asking node claimed `sid`: the socket answers its open requests into the tail and ends
   * here. Returns those last packets; undefined for a sid no move holds.
   */
  claimed(sid: string): string[] | undefined {
    const entry = this.#moving.get(sid)
    if (!entry) return undefined
    this.#moving.delete(sid)
    clearTimeout(entry.timer)
    entry.done()
    return entry.socket.claimed()
  }

  /**
   * `sid`, frozen for a move, ended here instead (its snapshot is withdrawn, see
   * `Adapter.withdrawHandOff`): its claim is no longer awaited, nor its tail sealed.
   */
  ended(sid: string): void {
    const entry = this.#moving.get(sid)
    if (!entry) return
    this.#moving.delete(sid)
    clearTimeout(entry.timer)
    entry.done()
  }

  /** Resolves once every move under way is claimed or sealed (at most `timeout` from now). */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.#moving.values()].map((entry) => entry.settled))
  }

  /** Nobody claimed `sid` in time: its tail is sealed, so that a later claim needs not wait. */
  async #seal(sid: string): Promise<void> {
    const entry = this.#moving.get(sid)
    if (!entry) return
    this.#moving.delete(sid)
    this.#context.metrics.handoff('unclaimed')
    await within(
      safely(() => this.#context.adapter.sealHandOff?.(sid, entry.socket.claimed())),
      this.#context.timeout,
      undefined,
    )
    entry.done()
  }
}
