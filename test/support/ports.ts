// Free loopback ports for the servers a test starts (redis-server, nginx, cluster nodes, chat
// nodes). A port found free is let go before the server binds it, and another test file,
// picking ports at the same time, can take it in between: each start then detects the port
// taken (PortTaken) and `onFreePort` tries a fresh one. `holdPort` keeps a port from the other
// files meanwhile, or for good where nothing may answer.
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

/** A port this process holds, where nothing answers. */
export interface HeldPort {
  readonly port: number
  /** Lets the port go at once (for a server to bind it next); again, does nothing. */
  release(): void
}

/**
 * Binds `port` on 127.0.0.1 (0: a free one) and keeps it until `release()`, so that no other
 * process takes it. Each connection meanwhile is reset, as a refusal would be: a balancer goes
 * on to the next server, a client reads the address as down. Rejects with PortTaken when
 * another process holds the port.
 */
export function holdPort(port = 0): Promise<HeldPort> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.resetAndDestroy())
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new PortTaken(port, error.message) : error),
    )
    server.listen(port, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        // close() gives the socket up at once; its callback only says that connections ended.
        release: () => {
          if (server.listening) server.close()
        },
      }),
    )
  })
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
