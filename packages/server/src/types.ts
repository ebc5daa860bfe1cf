import type { IncomingHttpHeaders } from 'node:http'
import type { CloseReason, JsonValue, ParleyError, TransportName } from '@parley/protocol'

/**
 * An event map: event name -> the listener's signature. When the sender wants a reply, the
 * listener's last parameter is the ack function, e.g.
 * `{ chat: (msg: { text: string }, ack: (reply: { ok: boolean }) => void) => void }`.
 */
// `any` (not a function type) so that plain interfaces satisfy it: interfaces have no implicit
// index signature, except against `any`.
// biome-ignore lint/suspicious/noExplicitAny: the constraint of user event maps, as in socket.io.
export type EventsMap = { [event: string]: any }

/** The map used when none is given: any event, any arguments. */
export interface DefaultEventsMap {
  // biome-ignore lint/suspicious/noExplicitAny: see EventsMap.
  [event: string]: (...args: any[]) => void
}

/** The names of a map's events. */
export type EventNames<M extends EventsMap> = keyof M & string

type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : never

/** The arguments of an event without its trailing ack callback. */
export type ArgsWithoutAck<F extends (...args: never[]) => void> =
  Parameters<F> extends [...infer Head, (...reply: never[]) => void] ? Head : Parameters<F>

/**
 * Any value: `unknown` spelled as a union, so that a callback in its place still has its
 * parameters typed from the callback type beside it (`unknown | F` is `unknown`, which types none:
 * under `strict`, `(reply) => ...` would not compile).
 */
type AnyValue = NonNullable<unknown> | null | undefined

/** Whether an event takes any number of arguments of any type: an untyped one. */
type TakesAnything<F extends (...args: never[]) => void> = unknown[] extends Parameters<F> ? true : false

/**
 * An event's arguments as `socket.emit` takes them: all of them, or all but a trailing ack
 * callback (the event goes either way; without a callback nobody hears the reply), as the
 * client's `emit` takes them. Those of an event that takes any (`(...args: any[]) => void`, as
 * every event of the default map does): any values, a spread array too, the last of which may be
 * the reply callback (the runtime takes only a last function for one), which takes the reply as
 * `unknown`, as `emitWithAck` resolves with it.
 */
export type EmitArgs<F extends (...args: never[]) => void> =
  TakesAnything<F> extends true
    ? (AnyValue | ((...reply: unknown[]) => void))[]
    : Parameters<F> | ArgsWithoutAck<F>

/** What `emitWithAck` resolves with: the first argument of the event's ack callback. */
export type AckReply<F extends (...args: never[]) => void> =
  Last<Parameters<F>> extends (reply: infer R, ...rest: never[]) => void ? R : unknown

/** Lifecycle events of a server-side socket. These names can never arrive from a client. */
export interface SocketReservedEvents {
  /** The session is ending; `socket.rooms` still holds its rooms (they are left right after). */
  disconnecting: (reason: CloseReason) => void
  /**
   * The session ended here, with the reason; the socket is dead and has left every room. With
   * 'server handoff' the session did not end for the client: this node drained and another one
   * took it over (where `app.parley` fires `restored` for it).
   */
  disconnect: (reason: CloseReason) => void
  /**
   * The session's transport changed: a resume, an upgrade or a step down (`now` is the new one),
   * or the transport was lost and the session waits for a resume (`now` is null).
   */
  transport: (now: TransportName | null, before: TransportName | null) => void
}

/**
 * The error-first callback of a broadcast that asked for replies: every reply (the first argument
 * of each socket's ack), in arrival order.
 */
export type BroadcastAckCallback<R = unknown> = (error: ParleyError<string> | null, replies: R[]) => void

/**
 * An event's arguments as a broadcast's `emit` takes them: all but the event's ack callback,
 * with a `BroadcastAckCallback` in its place or none (the callback of one socket's reply could
 * not hear every socket's). An untyped event's: any values, the last of which may be that
 * callback.
 */
export type BroadcastArgs<F extends (...args: never[]) => void> =
  TakesAnything<F> extends true
    ? (AnyValue | BroadcastAckCallback)[]
    : ArgsWithoutAck<F> | [...ArgsWithoutAck<F>, BroadcastAckCallback<AckReply<F>>]

/** The error-first callback of `socket.timeout(ms).emit(...)`, of an untyped event. */
export type TimeoutAckCallback = (error: ParleyError<string> | null, ...reply: unknown[]) => void

/**
 * The error-first callback `socket.timeout(ms).emit` calls: `(error)` or `(null, ...reply)`
 * (checking `error` narrows the reply), as the client's `TimedAck`.
 */
export type TimedAck<R extends unknown[]> = (
  ...result: [error: ParleyError<string>, reply: undefined] | [error: null, ...reply: R]
) => void

/**
 * An event's arguments as `socket.timeout(ms).emit` takes them: a trailing ack callback becomes
 * error-first (`TimedAck`), or is left out. An untyped event's: any values, the last of which may
 * be that callback.
 */
export type TimedArgs<F extends (...args: never[]) => void> =
  TakesAnything<F> extends true
    ? (AnyValue | TimedAck<unknown[]>)[]
    : Last<Parameters<F>> extends (...reply: infer R) => void
      ? [...ArgsWithoutAck<F>, TimedAck<R>] | ArgsWithoutAck<F>
      : Parameters<F>

/**
 * An event's arguments with, for its ack callback, one that takes the error alone
 * (`(error) => ...`: did the reply come?), which the two shapes of `TimedAck` would refuse.
 */
export type ErrorOnlyArgs<F extends (...args: never[]) => void> =
  TakesAnything<F> extends true
    ? // The same as `TimedArgs`: the compiler's first, stricter pass over the overloads may
      // reach this one with the callback, and the first overload to type a callback's
      // parameters types them.
      (AnyValue | TimedAck<unknown[]>)[]
    : Last<Parameters<F>> extends (...reply: never[]) => void
      ? [...ArgsWithoutAck<F>, (error: ParleyError<string> | null) => void]
      : never

/**
 * What the server knew about the client when it last attached (every resume updates it). It
 * reads, spreads and serialises as a plain object; `headers` and `query` are made when first
 * read (the same object on every read after), and `time` is `issued` written out.
 */
export interface Handshake {
  /**
   * Headers of the HTTP request that carried the HELLO (the upgrade or the POST); of an upgrade,
   * without those of the upgrade itself (`connection`, `upgrade`, `sec-websocket-*`), which
   * describe the transport and would otherwise be kept for the connection's life.
   */
  headers: IncomingHttpHeaders
  /** Query parameters of that request. */
  query: Record<string, string>
  /** The `auth` value of the HELLO packet. */
  auth: JsonValue | undefined
  /** The client's IP address, as Fastify sees it (honours `trustProxy`). */
  address: string
  /** When the handshake happened, as an ISO date. */
  time: string
  /** When the handshake happened, in ms since the epoch. */
  issued: number
  /** The transport that carried the HELLO. */
  transport: TransportName
  /**
   * The URL of that request as it came, path and query (`/acme/parley/ws?v=1`): under a Fastify
   * prefix, the prefix as the client wrote it.
   */
  url: string
  /**
   * The route parameters of that request, as Fastify's `request.params` gives them: under a
   * prefix with a parameter (`/:tenant`), `{ tenant: 'acme' }` at `/acme/parley`; `{}` without.
   * A session keeps the parameters it opened with: a request or resume of it under others is
   * refused (see the README, "A prefix with a parameter").
   */
  params: Record<string, string>
}
