import type { Socket } from '@parley/client'

/**
 * Resolves with `socket` once it connected; rejects with the error of a connection the client
 * gives up on (the server refused it, or attempts ran out).
 */
export function connected<S extends Socket>(socket: S): Promise<S> {
  return new Promise<S>((resolve, reject) => {
    socket.once('connect', () => resolve(socket))
    socket.on('connect_error', (error, willRetry) => {
      if (!willRetry) reject(error)
    })
  })
}
