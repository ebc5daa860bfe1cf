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

// An emitter calls its listeners with itself as `this`.
function heldClosed(this: ServerResponse): void {
  const holder = holders.get(this)
  holders.delete(this)
  holder?.heldResponseClosed(this)
}

/** Tells `holder` when `res` closes. */
export function watchHeld(res: ServerResponse, holder: ResponseHolder): void {
  holders.set(res, holder)
  // `on`, not `once`: a response closes once, and `once` would wrap the listener anew each time.
  res.on('close', heldClosed)
}
