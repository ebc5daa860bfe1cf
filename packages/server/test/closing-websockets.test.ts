// The wait of a closing server for Parley's WebSockets: those whose close frame went, and those
// whose HELLO still waits on a lookup of its session (for that lookup as long as its own bound,
// then for the closing handshake its own handshake begins); then those still open are cut.
import { EventEmitter } from 'node:events'
import { afterEach, expect, it, vi } from 'vitest'
import type { WebSocket } from 'ws'
import { ClosingWebSockets } from '../src/transports/closing-websockets.js'

afterEach(() => {
  vi.useRealTimers()
})

/** A WebSocket: `close()` as its client answers the close frame; `cut` tells whether it was. */
function webSocket() {
  const events = new EventEmitter()
  const ws = Object.assign(events, {
    CLOSED: 3,
    readyState: 1,
    cut: false,
    terminate() {
      ws.cut = true
      ws.close()
    },
    close() {
      ws.readyState = 3
      events.emit('close', 1006, Buffer.alloc(0))
    },
  })
  return ws
}

it("waits for a WebSocket's lookup, then its close; one that never settles is cut at its bound", async () => {
  vi.useFakeTimers()
  const closing = new ClosingWebSockets()
  const answered = webSocket()
  let found: () => void = () => {}
  const lookup = new Promise<void>((resolve) => {
    found = resolve
  })
  void lookup.then(() => answered.close())
  closing.lookingUp(answered as unknown as WebSocket, lookup, 5000)
  const never = webSocket()
  closing.lookingUp(never as unknown as WebSocket, new Promise(() => {}), 5000)
  let over = false
  const closed = closing.closeAll(2000, Number.POSITIVE_INFINITY).then(() => {
    over = true
  })
  // Past the 2 s given to closing handshakes: the lookups are still under way, within their bound.
  await vi.advanceTimersByTimeAsync(4000)
  expect({ over, answered: answered.cut, never: never.cut }).toEqual({
    over: false,
    answered: false,
    never: false,
  })
  found()
  await vi.advanceTimersByTimeAsync(1000 + 2000)
  await closed
  expect(answered.cut).toBe(false)
  expect(never.cut).toBe(true)
})

it('gives a WebSocket whose close frame went its moment, then cuts it, within the room the close has left', async () => {
  vi.useFakeTimers()
  const closing = new ClosingWebSockets()
  const deaf = webSocket()
  closing.closing(deaf as unknown as WebSocket)
  const looking = webSocket()
  closing.lookingUp(looking as unknown as WebSocket, new Promise(() => {}), 5000)
  const closed = closing.closeAll(2000, 1500)
  await vi.advanceTimersByTimeAsync(1499)
  expect(deaf.cut).toBe(false)
  await vi.advanceTimersByTimeAsync(1)
  await closed
  expect({ deaf: deaf.cut, looking: looking.cut }).toEqual({ deaf: true, looking: true })
})
