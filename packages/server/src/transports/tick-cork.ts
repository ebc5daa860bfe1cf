/** A connection's socket, as far as the transports cork and write it. */
export interface Corkable {
  cork(): void
  uncork(): void
  /** How many times it was corked and not yet uncorked (Node's `writable.writableCorked`). */
  readonly writableCorked: number
  write?(chunk: Uint8Array | string): boolean
}

/**
 * Sockets corked in this tick, uncorked together in one `process.nextTick`: a broadcast to a
 * thousand connections schedules one callback, not a thousand.
 */
const corked: Corkable[] = []

function uncorkAll(): void {
  // Uncorking writes; a write cannot cork again in this loop (sends come from application
  // code, not from writes), but take the list first so that one that did would start a new one.
  const list = corked.splice(0, corked.length)
  for (const socket of list) socket.uncork()
}

/**
 * Corks `socket` until the end of this tick, unless it is corked already: what is written to it
 * meanwhile (the replies to one TCP read, a broadcast's share) leaves in one write, one system
 * call, instead of one each. Uncorked before any I/O, so nothing waits longer.
 */
export function corkForTick(socket: Corkable): void {
  if (socket.writableCorked > 0) return
  socket.cork()
  if (corked.push(socket) === 1) process.nextTick(uncorkAll)
}

/** `socket` when it has what `corkForTick` needs, else undefined. */
export function corkable(socket: Partial<Corkable> | null | undefined): Corkable | undefined {
  return typeof socket?.cork === 'function' &&
    typeof socket.uncork === 'function' &&
    typeof socket.writableCorked === 'number'
    ? (socket as Corkable)
    : undefined
}
