// A process of its own for silent-close.test.ts: a client on WebSocket, at the URL given, whose
// server the test makes go silent. It prints "open" once connected, "lost" when a transport is
// lost (the heartbeat timed out) and "resumed" once the session is on a new one, calls
// disconnect() when a line comes on its standard input, and prints "left <reason>" at its
// `disconnect`. Then nothing of its own is left open: nothing but the client should keep the
// process alive.
import { WebSocket } from 'ws'
import { connect } from '../src/index.js'

const socket = connect(process.argv[2]!, {
  transports: ['websocket'],
  // Given: the client's own lookup of `ws` would start from where this file was compiled to.
  WebSocket,
  connectTimeout: 10_000,
  reconnection: false,
})
socket.on('connect', () => console.log('open'))
socket.on('transport_error', () => console.log('lost'))
socket.on('transport', (_now, _before, why) => console.log(why === 'resume' ? 'resumed' : why))
socket.on('disconnect', (reason) => {
  console.log(`left ${reason}`)
  process.stdin.destroy()
})
process.stdin.once('data', () => socket.disconnect())
