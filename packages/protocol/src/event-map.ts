// The types that turn an event map into the signatures of `on`, `emit`, `emitWithAck` and their
// ack callbacks, for the server and the client alike: one definition, so that both ends type an
// event with an ack the same way (a client's `emitWithAck('chat', msg)` resolves with what the
// server's `ack` takes). Re-exported by @parley/server and @parley/client.
//
// Types only: nothing here runs, and the client's bundle gains nothing from it.

import type { ParleyError } from './errors.js'

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

/**
 * The parameters of a listener type (never for what is not a function). Unlike `Parameters`, it
 * takes any type: the client's maps are any `object`, whose entries the compiler cannot tell are
 * functions.
 */
type Args<F> = F extends (...args: infer A) => unknown ? A : never

/** The last element of a tuple; undefined for an empty one. */
type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : undefined

/** The arguments of an event without its trailing ack callback (all of them when it has none). */
export type ArgsWithoutAck<F> = Args<F> extends [...infer Head, (...reply: never[]) => void] ? Head : Args<F>

/**
 * Any value: `unknown` spelled as a union, so that a callback in its place still has its
 * parameters typed from the callback type beside it (`unknown | F` is `unknown`, which types none:
 * under `strict`, `(reply) => ...` would not compile).
 */
type AnyValue = NonNullable<unknown> | null | undefined

/**
 * The arguments of an event that takes any (`(...args: any[]) => void`, as every event of the
 * default map does): any values, a spread array too, the last of which may be the callback `Ack`
 * (the runtime takes only a last function for one).
 */
type UntypedArgs<Ack> = (AnyValue | Ack)[]

/** Whether an event takes any number of arguments of any type: an untyped one. */
type TakesAnything<F> = unknown[] extends Args<F> ? true : false

/**
 * An event's arguments as `emit` takes them: all of them, or all but a trailing ack callback (the
 * event goes either way; without a callback nobody hears the reply). An untyped event's callback
 * takes the reply as `unknown`, as `emitWithAck` resolves with it.
 */
export type EmitArgs<F> =
  TakesAnything<F> extends true ? UntypedArgs<(...reply: unknown[]) => void> : Args<F> | ArgsWithoutAck<F>

/** What `emitWithAck` resolves with: the first argument of the event's ack callback. */
export type AckReply<F> = Last<Args<F>> extends (reply: infer R, ...rest: never[]) => void ? R : unknown

/**
 * The error-first callback `timeout(ms).emit` calls: `(error)` or `(null, ...reply)` (checking
 * `error` narrows the reply).
 */
export type TimedAck<R extends unknown[]> = (
  ...result: [error: ParleyError<string>, reply: undefined] | [error: null, ...reply: R]
) => void

/** The error-first callback of `timeout(ms).emit`, of an untyped event. */
export type TimeoutAckCallback = (error: ParleyError<string> | null, ...reply: unknown[]) => void

/**
 * An event's arguments as `timeout(ms).emit` takes them: a trailing ack callback becomes
 * error-first (`TimedAck`), or is left out. An untyped event's: any values, the last of which may
 * be that callback.
 */
export type TimedArgs<F> =
  TakesAnything<F> extends true
    ? UntypedArgs<TimedAck<unknown[]>>
    : Last<Args<F>> extends (...reply: infer R) => void
      ? [...ArgsWithoutAck<F>, TimedAck<R>] | ArgsWithoutAck<F>
      : Args<F>

/**
 * An event's arguments with, for its ack callback, one that takes the error alone
 * (`(error) => ...`: did the reply come?), which the two shapes of `TimedAck` would refuse.
 */
export type ErrorOnlyArgs<F> =
  TakesAnything<F> extends true
    ? // The same as `TimedArgs`: the compiler's first, stricter pass over the overloads may
      // reach this one with the callback (an object literal before it fails the first overload
      // there), and the first overload to type a callback's parameters types them.
      UntypedArgs<TimedAck<unknown[]>>
    : Last<Args<F>> extends (...reply: never[]) => void
      ? [...ArgsWithoutAck<F>, (error: ParleyError<string> | null) => void]
      : never

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
export type BroadcastArgs<F> =
  TakesAnything<F> extends true
    ? UntypedArgs<BroadcastAckCallback>
    : ArgsWithoutAck<F> | [...ArgsWithoutAck<F>, BroadcastAckCallback<AckReply<F>>]
