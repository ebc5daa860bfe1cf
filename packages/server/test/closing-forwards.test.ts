// The wait of a closing node for the requests still looking their session's owner up: for each
// lookup as long as its own bound, then for the request's answer, then the request is cut. (A
// WebSocket whose HELLO's session is looked up: closing-websockets.test.ts.)
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import { afterEach, expect, it, vi } from 'vitest'
import { ClosingForwards } from '../src/http/closing-forwards.js'

afterEach(() => {
  vi.useRealTimers()
})

/** A response the request is answered on: `answer()` closes it; `cut` tells whether it was. */
function response() {
  const events = new EventEmitter()
  const res = Object.assign(events, {
    closed: false,
    cut: false,
    destroy() {
      res.cut = true
      res.answer()
    },
    answer() {
      res.closed = true
      events.emit('close')
    },
  })
  return res
}

it('waits for a lookup, then for the answer that follows it, and cuts nothing', async () => {
  vi.useFakeTimers()
  const forwards = new ClosingForwards()
  const res = response()
  let found: () => void = () => {}
  const lookup = new Promise<void>((resolve) => {
    found = resolve
  })
  void lookup.then(() => res.answer())
  forwards.lookingUp(res as unknown as ServerResponse, lookup, 5000)
  let over = false
  const closing = forwards.closeAll(2000, Number.POSITIVE_INFINITY).then(() => {
    over = true
  })
  // Past the 2 s given to answers: the lookup is still under way, within its own bound.
  await vi.advanceTimersByTimeAsync(4000)
  expect(over).toBe(false)
  found()
  await closing
  expect(res.cut).toBe(false)
})

it('gives a lookup that never settles up at its bound, then cuts its request', async () => {
  vi.useFakeTimers()
  const forwards = new ClosingForwards()
  const res = response()
  forwards.lookingUp(res as unknown as ServerResponse, new Promise(() => {}), 1000)
  let over = false
  const closing = forwards.closeAll(2000, Number.POSITIVE_INFINITY).then(() => {
    over = true
  })
  await vi.advanceTimersByTimeAsync(999)
  expect(over).toBe(false)
  await vi.advanceTimersByTimeAsync(1 + 2000)
  await closing
  expect(res.cut).toBe(true)
})

it('waits no longer than the room the close has left', async () => {
  vi.useFakeTimers()
  const forwards = new ClosingForwards()
  const res = response()
  forwards.lookingUp(res as unknown as ServerResponse, new Promise(() => {}), 5000)
  const closing = forwards.closeAll(2000, 1500)
  await vi.advanceTimersByTimeAsync(1500)
  await closing
  expect(res.cut).toBe(true)
})
