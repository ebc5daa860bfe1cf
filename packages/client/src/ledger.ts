import { ErrorCode, type NumberedPacket, type OpenPacket, ParleyError } from '@parley/protocol'
import { about, decodeText, encode, type Sent } from './codec.js'
import type { Outgoing } from './outgoing.js'
import * as PacketType from './packet-type.js'
import * as WireLimits from './wire-limits.js'

/**
 * What `receive` decided about an incoming numbered packet: numbers rather than words, which the
 * bundle would carry each time (see connection-state.ts).
 */
export const GAP = 0
export const DELIVER = 1
export const DUPLICATE = 2
export type Receipt = typeof GAP | typeof DELIVER | typeof DUPLICATE

/** How long, and for how many packets, an ACK may wait (see `Transport.ackDelay`). */
export interface AckPace {
  ackDelay: number
  ackAfter: number
}

export interface SessionLimits {
  maxQueuedMessages: number
  maxQueuedBytes: number
}

/**
 * The session's books: sequence numbers both ways, the numbered packets the server has not
 * acknowledged yet (sent or still waiting for a transport), and the ACKs we owe. It knows no
 * transport; the session decides where packets go.
 */
export class Ledger {
  /** The session id, once the server gave one (`declare`d: no declaration in the bundle). */
  declare sid: string | undefined
  /** Highest server seq received in order. */
  inSeq = 0
  /** Last seq given to an outgoing numbered packet. */
  outSeq = 0
  /** Largest packet the server accepts, from the last OPEN. */
  payloadMax: number = WireLimits.defaultMaxPayload
  /** Numbered packets kept for (re)sending, oldest first. Only the ledger changes it. */
  kept: Outgoing[] = []
  #keptBytes = 0
  #owed = 0
  #ackTimer: ReturnType<typeof setTimeout> | undefined

  readonly #limits: SessionLimits
  readonly #sendAck: (ack: number) => void

  /** `sendAck` sends ACK [4, inSeq] if a transport is there. */
  constructor(limits: SessionLimits, sendAck: (ack: number) => void) {
    this.#limits = limits
    this.#sendAck = sendAck
  }

  /**
   * Numbers a packet and keeps it until the server acknowledges it. Throws PARLEY_QUEUE_FULL or
   * PARLEY_PAYLOAD_TOO_LARGE (nothing is kept then) or PARLEY_UNSERIALIZABLE.
   */
  keep(build: (seq: number) => Sent): Outgoing {
    const item = this.encodeChecked(build(this.outSeq + 1))
    const { maxQueuedMessages, maxQueuedBytes } = this.#limits
    if (this.kept.length >= maxQueuedMessages || this.#keptBytes + item.bytes > maxQueuedBytes) {
      throw new ParleyError(ErrorCode.QUEUE_FULL, about(item.packet, 'too many messages queued'), {
        details: {
          maxQueuedMessages,
          maxQueuedBytes,
          queued: this.kept.length,
          queuedBytes: this.#keptBytes,
        },
      })
    }
    this.outSeq++
    this.kept.push(item)
    this.#keptBytes += item.bytes
    return item
  }

  /**
   * Encodes an application packet the server will take: throws PARLEY_PAYLOAD_TOO_LARGE past the
   * server's maxPayload, and what `encode` throws.
   */
  encodeChecked(packet: Sent): Outgoing {
    const item = encode(packet)
    const { bytes: size } = item
    const limit = this.payloadMax
    if (size > limit) {
      throw new ParleyError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        about(packet, `${size} bytes > maxPayload ${limit}`),
        {
          details: { limit, size },
        },
      )
    }
    return item
  }

  /**
   * Applies an OPEN. Returns true when it began a new session (not a resume): sequence numbers
   * restart and the events kept from the old session are renumbered into the new one, so that
   * no event the application sent is dropped (they may then arrive twice: at-least-once there);
   * answers to the old session's requests are dropped.
   * A resume whose `ack` is below what the server acknowledged before renumbers `kept` after it.
   * Afterwards `kept` holds exactly what must be sent again on the new transport, in order.
   *
   * A kept packet that the server would refuse is not sent: one larger than the `maxPayload` it
   * states now, which an emit made before any OPEN could not know, nor one made before a resume
   * that reached a node with a smaller limit (a rolling deploy that lowers it). The server would
   * end the session for it, and every new session it was replayed into. `refuse` hears of each;
   * the rest are numbered again after the server's ack, so that the gap it leaves is none.
   */
  opened(open: OpenPacket, refuse: (packet: NumberedPacket, error: ParleyError) => void): boolean {
    this.payloadMax = open.maxPayload
    const fresh = !open.recovered || open.sid !== this.sid
    this.sid = open.sid
    this.#cancelAck()
    if (fresh) this.inSeq = 0
    else this.acked(open.ack)
    // Numbered again after the server's ack: a new session's 0; a resumed one's when the server
    // lacks what we sent before `kept`: it took the session over from a record older than what
    // the session's old node had handled and acknowledged (that node went on past its record, see
    // docs/scaling.md). Sent again with their old numbers, the rest would be a gap for good.
    if (
      fresh ||
      this.outSeq - this.kept.length > open.ack ||
      this.kept.some((item) => item.bytes > open.maxPayload)
    ) {
      this.outSeq = fresh ? 0 : open.ack
      const old = this.kept
      this.kept = []
      this.#keptBytes = 0
      for (const item of old) {
        // An answer (REPLY, ERROR) to a request of the old session goes with it: the new one
        // would take it for the answer to a request of its own with the same ack id.
        if (fresh && item.packet.type !== PacketType.EVENT) continue
        // Its number is in its encoding. The packet is read back from that, not taken from the
        // application's arguments, which it may have changed since (into something that does not
        // encode, even): what goes out is what was handed over. Over it, the packet as handed over
        // gives only what is off the wire: an answer's event name, for the error if it is refused.
        const decoded = decodeText(item.text, Infinity)
        try {
          if (!decoded.ok) throw decoded.error
          this.keep((seq) => ({ ...(item.packet as Sent), ...(decoded.packet as NumberedPacket), seq }))
        } catch (error) {
          refuse(item.packet as NumberedPacket, error as ParleyError)
        }
      }
    }
    return fresh
  }

  /**
   * Why the server's `ack` (an ACK's, or an OPEN's) must not be applied, or undefined when it may:
   * past `outSeq`, it acknowledges packets this client never numbered. No Parley server sends one
   * (a broken proxy, a server of another implementation might); applied, it would forget packets
   * the server may lack, and a server that believes it would drop what comes again as duplicates.
   * An OPEN that says it did not recover the session (`fresh`) comes before any packet of the new
   * one was numbered (what is kept is numbered again after it, from 1): there, any `ack` but 0 is
   * past what was sent. (Not judged by the `sid` it names: after disconnect() the ledger has none,
   * and the OPEN of a resume under way then must still be taken, to say goodbye on it.) The
   * message is the same for all (`ACK 5 > 2`): one string less in the bundle.
   */
  badAck(ack: number, fresh?: boolean): ParleyError | undefined {
    const sent = fresh ? 0 : this.outSeq
    if (ack > sent)
      return new ParleyError(ErrorCode.INVALID_SEQ, `ACK ${ack} > ${sent}`, { details: { seq: 0 } })
  }

  /** The server has everything up to `ack`: forget it. */
  acked(ack: number): void {
    let n = 0
    for (const item of this.kept) {
      if ((item.packet as NumberedPacket).seq > ack) break
      this.#keptBytes -= item.bytes
      n++
    }
    this.kept.splice(0, n)
  }

  /**
   * The server answered request `ackId`: it took that EVENT, so everything before it too (it
   * takes packets only in order). Forgotten like an ACK, which may come 200 ms after the answer:
   * a session lost in between must not send a request whose answer came into the next session.
   */
  answered(ackId: number): void {
    // An ERROR with ack id 0 (a notice) names no request. The id leads to the seq that carried
    // it, and the seq decides, so the wrap of ids past 2^31 changes no order. Ids are unique only
    // while their wait lasts: a request whose wait ended (a timeout) may still be kept when the
    // ids come round to its id again; the older one, found first, forgets less. An answer so late
    // that the ids went round under it (2^31 requests while one handler ran) would be taken for
    // the kept request's, as the AckTable takes it: the wire does not tell the two apart.
    const item = ackId && this.kept.find(({ packet: p }) => p.type === PacketType.EVENT && p.ackId === ackId)
    if (item) this.acked((item.packet as NumberedPacket).seq)
  }

  /**
   * Orders an incoming numbered packet, and schedules the ACK for it. `pace` says how long and for
   * how many packets that ACK may wait: the own of the transport the packet came on.
   */
  receive(seq: number, pace: AckPace): Receipt {
    if (seq > this.inSeq + 1) return GAP
    const fresh = seq === this.inSeq + 1
    if (fresh) this.inSeq = seq
    // Acknowledge duplicates too: a replay means the server missed our last ACK.
    if (++this.#owed >= pace.ackAfter) this.flushAck()
    // Not spread at random: the clients of a broadcast then send their ACKs together, which a
    // server reads in fewer turns of its event loop (spread, a cluster's CPU per delivery rose by
    // a fifth; docs/benchmarks.md).
    else this.#ackTimer ??= setTimeout(() => this.flushAck(), pace.ackDelay)
    return fresh ? DELIVER : DUPLICATE
  }

  /**
   * The ACK owed now, taken (no ACK goes for it otherwise), or undefined when nothing is owed:
   * for a transport that carries it itself (polling, in its next GET).
   */
  takeOwed(): number | undefined {
    if (this.#owed) {
      this.#cancelAck()
      return this.inSeq
    }
  }

  /** Sends the ACK owed now. */
  flushAck(): void {
    this.#cancelAck()
    this.#sendAck(this.inSeq)
  }

  /** Forgets the session id (the server ended it); kept packets stay for the next session. */
  forget(): void {
    this.sid = undefined
    this.#cancelAck()
  }

  /** Drops everything: the application ended the session. */
  reset(): void {
    this.kept = []
    this.#keptBytes = 0
    this.forget()
  }

  #cancelAck(): void {
    clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
    this.#owed = 0
  }
}
