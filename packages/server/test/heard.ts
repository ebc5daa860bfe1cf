import type { Duplex } from 'node:stream'

/**
 * What a raw connection got so far, as text, and whether the other side ended it (`ended`) or it
 * closed either way (`closed`). Its errors are not thrown: a test sees them in what it heard.
 */
export function heardOn(socket: Duplex) {
  let text = ''
  let ended = false
  let closed = false
  socket.on('error', () => {})
  socket.on('data', (chunk: Buffer) => {
    text += String(chunk)
  })
  socket.once('end', () => {
    ended = true
  })
  socket.once('close', () => {
    closed = true
  })
  return {
    get text() {
      return text
    },
    get ended() {
      return ended
    },
    get closed() {
      return closed
    },
  }
}
