import type { ServerResponse } from 'node:http'

/** A transport that holds open responses (a poll waiting for packets, an event stream). */
export interface ResponseHolder {
  /** The response closed: answered and sent, or its client went away. */
  heldResponseClosed(res: ServerResponse): void
}

/**
 * Which transport holds each open response, for the one `close` listener they all share. A
 * listener made per transport (a closure over it, with its context) would sit on every held
 * poll and event stream for as long as it lasts: about 100 bytes of heap per idle client.
 */
const holders = new WeakMap<ServerResponse, ResponseHolder>()

/**
 * `close` listeners put on every response of a server that pass each close on here
 * (`passHeldClose`): the connection count of `IdleConnections`. A held response that carries
 * one needs no listener of the transports' own. Node keeps an event's only listener as it is,
 * and two in an array of their own: 64 bytes more per held poll and event stream, for as long
 * as the client is idle.
 */
const relays = new WeakSet<(this: ServerResponse) => void>()

/** Makes `listener`, which calls `passHeldClose(this)`, stand for the transports' own. */
export function relaysHeldCloses(listener: (this: ServerResponse) => void): void {
  relays.add(listener)
}

/** Tells the transport that holds `res`, if one does, that it closed. */
export function passHeldClose(res: ServerResponse): void {
  const holder = holders.get(res)
  if (!holder) return
  holders.delete(res)
  holder.heldResponseClosed(res)
}

// An emitter calls its listeners with itself as `this`.
function heldClosed(this: ServerResponse): void {
  passHeldClose(this)
}

/** Tells `holder` when `res` closes. */
export function watchHeld(res: ServerResponse, holder: ResponseHolder): void {
  holders.set(res, holder)
  // A response made elsewhere than on the server's `request` event (one another node routed
  // here, an HTTP/2 stream's) has no relay: it gets the shared listener.
  if (res.listeners('close').some((listener) => relays.has(listener as (this: ServerResponse) => void)))
    return
  // `on`, not `once`: a response closes once, and `once` would wrap the listener anew each time.
  res.on('close', heldClosed)
}
