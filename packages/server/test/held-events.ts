import type { ServerSocket } from '@parley/server'

/**
 * A `connection` listener whose sockets hold the event `hold` in their middleware until
 * `release`: an event a closing instance waits for, so that the test can stage what comes while
 * it closes.
 */
export function holding() {
  const waiting: (() => void)[] = []
  return {
    onConnection(socket: ServerSocket) {
      socket.use(([event]) =>
        event === 'hold' ? new Promise<void>((resolve) => void waiting.push(resolve)) : undefined,
      )
      socket.on('hold', () => {})
    },
    get held() {
      return waiting.length
    },
    release() {
      for (const resolve of waiting.splice(0)) resolve()
    },
  }
}
