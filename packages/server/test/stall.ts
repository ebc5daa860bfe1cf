// How the tests of a stalled server thread stall it: the server runs in the test's thread, its
// client in a thread of its own, held back by the gate of stall-gate.ts until the stall has begun.
import type { Server } from 'node:http'
import { createConnection, createServer } from 'node:net'
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

/**
 * A loopback connection opened (and accepted) now, to bring input written just before a stall
 * on a connection open before it, as an adapter's are: `write` sends on it, `heard` runs at each
 * chunk the other end reads; `close` ends it. Rejects after `boundMs` without it.
 */
export function loopbackInput(
  heard: () => void,
  boundMs = 3000,
): Promise<{ write(text: string): void; close(): void }> {
  const server = createServer()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.close()
      reject(new Error(`no loopback connection within ${boundMs} ms`))
    }, boundMs)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') return
      const out = createConnection(address.port, '127.0.0.1')
      // Both ends up: the client's connect and the server's accept, in either order.
      let ends = 0
      const up = () => {
        if (++ends < 2) return
        clearTimeout(timer)
        resolve({
          write: (text) => void out.write(text),
          close: () => {
            out.destroy()
            server.close()
          },
        })
      }
      out.once('connect', up)
      server.once('connection', (accepted) => {
        accepted.on('data', heard)
        out.once('close', () => accepted.destroy())
        up()
      })
    })
  })
}
