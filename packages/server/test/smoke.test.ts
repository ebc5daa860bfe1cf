import { afterEach, describe, expect, it } from 'vitest'
import { rawConnect } from './raw-client.js'
import { type Started, startServer } from './helpers.js'

let s: Started | undefined
afterEach(async () => {
  await s?.app.close()
  s = undefined
})

describe.each(['websocket', 'sse', 'polling'] as const)('smoke %s', (transport) => {
  it('opens and exchanges', async () => {
    s = await startServer()
    s.app.parley.on('connection', (socket) => {
      socket.on('hi', (x: number, ack: (r: number) => void) => ack(x + 1))
      socket.emit('news', 'hello')
    })
    const c = await rawConnect(transport, s.base)
    expect(c.open.recovered).toBe(false)
    const news = await c.next((p) => p.type === 5)
    expect(news).toMatchObject({ name: 'news', args: ['hello'], seq: 1 })
    await c.send({ type: 5, seq: 1, name: 'hi', args: [41], ackId: 3 })
    const reply = await c.next((p) => p.type === 6)
    expect(reply).toMatchObject({ ackId: 3, args: [42] })
    c.close()
  })
})
