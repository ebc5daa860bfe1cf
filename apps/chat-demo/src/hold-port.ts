import { createServer } from 'node:net'

/**
 * Binds `port` on `host` and keeps it until `release()`, so that no other process takes it
 * while a cluster node joins Redis and loads (its first heartbeat already names the port).
 * Connections meanwhile are reset, as a refusal would be: a balancer goes on to the next node.
 * Resolves undefined when another process holds the port.
 */
export function holdPort(port: number, host: string): Promise<{ release(): void } | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.resetAndDestroy())
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error),
    )
    // close() gives the socket up at once; its callback only says that connections ended.
    server.listen(port, host, () => resolve({ release: () => void server.close() }))
  })
}
