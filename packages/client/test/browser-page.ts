// The page of the browser suites of the client (browser.test.ts, bundles.browser.test.ts): what
// a user writes to connect from a script tag, and the server side it talks to.
import type { FastifyInstance } from 'fastify'
import { parleyOf, type ServerSocket } from './helpers.js'

// What a user would write: the script tag, then `Parley.connect()` to the page's own origin.
// The options come from the query string; everything the page sees is kept in `parley`.
export const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>parley</title></head><body>
<script src="/parley.min.js"></script>
<script>
  const options = JSON.parse(new URLSearchParams(location.search).get('o') || '{}')
  const started = performance.now()
  const at = () => Math.round(performance.now() - started)
  const log = []
  const got = { n: [], chat: [], news: [] }
  const socket = Parley.connect(undefined, options)
  socket.on('connect', () =>
    log.push({ event: 'connect', transport: socket.transport, recovered: socket.recovered, id: socket.id, at: at() }))
  socket.on('disconnect', (reason) => log.push({ event: 'disconnect', reason, at: at() }))
  socket.on('transport', (now, before, why) => log.push({ event: 'transport', now, before, why, at: at() }))
  // Why each transport could not be opened: its code, as the test reads it.
  const failures = []
  socket.on('transport_error', (transport, error) => failures.push({ transport, code: error.code }))
  for (const name of Object.keys(got)) socket.on(name, (value) => got[name].push(value))
  // A listener that keeps the page busy for ms (a page rendering a large update).
  socket.on('busy', (ms) => {
    const end = performance.now() + ms
    while (performance.now() < end);
  })

  // Emits event(0), event(1), ... one every few ms; resolves once all are emitted.
  function talk(event, count, every) {
    let i = 0
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        if (i < count) socket.emit(event, i++)
        else {
          clearInterval(timer)
          resolve(i)
        }
      }, every)
    })
  }

  // Emits event(0), event(1), ... one every few ms until the returned function is called;
  // that function stops and tells how many were emitted.
  function chatter(event, every) {
    let i = 0
    const timer = setInterval(() => socket.emit(event, i++), every)
    return () => {
      clearInterval(timer)
      return i
    }
  }

  // Sends size bytes; the server answers with them reversed, and an ArrayBuffer of its own.
  async function binary(size) {
    const body = new Uint8Array(size)
    for (let i = 0; i < size; i++) body[i] = (i * 7) % 256
    const reply = await socket.emitWithAck('bin', { name: 'a.bin', body })
    const back = reply.body
    return {
      name: reply.name,
      serverSawBytes: reply.isBytes,
      size: reply.size,
      isBytes: back instanceof Uint8Array,
      reversed: back.length === size && back.every((b, i) => b === body[size - 1 - i]),
      isBuffer: reply.tail instanceof ArrayBuffer,
      tail: Array.from(new Uint8Array(reply.tail)),
    }
  }

  window.parley = { socket, log, failures, got, talk, chatter, binary }

  // Closing the tab ends the session (as the client's README advises): the server lets it go at
  // once rather than keeping it for the page's return.
  addEventListener('pagehide', () => socket.disconnect())
</script>
</body></html>
`

/** What the page logs about its connection. */
export interface PageEvent {
  event: 'connect' | 'disconnect' | 'transport'
  at: number
  transport?: string
  recovered?: boolean
  id?: string
  reason?: string
  now?: string
  before?: string
  why?: string
}

export type PeerSocket = ServerSocket & { transport: string | null }

/** What `servePage` keeps of the pages it serves. */
export interface PagePeers {
  /** The latest server socket of each page, by the name the page gave in `auth`. */
  sockets: Map<string, PeerSocket>
  /** The numbers each page sent with `count`, in arrival order. */
  received: Map<string, number[]>
}

/**
 * Serves the page and `bundle()` (the script it loads) on `app`, and answers it: a chat relayed to
 * the other pages, counters, echo and binary echo, and a welcome on connecting.
 */
export function servePage(app: FastifyInstance, bundle: () => string): PagePeers {
  const sockets = new Map<string, PeerSocket>()
  const received = new Map<string, number[]>()
  app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  app.get('/parley.min.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(bundle()))
  parleyOf(app).on('connection', (s) => {
    const socket = s as PeerSocket
    const name = String((socket.handshake.auth as { name?: unknown } | null)?.name)
    sockets.set(name, socket)
    const counts: number[] = []
    received.set(name, counts)
    socket.on('count', (n: number) => counts.push(n))
    socket.on('chat', (n: number) => {
      for (const [other, peer] of sockets) if (other !== name) peer.emit('chat', n)
    })
    socket.on('echo', (value: unknown, ack: (reply: unknown) => void) =>
      ack({ echoed: value, transport: socket.transport }),
    )
    socket.on('bin', (file: { name: string; body: Uint8Array }, ack: (reply: unknown) => void) =>
      ack({
        name: file.name,
        isBytes: file.body instanceof Uint8Array,
        size: file.body.length,
        body: Uint8Array.from(file.body).reverse(),
        tail: new Uint8Array([1, 2, 255]).buffer,
      }),
    )
    socket.emit('news', { text: 'welcome' })
  })
  return { sockets, received }
}
