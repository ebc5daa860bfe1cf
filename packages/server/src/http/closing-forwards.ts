import { WaitThenCut } from '../wait-then-cut.js'

/** A request this node forwards to another node, ending as this node closes (see `Forwarder.close`). */
export interface EndingForward {
  /** Settles once the request is over, both to the client and to the other node. */
  readonly closed: Promise<void>
  /** Ends it at once: the client's connection and the one to the other node are cut. */
  cut(): void
}

/**
 * The requests a closing node forwards to the nodes that own their sessions, while they end:
 * an event stream or a held poll is told CLOSE 'server handoff', a POST or an answer under way
 * goes on to its end. The HTTP server's close would cut them (and wait for them, with Fastify's
 * `forceCloseConnections` off): at shutdown those still going are given a moment (`closeAll`),
 * then cut (see `WaitThenCut`, which `ClosingWebSockets` uses too).
 */
export class ClosingForwards {
  readonly #ending = new WaitThenCut<EndingForward>((forward) => forward.cut())

  /** `forward` is ending. */
  add(forward: EndingForward): void {
    this.#ending.add(forward)
    void forward.closed.then(() => this.#ending.over(forward))
  }

  /** Waits for every forward that is ending, `limitMs` at the most, then cuts those still going. */
  closeAll(limitMs: number): Promise<void> {
    return this.#ending.closeAll(limitMs)
  }
}
