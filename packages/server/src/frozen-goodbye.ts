import type { Packet } from '@parley/protocol'
import type { TransportOwner } from './transports/transport.js'

/** What a frozen session offers its client's goodbye (see `Session.goodbyeWhileFrozen`). */
interface Frozen {
  goodbyeWhileFrozen(packets: readonly Packet[]): boolean
}

/**
 * The owner of a frozen session's transport (see `Session.freeze`): it hears the client's
 * goodbye (CLOSE), and nothing else. A WebSocket's frames come to the transport, not through an
 * endpoint that finds the session by its id as an SSE or polling POST does; unbound at the freeze,
 * the goodbye would be dropped, and the snapshot wait unclaimed for its ttl (and the drain for a
 * claim). Every other packet is left: what the client sends after the freeze belongs to the node
 * that takes over, which gets it again, unacknowledged here. It stays the owner once `handOff`
 * closed the transport (`hearsAfterClose`), for a goodbye sent before the client read the CLOSE
 * 'server handoff'.
 */
export class FrozenGoodbye implements TransportOwner {
  readonly #session: Frozen

  constructor(session: Frozen) {
    this.#session = session
  }

  get hearsAfterClose(): true {
    return true
  }

  transportPacket(_transport: unknown, packet: Packet): void {
    this.#session.goodbyeWhileFrozen([packet])
  }

  // Input that does not decode, or a medium gone, says nothing of a goodbye: as before the freeze
  // was unbound, the handoff goes on (a client whose transport dropped resumes at the next node).
  transportInvalid(): void {}

  transportLost(): void {}
}
