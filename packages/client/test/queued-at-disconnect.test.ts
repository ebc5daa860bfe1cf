// disconnect() over SSE or polling while a POST is in flight: what the application emitted
// meanwhile, and the goodbye, go once that POST is answered, in bodies under the server's
// maxPayload as any POST's. In one body, ten emits of 200 KB made 2 MB, past the default 1 MB:
// the server refused it (413), ended the session with 'payload too large' and lost the emits.
// The real client and the real server; an `onRequest` hook of the server holds the POST in
// flight, as a server slow to read it would.
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

/** A note of 200 KB (the ten of the test make twice the server's default maxPayload). */
const NOTE = 'x'.repeat(200_000)

describe.each(['sse', 'polling'] as const)('%s: disconnect() with 2 MB queued', (transport) => {
  it.each([
    ['behind a POST in flight', true],
    // Emitted in the turn of disconnect(): no POST went for them yet.
    ['in the same turn, no POST in flight', false],
  ])(
    '%s: delivers every emit once and in order, in bodies under maxPayload, then the goodbye',
    async (_, held) => {
      const seen: string[] = []
      /** Content-Length of each upstream POST the server got. */
      const bodies: number[] = []
      let hold: Promise<void> | undefined
      let holding = false
      const server = await startServer(
        (app) => {
          app.addHook('onRequest', async (request) => {
            if (request.method !== 'POST' || !request.url.includes('sid=')) return
            bodies.push(Number(request.headers['content-length']))
            if (!hold) return
            const wait = hold
            hold = undefined
            holding = true
            await wait
          })
          parleyOf(app).on('connection', (socket) => {
            socket.on('note', (i: number, text: string) => seen.push(text === NOTE ? String(i) : `bad ${i}`))
            socket.on('disconnect', (reason: string) => seen.push(`end: ${reason}`))
          })
        },
        // No heartbeat within the test: the session can end only on the client's word, or a refusal.
        { pingInterval: 20_000, pingTimeout: 20_000 },
      )
      const socket = client(server.url, { transports: [transport] })
      await next(socket, 'connect')
      let release = () => {}
      if (held)
        hold = new Promise((resolve) => {
          release = resolve
        })
      socket.emit('note', 0, NOTE)
      if (held) await until(() => holding, 3000, 'the POST held in flight')
      // Queued (behind the held POST), then the goodbye behind them.
      for (let i = 1; i <= 10; i++) socket.emit('note', i, NOTE)
      socket.disconnect()
      release()
      await until(() => seen.some((s) => s.startsWith('end: ')), 5000, 'the end of the session')
      expect(seen).toEqual([...Array.from({ length: 11 }, (_, i) => String(i)), 'end: client disconnect'])
      // 2 MB do not fit in one.
      expect(bodies.length).toBeGreaterThan(2)
      for (const length of bodies) expect(length).toBeLessThanOrEqual(1_000_000)
    },
  )
})
