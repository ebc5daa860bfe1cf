// How long a closing server may expect an HTTP client's next GET (`nextGetWithin`), which
// decides whether its CLOSE 'server shutdown' is worth waiting for.
import { PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { response } from '../../test/fake-response.js'
import { NEXT_GET_UNMEASURED_MS } from './http.js'
import { PollingTransport } from './polling.js'
import { SseTransport } from './sse.js'
import { outgoing } from './transport.js'

let now = 0
afterEach(() => vi.restoreAllMocks())

function clock(): void {
  now = 1000
  vi.spyOn(performance, 'now').mockImplementation(() => now)
}

describe('a polling transport', () => {
  it('expects the first GET within the unmeasured time of the handshake', () => {
    clock()
    const transport = new PollingTransport(1e6)
    now += 300
    expect(transport.nextGetWithin()).toBe(NEXT_GET_UNMEASURED_MS - 300)
  })

  it('expects none while a GET is held, and a few times its turnaround after an answer', async () => {
    clock()
    const transport = new PollingTransport(1e6)
    now += 300 // the first GET came 300 ms after the handshake
    const first = response()
    transport.hold(first, {})
    expect(transport.nextGetWithin()).toBeUndefined()
    transport.send(outgoing({ type: PacketType.PING }))
    await new Promise((resolve) => process.nextTick(resolve))
    expect(first.body).toBe('[2]')
    now += 90
    expect(transport.nextGetWithin()).toBe(4 * 300 - 90)
    // A faster turn brings the measure down gradually, never below 500 ms.
    now += 10
    transport.hold(response(), {})
    transport.send(outgoing({ type: PacketType.PING }))
    await new Promise((resolve) => process.nextTick(resolve))
    expect(transport.nextGetWithin()).toBe(4 * 240)
  })

  it('expects none once the client dropped its GET', () => {
    clock()
    const transport = new PollingTransport(1e6)
    const held = response()
    transport.hold(held, {})
    held.drop()
    expect(transport.nextGetWithin()).toBeUndefined()
  })
})

describe('an SSE transport', () => {
  it('expects its stream after the handshake, and no GET once it streamed', () => {
    clock()
    const transport = new SseTransport()
    now += 200
    expect(transport.nextGetWithin()).toBe(NEXT_GET_UNMEASURED_MS - 200)
    transport.attachStream(response(), {})
    expect(transport.nextGetWithin()).toBeUndefined()
  })

  it('still expects its stream after a GET whose client had already gone', () => {
    clock()
    const transport = new SseTransport()
    const gone = response()
    gone.drop()
    transport.attachStream(gone, {})
    expect(transport.nextGetWithin()).toBe(NEXT_GET_UNMEASURED_MS)
    expect(gone.body).toBe('')
  })
})
