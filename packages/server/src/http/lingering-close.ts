import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { InputFirstTimer } from '../input-first-timer.js'

/** How long a connection is kept open, reading, after an answer sent before its body ended. */
export const LINGER_MS = 2000
/** How much of the body's rest is read and thrown away before the connection closes anyway. */
export const LINGER_BYTES = 256 * 1024

/**
 * Makes the connection of `res`, an answer with `Connection: close` sent before its request's
 * body was read to its end (a 413, a 408, Fastify's handlerTimeout), close the way HTTP servers
 * close such a connection: lingering. Node ends the connection once the answer is out and
 * destroys it at once (`destroySoon`). The client may still be sending its body: what it sends
 * after the destroy is answered by the server's system with a reset, its next write fails, and
 * it drops the connection with whatever it had not read of it yet, the answer included. A
 * client whose process is busy (a loaded one reads late) then reports a lost connection
 * instead of the coded answer it was sent: a handshake cut by handlerTimeout, say, whose client
 * would have tried its next transport.
 *
 * Here the answer still ends the server's side of the connection (the client reads it to its
 * end, then the end), but the connection stays open for reading: the rest of the body is read
 * and thrown away until the client closes its side, for at most LINGER_MS ms and LINGER_BYTES
 * bytes; then it is destroyed. The body's reader has let go of it by then (see `readBody`'s
 * `answered`): nothing of it is used. `lingerMs` is LINGER_MS but in tests of that bound.
 *
 * Only for Node's HTTP/1.1 connections (a socket of its own per connection).
 */
export function lingerOnClose(res: ServerResponse, lingerMs = LINGER_MS): void {
  const socket = res.socket
  if (!(socket instanceof Socket) || socket.destroyed)
    return // Node calls it once the answer is out, when the answer closes the connection.
  ;(socket as Lingering).destroySoon = () => linger(socket, res, lingerMs)
}

/** Node's net.Socket has this method; its types do not name it. */
interface Lingering extends Socket {
  destroySoon(): void
}

function linger(socket: Socket, res: ServerResponse, lingerMs: number): void {
  if (socket.writable) socket.end()
  const close = () => socket.destroy()
  // Its verdict waits two turns of the event loop (see `InputFirstTimer`): after a stall of the
  // server's thread past `lingerMs`, the rest and the end that came meanwhile are read first, and
  // the connection ends without the reset that destroying it with them unread would send.
  const timer = new InputFirstTimer(lingerMs, close)
  socket.once('close', () => timer.clear())
  // The client closed its side: it has nothing more to send, and has read the answer.
  socket.once('end', close)
  const start = socket.bytesRead
  const discard = () => {
    if (socket.bytesRead - start > LINGER_BYTES) close()
  }
  // After the body's reader let go of the request (on the answer's 'finish' too, see
  // `readBody`), which may have paused it: its rest flows, thrown away.
  res.once('close', () => {
    const req = res.req
    req.on('data', discard)
    req.resume()
  })
}
