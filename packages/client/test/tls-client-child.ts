// A process of its own for node-tls.test.ts: the Node client, given the URL of a server whose
// certificate no default CA vouches for, and nothing else: what it trusts comes from the
// environment the test gives the process (NODE_EXTRA_CA_CERTS, read by Node at its start). It
// emits with an ack, takes the server's event, answers its emit with an ack (the server sends the
// answer back as 'thanks'), then prints what it got as JSON; or, when it cannot connect, the code
// of its first transport_error.
import type { TransportName } from '@parley/protocol'
import { WebSocket } from 'ws'
import { connect } from '../src/index.js'

const [url = '', transport = 'websocket'] = process.argv.slice(2)
const socket = connect(url, {
  transports: [transport as TransportName],
  reconnection: false,
  connectTimeout: 5000,
  // The client's own default in Node, given here: the compiled child cannot load it by itself.
  WebSocket,
})
socket.on('ask', (question: string, ack: (answer: string) => void) => ack(`answer ${question}`))
const news = new Promise<unknown>((resolve) => socket.once('news', resolve))
const thanks = new Promise<unknown>((resolve) => socket.once('thanks', resolve))
const result = await new Promise<unknown>((resolve) => {
  socket.once('transport_error', (_name: string, error: { code?: string; message?: string }) =>
    resolve({ failed: error.code, message: error.message }),
  )
  socket.once('connect', async () => {
    const reply = await socket.emitWithAck('echo', 'hi')
    resolve({ transport: socket.transport, reply, news: await news, thanks: await thanks })
  })
})
socket.disconnect()
process.stdout.write(JSON.stringify(result))
