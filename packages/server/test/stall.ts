// How the tests of a stalled server thread stall it: the server runs in the test's thread, its
// client in a thread of its own, held back by the gate of stall-gate.ts until the stall has begun.
import type { Server } from 'node:http'
import { HOLD, type MUTE, SENT, STALLED, STATE } from './stall-gate.js'

/**
 * Sets the gate to `state`, then blocks this thread `ms` from the check phase of this turn
 * (blocked in the timers phase, Node would go on with the loop time read before the stall, and
 * read the input before the timers that ran out meanwhile), letting a held client go as the stall
 * begins; resolves once the stall ended, with whether the client sent anything meanwhile.
 */
export function stallFromCheckPhase(
  gate: Int32Array,
  state: typeof HOLD | typeof MUTE,
  ms: number,
): Promise<boolean> {
  Atomics.store(gate, STATE, state)
  return new Promise((resolve) =>
    setImmediate(() => {
      const sent = Atomics.load(gate, SENT)
      if (state === HOLD) {
        Atomics.store(gate, STATE, STALLED)
        Atomics.notify(gate, STATE)
      }
      // Blocked: a wait on a value nothing changes.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
      resolve(Atomics.load(gate, SENT) > sent)
    }),
  )
}

/** A client thread's wait for the stall to begin (bounded: a test that never stalls lets it go). */
export function awaitStall(gate: Int32Array, boundMs: number): void {
  const end = performance.now() + boundMs
  for (let state = Atomics.load(gate, STATE); state !== STALLED; state = Atomics.load(gate, STATE)) {
    if (end <= performance.now()) break
    Atomics.wait(gate, STATE, state, end - performance.now())
  }
}

/**
 * Tells `seen` what `server` writes to each of its connections, as it writes it (before the
 * write): where a test starts a stall from a packet the server sends (a PING, a question).
 */
export function watchWrites(server: Server, seen: (text: string) => void): void {
  server.on('connection', (connection) => {
    const write = connection.write
    connection.write = ((...args: Parameters<typeof write>) => {
      seen(String(args[0]))
      return write.apply(connection, args)
    }) as typeof write
  })
}
