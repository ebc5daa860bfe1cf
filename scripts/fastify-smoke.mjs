// Smoke check of the packed server against one Fastify: run from a folder where `fastify`,
// `@parley/server` and `@parley/client` are installed with npm (scripts/fastify-range.sh does
// that for any version). Connects the real client over each transport, asks for a URL under
// Parley's path that no route serves, with a session id in it (404, its log lines masked), and
// closes; then the same URL with request logging off (404, nothing logged). Prints a line for
// each, naming the version, or throws.
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

await mistypedUrl(url, lines, true)
const version = app.version
await app.close()
console.log(`ok: fastify ${version}`)

// With request logging off, the same URL is answered 404 and logs nothing: through the
// `logController` of the releases that have one (where `disableRequestLogging` is deprecated),
// through `disableRequestLogging` before them.
const { LogController } = Fastify
const off = LogController
  ? { logController: new LogController({ disableRequestLogging: true }) }
  : { disableRequestLogging: true }
const quiet = []
const quietStream = new Writable({
  write(chunk, _encoding, done) {
    quiet.push(chunk.toString())
    done()
  },
})
const quietApp = Fastify({ logger: { level: 'info', stream: quietStream }, ...off })
await quietApp.register(parley, { path: '/parley' })
await quietApp.listen({ port: 0, host: '127.0.0.1' })
await mistypedUrl(`http://127.0.0.1:${quietApp.server.address().port}`, quiet, false)
await quietApp.close()
console.log(`ok: fastify ${version}, request logging off (${Object.keys(off)[0]})`)

/** Asks for a URL under Parley's path that no route serves, with a session id in its query. */
async function mistypedUrl(base, logs, logged) {
  const answer = await fetch(`${base}/parley/pol?sid=${SECRET}&t=1`)
  await answer.text()
  if (answer.status !== 404) throw new Error(`a mistyped URL answered ${answer.status}`)
  const text = logs.join('')
  if (text.includes(SECRET)) throw new Error(`the session id reached the log:\n${text}`)
  const line = /Route GET:\/parley\/pol\?sid=abcdef\.\.\.&t=1 not found/.test(text)
  if (line !== logged) throw new Error(`the not-found line ${logged ? 'missing' : 'logged'}:\n${text}`)
}
