// An SSE GET whose response is gone before its stream could begin must not become the session's
// stream: events written to it would be lost until the heartbeat noticed (35 s by default). Nor
// may a polling GET that is gone take the place of the one held before it.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import type { ServerSocket } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { head, RawHttp } from './raw-http.js'

let started: Started | undefined
const raws: RawHttp[] = []
const streams: IncomingMessage[] = []
afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy()
  for (const s of streams.splice(0)) s.destroy()
  await closeApp(started?.app)
  started = undefined
})

const portOf = (app: FastifyInstance) => (app.server.address() as { port: number }).port

/** A new SSE session: its sid and its server socket. */
async function sseSession(
  app: FastifyInstance,
  base: string,
): Promise<{ sid: string; socket: ServerSocket }> {
  let socket: ServerSocket | undefined
  const take = (s: ServerSocket) => {
    socket = s
  }
  app.parley.on('connection', take)
  const answer = await fetch(`${base}/sse?v=1`, { method: 'POST', body: '[8,{}]' })
  const sid = (JSON.parse(await answer.text()) as [number, { sid: string }])[1].sid
  app.parley.off('connection', take)
  return { sid, socket: socket! }
}

/** Opens an SSE stream; resolves with its text so far, read on demand. */
async function openStream(url: string): Promise<() => string> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    httpRequest(url, resolve).on('error', reject).end()
  })
  streams.push(res)
  let text = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    text += chunk
  })
  return () => text
}

describe('a GET whose response is already gone', () => {
  it('does not take the stream over when it waits behind the stream on the same connection (pipelined)', async () => {
    started = await startServer()
    const { sid, socket } = await sseSession(started.app, started.base)
    const raw = await RawHttp.open(portOf(started.app))
    raws.push(raw)
    const get = head('GET', `/parley/sse?v=1&sid=${sid}`)
    raw.write(get + get)
    await until(() => raw.received.includes('\n\n'), 3000, 'the first stream began')
    // Let the second GET, which came in the same bytes, reach its handler too.
    await new Promise((resolve) => setTimeout(resolve, 50))
    socket.volatile.emit('news', 'after the pair')
    await until(() => raw.received.includes('after the pair'), 3000, 'the event on the live stream')
    expect(raw.isClosed).toBe(false)
  })

  it('is not attached when the client left while an onRequest hook ran', async () => {
    let hooked = false
    let handled = false
    started = await startServer({}, (app) => {
      // An application's asynchronous hook (authentication, a rate limit) that takes a while:
      // it lets the GET go on only after its client has gone.
      app.addHook('onRequest', async (request, reply) => {
        if (request.method !== 'GET' || !request.url.includes('/sse?') || hooked) return
        hooked = true
        await new Promise((resolve) => reply.raw.once('close', resolve))
      })
      app.addHook('preHandler', async (request) => {
        if (request.method === 'GET') handled = true
      })
    })
    const { sid, socket } = await sseSession(started.app, started.base)
    const raw = await RawHttp.open(portOf(started.app))
    raw.write(head('GET', `/parley/sse?v=1&sid=${sid}`))
    await until(() => hooked, 3000, 'the GET reached the hook')
    raw.destroy()
    await until(() => handled, 3000, 'the handler ran')
    await new Promise((resolve) => setImmediate(resolve))
    socket.volatile.emit('news', 'while no stream is open')
    const read = await openStream(`${started.base}/sse?v=1&sid=${sid}`)
    await until(() => read().includes('while no stream is open'), 3000, 'the event on the next stream')
  })

  it('leaves the held poll in place when a later GET was gone before it was handled', async () => {
    let hooked = false
    let handled = false
    started = await startServer({}, (app) => {
      app.addHook('onRequest', async (request, reply) => {
        if (request.method !== 'GET' || !request.url.includes('/poll?') || !request.url.includes('slow'))
          return
        hooked = true
        await new Promise((resolve) => reply.raw.once('close', resolve))
      })
      app.addHook('preHandler', async (request) => {
        if (request.url.includes('slow')) handled = true
      })
    })
    const { app, base } = started
    let socket: ServerSocket | undefined
    app.parley.on('connection', (s) => {
      socket = s
    })
    const answer = await fetch(`${base}/poll?v=1`, { method: 'POST', body: '[8,{}]' })
    const sid = (JSON.parse(await answer.text()) as [number, { sid: string }])[1].sid
    // The poll the client reads, held.
    let held: string | undefined
    void fetch(`${base}/poll?v=1&sid=${sid}&ack=0`)
      .then((res) => res.text())
      .then((text) => {
        held = text
      })
    await until(() => socket?.transport === 'polling', 3000, 'the session')
    // Another GET for the session, whose client leaves while a hook holds it up.
    const raw = await RawHttp.open(portOf(app))
    raw.write(head('GET', `/parley/poll?v=1&sid=${sid}&ack=0&slow=1`))
    await until(() => hooked, 3000, 'the GET reached the hook')
    raw.destroy()
    await until(() => handled, 3000, 'the handler ran')
    await new Promise((resolve) => setTimeout(resolve, 50))
    // The held poll was not let go for it: the next event goes there.
    expect(held).toBeUndefined()
    socket!.emit('news', 'to the poll that waits')
    await until(() => held !== undefined, 3000, 'the answer')
    expect(held).toContain('to the poll that waits')
  })
})
