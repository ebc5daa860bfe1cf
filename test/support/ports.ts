// Free loopback ports for the servers a test starts as processes of their own (redis-server,
// nginx, cluster nodes). A port found free is let go before the process binds it, and another
// test file, picking ports at the same time, can take it in between: each start then detects
// the port taken (PortTaken) and `onFreePort` tries a fresh one.
import net from 'node:net'

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** A port that another process holds: a fresh one may do. */
export class PortTaken extends Error {
  constructor(port: number, why: string) {
    super(`port ${port} is taken: ${why}`)
  }
}

/** How many ports a start tries before it gives up. */
const TRIES = 5

/**
 * Runs `start` on a port from `pickPort` (a free one by default), and again on a fresh port
 * each time it rejects with PortTaken, up to five ports in all.
 */
export async function onFreePort<T>(
  start: (port: number) => Promise<T>,
  pickPort: () => Promise<number> = freePort,
): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await start(await pickPort())
    } catch (error) {
      if (!(error instanceof PortTaken) || tries === TRIES) throw error
    }
  }
}
