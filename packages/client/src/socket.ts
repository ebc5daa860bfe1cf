import {
  type CloseReason,
  ErrorCode,
  type HelloPacket,
  type Packet,
  ParleyError,
  type TransportName,
  type WireValue,
} from '@parley/protocol'
import { AckManager, type Settle } from './acks.js'
import { badName } from './codec.js'
import { type Args, Emitter } from './emitter.js'
import { Connection, type ConnectionHost, type SwitchReason } from './fallback.js'
import { pickStorage, TransportMemory } from './memory.js'
import { baseUrl, type ClientOptions, type ResolvedOptions, resolveOptions } from './options.js'
import * as PacketType from './packet-type.js'
import { outgoing, Session } from './session.js'
import { PollingTransport } from './transports/polling.js'
import { SseTransport } from './transports/sse.js'
import type { Transport } from './transports/transport.js'
import { WebSocketTransport } from './transports/websocket.js'

/** An event map that allows anything: what an untyped socket uses. */
// biome-ignore lint/suspicious/noExplicitAny: the default map must accept any listener or payload.
export type DefaultEvents = { [event: string]: (...args: any[]) => void }

/** Events of the socket itself; they can never come from the server (their names are reserved). */
export interface ReservedEvents {
  /** Connected: first time, or again after a `disconnect`. Check `socket.recovered`. */
  connect: () => void
  /** The connection ended (the session may still resume: then `connect` comes with `recovered`). */
  disconnect: (reason: CloseReason, details?: { message: string }) => void
  /**
   * A connection attempt failed; `error.code` may be the server's refusal code. `willRetry`
   * says whether the client goes on by itself (false after a refusal, with `reconnection:
   * false`, or when `reconnectionAttempts` ran out: then call `connect()` to try again).
   */
  connect_error: (error: ParleyError<string>, willRetry: boolean) => void
  /**
   * One transport could not be opened (refused, reset, timed out, or opened but silent); the
   * client goes on with the next one. Says why a session ended up on SSE or polling.
   */
  transport_error: (transport: TransportName, error: ParleyError<string>) => void
  /** The session moved to another transport without the application losing anything. */
  transport: (now: TransportName, before: TransportName, why: SwitchReason) => void
  /** A reconnection attempt (1, 2, ...) starts. */
  reconnect_attempt: (attempt: number) => void
  /** Connected again after `attempt` failed attempts. */
  reconnect: (attempt: number) => void
  /** `reconnectionAttempts` ran out; call `connect()` to try again. */
  reconnect_failed: () => void
  /** The server sent an error that answers no request of ours (an ERROR with ackId 0). */
  error: (error: ParleyError<string>) => void
}

type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : undefined
type Init<T extends unknown[]> = T extends [...infer H, unknown] ? H : T
/** What `emitWithAck` resolves with: the first argument of the event's ack callback. */
export type AckReply<F> = Last<Args<F>> extends (reply: infer R, ...rest: never[]) => void ? R : unknown

/** Options of one emit, set by `volatile` and `timeout()`. */
interface Flags {
  volatile?: boolean
  timeout?: number
}

/** The flags of a plain emit, shared: an emit allocates none. */
const NO_FLAGS: Flags = {}

/** `socket.volatile`: the same emits, with a flag set. */
export interface FlaggedEmitter<EmitEvents extends object> {
  emit<K extends keyof EmitEvents & string>(event: K, ...args: Args<EmitEvents[K]>): void
  emitWithAck<K extends keyof EmitEvents & string>(
    event: K,
    ...args: Init<Args<EmitEvents[K]>>
  ): Promise<AckReply<EmitEvents[K]>>
}

/**
 * An event's arguments as `timeout(ms).emit` takes them: a trailing ack callback becomes
 * error-first, called either with the error alone or with `null` and the reply's arguments
 * (checking `error` narrows the reply).
 */
export type TimedArgs<F> =
  Last<Args<F>> extends (...reply: infer R) => void ? [...Init<Args<F>>, TimedAck<R>] : Args<F>

/** The error-first callback `timeout(ms).emit` calls: `(error)` or `(null, ...reply)`. */
export type TimedAck<R extends unknown[]> = (
  ...result: [error: ParleyError<string>, reply: undefined] | [error: null, ...reply: R]
) => void

/** `socket.timeout(ms)`: emits whose reply must come in time; ack callbacks are error-first. */
export interface TimedEmitter<EmitEvents extends object> {
  emit<K extends keyof EmitEvents & string>(event: K, ...args: TimedArgs<EmitEvents[K]>): void
  emitWithAck<K extends keyof EmitEvents & string>(
    event: K,
    ...args: Init<Args<EmitEvents[K]>>
  ): Promise<AckReply<EmitEvents[K]>>
}

/**
 * A client socket: one session with the server, over whichever transport works.
 * `ListenEvents` are the events the server emits, `EmitEvents` those the client emits; the last
 * parameter of an `EmitEvents` entry may be the ack callback, whose first parameter is the reply.
 */
export class Socket<
  ListenEvents extends object = DefaultEvents,
  EmitEvents extends object = DefaultEvents,
> extends Emitter<ReservedEvents & ListenEvents> {
  /**
   * The socket's public id while connected: the same as the server's `socket.id`, safe to show
   * (other clients see it in rooms and presence). A resumed session keeps it; a new session gets
   * a new one. The session id, a bearer secret, stays inside the client.
   */
  id: string | undefined
  /** True when the last OPEN resumed the previous session with nothing lost. */
  recovered = false
  readonly #opts: ResolvedOptions
  readonly #session: Session
  readonly #acks: AckManager
  readonly #connection: Connection
  /** True between `connect` and `disconnect` as the application saw them. */
  #up = false

  constructor(url: string | undefined, options?: ClientOptions) {
    super()
    const opts = resolveOptions(options)
    this.#opts = opts
    const base = baseUrl(url, opts.path)
    const fetchFn = opts.fetch ?? globalThis.fetch?.bind(globalThis)
    const factory = (name: TransportName, maxPayload: number): Transport => {
      if (name === 'websocket')
        return new WebSocketTransport(`${base.replace(/^http/, 'ws')}/ws?v=1`, opts.WebSocket, maxPayload)
      return name === 'sse'
        ? new SseTransport(`${base}/sse`, fetchFn, maxPayload)
        : new PollingTransport(`${base}/poll`, fetchFn, maxPayload)
    }
    this.#session = new Session(
      opts,
      (ack) => this.#connection.send([outgoing({ type: PacketType.ACK, ack })]),
      // Over SSE and polling an ACK alone is a whole POST: it waits longer for company.
      () => (this.transport === 'websocket' ? 200 : 1000),
    )
    this.#acks = new AckManager(opts.maxPendingAcks)
    const memory = new TransportMemory(pickStorage(opts.storage), base)
    this.#connection = new Connection(opts, factory, memory, this.#host(), () => this.#session.maxPayload)
    if (opts.autoConnect) this.connect()
  }

  /** True while a transport is attached: emits go out at once. */
  get connected(): boolean {
    return this.#connection.state === 'open'
  }

  /** True while connected or trying to (reconnection included). */
  get active(): boolean {
    return this.#connection.state !== 'idle'
  }

  /** The attached transport, or null. */
  get transport(): TransportName | null {
    return this.#connection.transport
  }

  /** Starts connecting (only needed with `autoConnect: false`, or after `disconnect()`). */
  connect(): this {
    this.#connection.open()
    return this
  }

  /**
   * Ends the session: tells the server, stops reconnecting, rejects pending replies with
   * PARLEY_DISCONNECTED and drops messages the server has not acknowledged. `connect()` later
   * starts a new session.
   */
  disconnect(): this {
    if (this.#connection.state === 'open') {
      this.#connection.send([
        outgoing({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'the client disconnected' }),
      ])
    }
    this.#connection.close()
    this.#end()
    if (this.#up) {
      this.#up = false
      this.#fireAny('disconnect', ['client disconnect'])
    }
    return this
  }

  /**
   * Sends an event. A function as last argument is the ack callback: it gets the reply's
   * arguments (and no error: use `timeout(ms)` or `emitWithAck` to hear about failures).
   * Throws a ParleyError, synchronously, when the event cannot be sent: PARLEY_QUEUE_FULL,
   * PARLEY_PAYLOAD_TOO_LARGE, PARLEY_UNSERIALIZABLE, PARLEY_RESERVED_EVENT_NAME, ...
   */
  emit<K extends keyof EmitEvents & string>(event: K, ...args: Args<EmitEvents[K]>): this {
    this.#emit(NO_FLAGS, event, args as unknown[])
    return this
  }

  /** Sends an event and resolves with the reply's first argument; rejects with a ParleyError. */
  emitWithAck<K extends keyof EmitEvents & string>(
    event: K,
    ...args: Init<Args<EmitEvents[K]>>
  ): Promise<AckReply<EmitEvents[K]>> {
    return this.#withAck(NO_FLAGS, event, args as unknown[])
  }

  /** Volatile emits: no sequence number, never kept or replayed, dropped when not connected. */
  get volatile(): FlaggedEmitter<EmitEvents> {
    return this.#flagged({ volatile: true })
  }

  /**
   * Emits whose reply must come within `ms`; their ack callback is error-first
   * (`(err, reply) => ...`), with PARLEY_ACK_TIMEOUT, PARLEY_DISCONNECTED or the server's code.
   */
  timeout(ms: number): TimedEmitter<EmitEvents> {
    if (!(ms >= 0)) throw new RangeError('timeout must be a non-negative number of ms')
    return this.#flagged({ timeout: ms })
  }

  #flagged(flags: Flags): FlaggedEmitter<EmitEvents> & TimedEmitter<EmitEvents> {
    return {
      emit: (event: string, ...args: unknown[]) => this.#emit(flags, event, args),
      emitWithAck: (event, ...args) => this.#withAck(flags, event, args as unknown[]),
    }
  }

  // `args` here and below is always the caller's rest array, fresh per call: it is the packet's
  // own from now on (no copy).
  #withAck<R>(flags: Flags, event: string, args: unknown[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#send(flags.volatile, flags.timeout ?? this.#opts.ackTimeout, event, args, (err, reply) =>
        err ? reject(err) : resolve(reply[0] as R),
      )
    })
  }

  #emit(flags: Flags, event: string, args: unknown[]): void {
    let settle: Settle | undefined
    const last = args[args.length - 1]
    if (typeof last === 'function') {
      args.pop()
      const cb = last as (...a: unknown[]) => void
      settle =
        flags.timeout !== undefined
          ? (err, reply) => (err ? cb(err) : cb(null, ...reply))
          : (err, reply) => {
              if (!err) cb(...reply)
            }
    }
    this.#send(flags.volatile, flags.timeout, event, args, settle)
  }

  /** Sends an event; `settle`, if any, hears its reply (within `timeout` ms, if any). */
  #send(
    volatile: boolean | undefined,
    timeout: number | undefined,
    event: string,
    args: unknown[],
    settle?: Settle,
  ): void {
    const bad = badName(event)
    if (bad) throw bad
    if (volatile) {
      if (!this.connected) return
      const ackId = settle ? this.#acks.register(settle, timeout) : 0
      try {
        this.#connection.send([
          outgoing({ type: PacketType.EVENT, seq: 0, name: event, args: args as WireValue[], ackId }),
        ])
      } catch (err) {
        if (ackId) this.#acks.cancel(ackId)
        throw err
      }
      return
    }
    const ackId = settle ? this.#acks.register(settle, timeout) : 0
    let item: ReturnType<Session['keep']>
    try {
      item = this.#session.keep((seq) => ({
        type: PacketType.EVENT,
        seq,
        name: event,
        args: args as WireValue[],
        ackId,
      }))
    } catch (err) {
      if (ackId) this.#acks.cancel(ackId)
      throw err
    }
    // Not connected: it stays kept, and goes out after the next OPEN.
    this.#connection.send([item])
  }

  /** Fires an event of the application's map with data from the wire. */
  #fireAny(event: string, args: unknown[]): void {
    this.fire(event as keyof (ReservedEvents & ListenEvents), args)
  }

  /** Drops the session for good: the application disconnected, or reconnecting stopped. */
  #end(): void {
    this.#session.clear()
    this.#acks.rejectAll(new ParleyError(ErrorCode.DISCONNECTED, 'the session ended before the reply came'))
    this.id = undefined
  }

  /** What the connection calls: the socket's side of every attach, packet and loss. */
  #host(): ConnectionHost {
    return {
      hello: async () => {
        const a = this.#opts.auth
        const auth = typeof a === 'function' ? await a() : a
        const hello: HelloPacket = { type: PacketType.HELLO }
        if (auth !== undefined) hello.auth = auth
        if (this.#session.sid) {
          hello.sid = this.#session.sid
          hello.ack = this.#session.inSeq
        }
        return hello
      },
      opened: (open, now, before, why, attempt) => {
        const fresh = this.#session.opened(open)
        this.id = open.id
        this.recovered = !fresh
        // Everything the server lacks, in order, before anything new.
        if (this.#session.kept.length > 0) this.#connection.send(this.#session.kept)
        if (this.#up && fresh) {
          // A silent resume found the session gone: the application must hear it was cut.
          this.#up = false
          this.#fireAny('disconnect', ['session expired'])
        }
        if (!this.#up) {
          this.#up = true
          this.#fireAny('connect', [])
          if (attempt > 0) this.#fireAny('reconnect', [attempt])
        } else if (before !== null) this.#fireAny('transport', [now, before, why])
      },
      packet: (p) => this.#packet(p),
      down: (reason) => {
        if (!this.#up) return
        this.#up = false
        this.#fireAny('disconnect', [reason])
      },
      notify: (event, ...args) => this.#fireAny(event, args),
    }
  }

  #packet(p: Packet): void {
    switch (p.type) {
      case PacketType.EVENT: {
        if (p.seq > 0 && !this.#accept(p.seq)) return
        // The decoder made this array for this packet alone: the handler's arguments, as they are.
        const args: unknown[] = p.args
        if (p.ackId > 0) args.push(this.#replier(p.ackId))
        this.#fireAny(p.name, args)
        return
      }
      case PacketType.REPLY:
        if (p.seq > 0 && !this.#accept(p.seq)) return
        this.#acks.settle(p.ackId, null, p.args)
        return
      case PacketType.ERROR: {
        if (p.seq > 0 && !this.#accept(p.seq)) return
        const error = new ParleyError<string>(p.code, p.message)
        if (p.ackId > 0) this.#acks.settle(p.ackId, error, [])
        else this.#fireAny('error', [error])
        return
      }
      case PacketType.ACK:
        this.#session.acked(p.ack)
        return
      case PacketType.CLOSE: {
        // The session is over. Reconnect (to a new session) unless a person ended it.
        const again =
          this.#opts.reconnection && p.reason !== 'server disconnect' && p.reason !== 'client disconnect'
        this.#session.forget()
        this.id = undefined
        if (!again) this.#end()
        this.#connection.ended(again, p.retryAfter)
        if (this.#up) {
          this.#up = false
          this.#fireAny('disconnect', [p.reason, { message: p.message }])
        }
        return
      }
      default:
      // OPEN, HELLO, PONG outside a handshake mean nothing to a client.
    }
  }

  /** The ordering rule: true to deliver; duplicates are dropped, a gap means resume. */
  #accept(seq: number): boolean {
    const receipt = this.#session.receive(seq)
    if (receipt === 'gap') this.#connection.lost('transport close')
    return receipt === 'deliver'
  }

  /** The ack function handed to a handler of a server event that wants a reply. */
  #replier(ackId: number): (...args: unknown[]) => void {
    let used = false
    return (...args) => {
      if (used) return
      used = true
      const item = this.#session.keep((seq) => ({
        type: PacketType.REPLY,
        seq,
        ackId,
        args: args as WireValue[],
      }))
      this.#connection.send([item])
    }
  }
}
