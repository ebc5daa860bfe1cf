// A WebSocket open on a server that closes before its client's HELLO came (the HELLO on its way,
// or held back by a slow link). Closed bare (1001), it failed the client's WebSocket with a
// transport error, and the client stepped down to its next transport. Told ERROR
// PARLEY_SERVER_SHUTTING_DOWN first, as a new session's upgrade during the drain is, the client
// reads a server that is closing, not a WebSocket that does not work: it tries WebSocket once
// more, which the balancer sends to another server.
import { connect } from '@parley/client'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { type Started, startServer, until, within } from './helpers.js'

const servers: Started[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) if (!server.app.parley.closed) await server.app.close()
})

/** A WebSocket whose messages wait until `release()`; `opened()`: how many have opened. */
function heldWebSockets() {
  let opened = 0
  const held: (() => void)[] = []
  let holding = true
  class Held extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args)
      this.once('open', () => opened++)
      const send = this.send.bind(this) as (...sent: unknown[]) => void
      this.send = ((...sent: unknown[]) => {
        if (!holding) send(...sent)
        else held.push(() => this.readyState === this.OPEN && send(...sent))
      }) as WebSocket['send']
    }
  }
  return {
    WebSocket: Held,
    opened: () => opened,
    release() {
      holding = false
      for (const go of held.splice(0)) go()
    },
  }
}

describe('a WebSocket without its HELLO yet when the server closes', () => {
  it('is told ERROR PARLEY_SERVER_SHUTTING_DOWN, and its client tries WebSocket again', async () => {
    const server = await startServer()
    servers.push(server)
    const sockets = heldWebSockets()
    const client = connect(server.base, {
      transports: ['websocket', 'polling'],
      WebSocket: sockets.WebSocket as unknown as typeof globalThis.WebSocket,
      reconnection: false,
    })
    const failed: string[] = []
    client.on('transport_error', (name, error) => failed.push(`${name} ${error.code}`))
    await until(() => sockets.opened() === 1, 3000, 'the WebSocket open, its HELLO held')
    await within(server.app.close(), 5000, 'the server closed')
    await until(() => failed.length >= 2, 5000, 'the next try')
    sockets.release()
    client.disconnect()

    expect(failed[0]).toBe('websocket PARLEY_SERVER_SHUTTING_DOWN')
    expect(failed[1]).toMatch(/^websocket /)
  })
})
