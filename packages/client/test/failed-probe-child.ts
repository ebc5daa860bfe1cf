// A process of its own for failed-probe.test.ts, run with --expose-gc: a client on SSE probes
// WebSocket against a real server that holds every upgrade unanswered, so the probe fails after
// its HELLO was ready (the server might have taken it, as far as the client knows). Then, in mode
// `kept`, the application calls disconnect() and keeps the socket; in mode `climbed`, the server
// lets the next probe through and the session goes on over WebSocket. Either way the SSE transport
// is gone, and nothing of the client should hold it: the process prints whether the garbage
// collector could take it (by the signal of its requests, which only that transport holds).
import type net from 'node:net'
import parley from '@parley/server'
import Fastify from 'fastify'
import { WebSocket } from 'ws'
import { connect } from '../src/index.js'

const mode = process.argv[2]
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
const pause = () => new Promise((resolve) => setTimeout(resolve, 10))

const app = Fastify()
await app.register(parley)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as net.AddressInfo

// Every upgrade is held, unanswered, until `let through`: the probe gives up after a second.
const upgrade = app.server.listeners('upgrade') as ((...args: unknown[]) => void)[]
app.server.removeAllListeners('upgrade')
const held: net.Socket[] = []
const givenUp = new Promise<void>((resolve) => {
  app.server.on('upgrade', (_req, s: net.Socket) => {
    held.push(s)
    // Read, so that the client's end of the connection is seen (the server allows half-open ones).
    s.resume()
    s.once('end', () => resolve())
  })
})
const letThrough = () => {
  app.server.removeAllListeners('upgrade')
  for (const listener of upgrade) app.server.on('upgrade', listener)
}

/**
 * The signal of the SSE transport's requests, weakly. Each request gets a signal of its own
 * that the transport's aborts: the platform's fetch may keep what it was given for a while.
 */
let stream: WeakRef<AbortSignal> | undefined
const watched: typeof fetch = (input, init) => {
  const signal = init?.signal
  if (!signal) return fetch(input, init)
  if (!init.method) stream = new WeakRef(signal)
  const own = new AbortController()
  signal.addEventListener('abort', () => own.abort(signal.reason), { once: true })
  return fetch(input, { ...init, signal: own.signal })
}

const socket = connect(`http://127.0.0.1:${port}/parley`, {
  // SSE first: WebSocket is only probed, once SSE is up.
  transports: ['sse', 'websocket'],
  WebSocket,
  fetch: watched,
  connectTimeout: 3000,
  upgradeDelay: 50,
  reconnection: false,
})
await new Promise((resolve) => socket.once('connect', () => resolve(undefined)))
await givenUp
if (mode === 'kept') socket.disconnect()
else {
  letThrough()
  await new Promise((resolve) => socket.once('transport', resolve))
}
// A few rounds: what the closed transport's last callbacks held is let go over a few ticks.
for (let i = 0; i < 50 && stream?.deref(); i++) {
  await pause()
  gc()
}
console.log(
  JSON.stringify({
    transport: socket.transport,
    collected: !!stream && !stream.deref(),
    active: socket.active,
  }),
)
socket.disconnect()
for (const s of held) s.destroy()
await app.close()
