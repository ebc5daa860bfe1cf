// A process of its own for held-posts-at-close.test.ts: a client on long-polling, at the URL
// given, that prints "open" once connected and, when a line comes on its standard input, emits
// as many notes as the second argument says, each of as many characters as the third (too large
// to share a body with the next under the server's maxPayload), and calls disconnect(), printing
// "left <reason>" at its `disconnect`.
// Then nothing of its own is left open: nothing but the client should keep the process alive.
import { connect } from '../src/index.js'

const [, , url, notes, size] = process.argv

const socket = connect(url!, {
  transports: ['polling'],
  connectTimeout: 10_000,
  reconnection: false,
})
socket.on('connect', () => console.log('open'))
socket.on('disconnect', (reason) => console.log(`left ${reason}`))
process.stdin.once('data', () => {
  process.stdin.destroy()
  for (let n = 1; n <= Number(notes); n++) socket.emit('note', n, 'x'.repeat(Number(size)))
  socket.disconnect()
})
