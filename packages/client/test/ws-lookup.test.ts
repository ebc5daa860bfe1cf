// In Node the client looks the `ws` package up once a WebSocket is first needed, and keeps what it
// found. A lookup that failed is not kept: neither one where `ws` did not load nor one where it
// loaded without a WebSocket export (another package under that name, a broken install). Kept,
// the second made every WebSocket of the process fail for its whole life, though the application
// mended its install. Each kind of failure is a coded error that says what to do.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocket as WsWebSocket } from 'ws'

afterEach(() => {
  vi.doUnmock('ws')
  vi.resetModules()
})

/** `resolveWebSocket` of a fresh copy of the module, whose lookup holds nothing yet. */
async function freshLookup() {
  vi.resetModules()
  return (await import('../src/transports/websocket.js')).resolveWebSocket
}

describe('the lookup of the ws package, in Node', () => {
  it.each([
    // Both named: Vitest's mock throws for a name it lacks, where a module gives undefined.
    ['loads without a WebSocket export', () => ({ WebSocket: undefined, default: undefined })],
    [
      'does not load',
      () => {
        throw new Error('Cannot find package "ws"')
      },
    ],
  ])('fails with a coded error when ws %s, and finds it once mended', async (_, broken) => {
    // Node 20 has no WebSocket of its own: the lookup is the one the client makes.
    expect((globalThis as { WebSocket?: unknown }).WebSocket).toBeUndefined()
    vi.doMock('ws', broken)
    const resolveWebSocket = await freshLookup()
    const error = await resolveWebSocket().then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(ParleyError)
    expect(error).toMatchObject({
      code: ErrorCode.TRANSPORT_ERROR,
      message: 'no WebSocket here: install the "ws" package or pass the WebSocket option',
    })
    expect((error as Error).cause).toBeInstanceOf(Error)
    // Asked again while still broken: the same coded error, not a lookup kept from before.
    vi.doMock('ws', broken)
    await expect(resolveWebSocket()).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_ERROR })
    // The install mended, in the same process and the same copy of the client: found.
    vi.doUnmock('ws')
    await expect(resolveWebSocket()).resolves.toBe(WsWebSocket)
  })
})
