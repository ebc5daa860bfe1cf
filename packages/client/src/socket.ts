import {
  type AckReply,
  type ArgsWithoutAck,
  checkEventName,
  type DefaultEventsMap,
  type EmitArgs,
  ErrorCode,
  type ErrorOnlyArgs,
  ParleyError,
  type Settle,
  type TimedArgs,
  type TransportName,
  type WireValue,
} from '@parley/protocol'
import { aboutEvent, type Sent } from './codec.js'
import * as State from './connection-state.js'
import { Emitter } from './emitter.js'
import type { ReservedEvents } from './events.js'
import { baseUrl, type ClientOptions, misuse, resolveOptions } from './options.js'
import * as PacketType from './packet-type.js'
import { Session, type SessionHost } from './session.js'

export type { ReservedEvents, SwitchReason } from './events.js'

/** An event map that allows anything: what an untyped socket uses (the server's `DefaultEventsMap`). */
export type DefaultEvents = DefaultEventsMap

/**
 * Options of one emit, set by `volatile` and `timeout()`. A plain emit passes a new `{}`: a
 * shared constant for it cost the browser bundle 5 bytes, for an allocation an emit never misses.
 */
interface Flags {
  volatile?: boolean
  timeout?: number
}

/**
 * `socket.volatile`: the same emits, with a flag set. Flags chain in either order and add up
 * (`socket.volatile.timeout(ms)`, `socket.timeout(ms).volatile`).
 */
export interface FlaggedEmitter<EmitEvents extends object> {
  emit<K extends keyof EmitEvents & string>(event: K, ...args: EmitArgs<EmitEvents[K]>): void
  emitWithAck<K extends keyof EmitEvents & string>(
    event: K,
    ...args: ArgsWithoutAck<EmitEvents[K]>
  ): Promise<AckReply<EmitEvents[K]>>
  /** The same emits, volatile. */
  readonly volatile: FlaggedEmitter<EmitEvents>
  /** The same emits with a timeout: ack callbacks become error-first. */
  timeout(ms: number): TimedEmitter<EmitEvents>
}

/**
 * `socket.timeout(ms)`: emits whose reply must come in time; ack callbacks are error-first, and
 * stay so down the chain (`socket.timeout(ms).volatile`).
 */
export interface TimedEmitter<EmitEvents extends object> {
  emit<K extends keyof EmitEvents & string>(event: K, ...args: TimedArgs<EmitEvents[K]>): void
  /**
   * The same emit with a callback that takes the error alone (`(error) => ...`: did the reply
   * come?), which the error-first callback's two shapes would refuse.
   */
  emit<K extends keyof EmitEvents & string>(event: K, ...args: ErrorOnlyArgs<EmitEvents[K]>): void
  emitWithAck<K extends keyof EmitEvents & string>(
    event: K,
    ...args: ArgsWithoutAck<EmitEvents[K]>
  ): Promise<AckReply<EmitEvents[K]>>
  /** The same emits, volatile too. */
  readonly volatile: TimedEmitter<EmitEvents>
  /** The same emits with another timeout (the last one given counts). */
  timeout(ms: number): TimedEmitter<EmitEvents>
}

/**
 * A client socket: one session with the server, over whichever transport works.
 * `ListenEvents` are the events the server emits, `EmitEvents` those the client emits; the last
 * parameter of an `EmitEvents` entry may be the ack callback, whose first parameter is the reply.
 * Made by `connect()`.
 *
 * ```ts
 * const socket = connect<{ chat: (msg: { text: string }) => void }>('https://example.com/parley')
 * socket.on('chat', (msg) => console.log(msg.text))
 * socket.on('disconnect', (reason) => console.log('ended:', reason))
 * ```
 */
export class Socket<
  ListenEvents extends object = DefaultEvents,
  EmitEvents extends object = DefaultEvents,
> extends Emitter<ReservedEvents & ListenEvents> {
  readonly #session: Session

  constructor(url: string | undefined, options?: ClientOptions) {
    super()
    const opts = resolveOptions(options)
    this.#session = new Session(opts, ...baseUrl(url, opts.path), this.#host())
    if (opts.autoConnect) this.connect()
  }

  /**
   * The socket's public id while connected: the same as the server's `socket.id`, safe to show
   * (other clients see it in rooms and presence). A resumed session keeps it; a new session gets
   * a new one. The session id, a bearer secret, stays inside the client.
   */
  get id(): string | undefined {
    return this.#session.id
  }

  /** True when the last OPEN resumed the previous session with nothing lost. */
  get recovered(): boolean {
    return this.#session.recovered
  }

  /** True while a transport is attached: emits go out at once. */
  get connected(): boolean {
    return this.#session.connection.state === State.OPEN
  }

  /** True while connected or trying to (reconnection included). */
  get active(): boolean {
    return this.#session.connection.state !== State.IDLE
  }

  /** The attached transport, or null. */
  get transport(): TransportName | null {
    return this.#session.connection.current?.name ?? null
  }

  /** Starts connecting (only needed with `autoConnect: false`, or after `disconnect()`). */
  connect(): this {
    // A new session, or a resume of the current one.
    this.#session.connection.open()
    return this
  }

  /**
   * Ends the session: tells the server, stops reconnecting, rejects pending replies with
   * PARLEY_DISCONNECTED and drops messages the server has not acknowledged. `connect()` later
   * starts a new session.
   */
  disconnect(): this {
    this.#session.leave()
    return this
  }

  /**
   * Sends an event. A function as last argument is the ack callback: it gets the reply's
   * arguments (and no error: use `timeout(ms)` or `emitWithAck` to hear about failures).
   * Throws a ParleyError, synchronously, when the event cannot be sent: PARLEY_QUEUE_FULL,
   * PARLEY_PAYLOAD_TOO_LARGE, PARLEY_UNSERIALIZABLE, PARLEY_RESERVED_EVENT_NAME, ...; or the
   * application's own ParleyError, untouched, when its toJSON or a getter threw one.
   */
  emit<K extends keyof EmitEvents & string>(event: K, ...args: EmitArgs<EmitEvents[K]>): this {
    this.#emit({}, event, args as unknown[])
    return this
  }

  /** Sends an event and resolves with the reply's first argument; rejects with a ParleyError. */
  emitWithAck<K extends keyof EmitEvents & string>(
    event: K,
    ...args: ArgsWithoutAck<EmitEvents[K]>
  ): Promise<AckReply<EmitEvents[K]>> {
    return this.#withAck({}, event, args as unknown[])
  }

  /**
   * Volatile emits: no sequence number, never kept or replayed, dropped when not connected (a
   * reply awaited for a dropped one rejects at once with PARLEY_DISCONNECTED). Chains with
   * `timeout(ms)`: `socket.volatile.timeout(ms).emit(...)`.
   */
  get volatile(): FlaggedEmitter<EmitEvents> {
    return this.#flagged({}).volatile
  }

  /**
   * Emits whose reply must come within `ms`; their ack callback is error-first
   * (`(err, reply) => ...`), with PARLEY_ACK_TIMEOUT, PARLEY_DISCONNECTED or the server's code.
   * Throws a TypeError (PARLEY_INVALID_ARGUMENT) when `ms` is not a number >= 0 (Infinity: no
   * timeout): a mistake in the calling code rather than an outcome to handle. Chains with
   * `volatile`: `socket.timeout(ms).volatile.emit(...)`.
   */
  timeout(ms: number): TimedEmitter<EmitEvents> {
    return this.#flagged({}).timeout(ms)
  }

  /** The emits under `flags`, and the way to add more: each link of a chain is a new object. */
  #flagged(flags: Flags): FlaggedEmitter<EmitEvents> & TimedEmitter<EmitEvents> {
    // The `volatile` getter has a `this` of its own (the object), hence `self`.
    const self = this
    return {
      emit: (event: string, ...args: unknown[]) => this.#emit(flags, event, args),
      emitWithAck: (event, ...args) => this.#withAck(flags, event, args as unknown[]),
      get volatile() {
        return self.#flagged({ ...flags, volatile: true })
      },
      timeout: (ms) => {
        if (!(typeof ms === 'number' && ms >= 0)) throw misuse('timeout must be a number >= 0')
        return self.#flagged({ ...flags, timeout: ms })
      },
    }
  }

  // `args` here and below is always the caller's rest array, fresh per call: it is the packet's
  // own from now on (no copy).
  #withAck<R>(flags: Flags, event: string, args: unknown[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const settle: Settle = (err, reply) => (err ? reject(err) : resolve(reply[0] as R))
      this.#send(flags, event, args, settle, flags.timeout ?? this.#session.opts.ackTimeout)
    })
  }

  #emit(flags: Flags, event: string, args: unknown[]): void {
    let settle: Settle | undefined
    const last = args.at(-1)
    if (typeof last === 'function') {
      args.pop()
      // `last` itself, narrowed to a function: a copy under the callback's type is one more
      // variable in the bundle.
      settle =
        flags.timeout !== undefined
          ? (err, reply) => (err ? last(err) : last(null, ...reply))
          : (err, reply) => {
              if (!err) last(...reply)
            }
    }
    this.#send(flags, event, args, settle)
  }

  /** Sends an event; `settle`, if any, hears its reply (within `timeout` ms, if any). */
  #send(flags: Flags, event: string, args: unknown[], settle?: Settle, timeout = flags.timeout): void {
    const bad = checkEventName(event)
    if (bad) throw bad
    // Its errors name the event, as those of an emit that cannot be sent do (see `about`).
    const prefix = aboutEvent(event)
    const ackId = settle ? this.#session.acks.register(settle, timeout, prefix) : 0
    const packet = (seq: number) => ({
      type: PacketType.EVENT,
      seq,
      name: event,
      args: args as WireValue[],
      ackId,
    })
    // Forgetting or settling ack id 0, which no wait has, does nothing.
    try {
      if (!flags.volatile) this.#session.sendNumbered(packet)
      // Volatile: dropped when not connected. No reply can come then: the wait ends now, but
      // after `emit` returns, as every other outcome of it does.
      else if (!this.#session.sendVolatile(packet(0))) {
        queueMicrotask(() =>
          this.#session.acks.settle(ackId, new ParleyError(ErrorCode.DISCONNECTED, `${prefix}not connected`)),
        )
      }
    } catch (err) {
      this.#session.acks.forget(ackId)
      throw err
    }
  }

  /** What the session calls: events, replies and the socket's own events. */
  #host(): SessionHost {
    return {
      event: (p) => {
        // The decoder made this array for this packet alone: the handler's arguments, as they are.
        const { name, ackId, args }: { name: string; ackId: number; args: unknown[] } = p
        if (!ackId) {
          this.fire(name as keyof (ReservedEvents & ListenEvents), args)
          return
        }
        // A request, answered once: by its listener's reply, or an ERROR when a listener failed
        // or none listens (else the server would wait for its whole timeout), whichever comes
        // first. An answer that cannot be sent (`ack(10n)` throws its coded error) uses nothing up.
        let answered: boolean | undefined
        // An answer given once its session is gone (a CLOSE, disconnect(), a new session) is
        // dropped: the next session would read its ack id as one of its own requests'.
        // Each answer carries the event's `name`, off the wire: one that cannot be sent (too large,
        // not JSON) says which request it answers.
        const id = this.id
        const answer = (make: (seq: number) => Sent) => {
          if (answered || id !== this.id) return
          this.#session.sendNumbered(make)
          answered = true
        }
        // Kept and numbered as any answer: with the queue full (a failing listener may have
        // filled it) it cannot be, and is dropped (the server's wait times out), rather than
        // PARLEY_QUEUE_FULL thrown into the transport's code, which reads the next packets.
        // Whatever else keeps it from going (past maxPayload: the message quotes the event's
        // name) is dropped too, but the application hears it, by `error`.
        const refuse = (code: ErrorCode, message: string) => {
          try {
            answer((seq) => ({ type: PacketType.ERROR, seq, ackId, name, code, message }))
          } catch (err) {
            if ((err as ParleyError).code !== ErrorCode.QUEUE_FULL) this.fire('error', [err])
          }
        }
        args.push((...reply: unknown[]) =>
          answer((seq) => ({ type: PacketType.REPLY, seq, ackId, name, args: reply as WireValue[] })),
        )
        if (
          !this.fire(name as keyof (ReservedEvents & ListenEvents), args, () =>
            refuse(ErrorCode.HANDLER_ERROR, 'the handler failed'),
          )
        ) {
          refuse(ErrorCode.NO_HANDLER, `no handler for "${name}"`)
        }
      },
      fire: (event, ...args) => this.fire(event, args),
    }
  }
}
