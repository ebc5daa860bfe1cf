// A process of its own for held-posts-at-close.test.ts: a client on long-polling, at the URL
// given, that prints "open" once connected and, when a line comes on its standard input, emits
// as many notes as the second argument says, each of as many characters as the third (too large
// to share a body with the next under the server's maxPayload), and calls disconnect(), printing
// "left <reason>" at its `disconnect`. With a fourth argument, the notes after the first and the
// disconnect() come that many ms after it: its POST is then in flight that long before them.
// Then nothing of its own is left open: nothing but the client should keep the process alive.
import { connect } from '../src/index.js'

const [, , url, notes, size, gap = '0'] = process.argv

const socket = connect(url!, {
  transports: ['polling'],
  connectTimeout: 10_000,
  reconnection: false,
})
socket.on('connect', () => console.log('open'))
socket.on('disconnect', (reason) => console.log(`left ${reason}`))
process.stdin.once('data', () => {
  process.stdin.destroy()
  const note = (n: number) => socket.emit('note', n, 'x'.repeat(Number(size)))
  const rest = () => {
    for (let n = 2; n <= Number(notes); n++) note(n)
    socket.disconnect()
  }
  note(1)
  if (Number(gap) > 0) setTimeout(rest, Number(gap))
  else rest()
})
