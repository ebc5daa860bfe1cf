// Smoke check of the packed server against one Fastify: run from a folder where `fastify`,
// `@parley/server` and `@parley/client` are installed with npm (scripts/fastify-range.sh does
// that for any version). Connects the real client over each transport, asks for a URL under
// Parley's path that no route serves, with a session id in it (404, its log lines masked), and
// closes. Prints one line naming the version, or throws.
import { Writable } from 'node:stream'
import { connect } from '@parley/client'
import parley from '@parley/server'
import Fastify from 'fastify'

const SECRET = 'abcdefghijklmnopqrstuv'
const lines = []
const stream = new Writable({
  write(chunk, _encoding, done) {
    lines.push(chunk.toString())
    done()
  },
})
const app = Fastify({ logger: { level: 'info', stream } })
await app.register(parley, { path: '/parley' })
app.parley.on('connection', (socket) => socket.on('echo', (value, ack) => ack(value)))
await app.listen({ port: 0, host: '127.0.0.1' })
const url = `http://127.0.0.1:${app.server.address().port}`

for (const transport of ['websocket', 'sse', 'polling']) {
  const socket = connect(url, { path: '/parley', transports: [transport], reconnection: false })
  const reply = await socket.timeout(5000).emitWithAck('echo', transport)
  if (reply !== transport || socket.transport !== transport) {
    throw new Error(`no echo over ${transport}: ${reply} on ${socket.transport}`)
  }
  socket.disconnect()
}

const answer = await fetch(`${url}/parley/pol?sid=${SECRET}&t=1`)
await answer.text()
if (answer.status !== 404) throw new Error(`a mistyped URL answered ${answer.status}`)
const logged = lines.join('')
if (logged.includes(SECRET)) throw new Error(`the session id reached the log:\n${logged}`)
if (!/Route GET:\/parley\/pol\?sid=abcdef\.\.\.&t=1 not found/.test(logged)) {
  throw new Error(`no masked not-found line:\n${logged}`)
}

const version = app.version
await app.close()
console.log(`ok: fastify ${version}`)
