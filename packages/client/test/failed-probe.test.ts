// A probe that failed once its HELLO was ready leaves its mark on the transport in use (a MOVED
// that may follow there is then the server taking that probe): the connection held that
// transport, closed, with its streams and what they held, once it had moved on (to WebSocket, or
// to nothing after disconnect()) for as long as the application kept the socket.
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { childResult } from './child-process.js'

const child = fileURLToPath(new URL('./failed-probe-child.ts', import.meta.url))

function run(mode: 'kept' | 'climbed'): Promise<unknown> {
  return childResult(child, [mode], { nodeFlags: ['--expose-gc'] })
}

describe.concurrent('the SSE transport in use when a WebSocket probe failed', () => {
  it('can be collected once disconnect() let it go, the socket kept', async () => {
    expect(await run('kept')).toEqual({ transport: null, collected: true, active: false })
  })

  it('can be collected once the next probe took the session onto WebSocket', async () => {
    expect(await run('climbed')).toEqual({ transport: 'websocket', collected: true, active: true })
  })
}, 30_000)
