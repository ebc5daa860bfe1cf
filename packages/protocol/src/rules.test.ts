import { afterEach, describe, expect, it, vi } from 'vitest'
import { AckTable, awaitedReplies, farAckId, isAckId, MAX_ACK_ID, MAX_TIMER_MS } from './acks.js'
import { checkEncoded } from './decode.js'
import { ErrorCode, ParleyError } from './errors.js'
import { checkEventName } from './event-name.js'
import { WireLimits } from './packets.js'

describe('checkEventName', () => {
  it('accepts names of 1 to maxEventNameLength characters', () => {
    expect(checkEventName('chat')).toBeUndefined()
    expect(checkEventName('x'.repeat(WireLimits.maxEventNameLength))).toBeUndefined()
  })

  it.each([
    ['', ErrorCode.INVALID_EVENT_NAME],
    ['x'.repeat(WireLimits.maxEventNameLength + 1), ErrorCode.INVALID_EVENT_NAME],
    [42, ErrorCode.INVALID_EVENT_NAME],
    [undefined, ErrorCode.INVALID_EVENT_NAME],
    ['connect', ErrorCode.RESERVED_EVENT_NAME],
    ['disconnect', ErrorCode.RESERVED_EVENT_NAME],
  ])('refuses %j with %s', (name, code) => {
    expect(checkEventName(name)?.code).toBe(code)
  })
})

describe('checkEncoded', () => {
  it('passes an ordinary packet', () => {
    expect(checkEncoded('[5,1,"chat",[{"text":"hi"}],0]', 1000)).toBeUndefined()
  })

  it('refuses text past maxPayload', () => {
    expect(checkEncoded(`[5,1,"chat",["${'a'.repeat(100)}"],0]`, 50)?.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE)
  })

  it('refuses nesting past the wire depth', () => {
    const deep = `${'['.repeat(WireLimits.maxDepth + 1)}${']'.repeat(WireLimits.maxDepth + 1)}`
    expect(checkEncoded(`[5,1,"chat",[${deep}],0]`, 1e6)?.code).toBe(ErrorCode.TOO_DEEP)
    const fits = `${'['.repeat(WireLimits.maxDepth)}${']'.repeat(WireLimits.maxDepth)}`
    expect(checkEncoded(`[5,1,"chat",${fits},0]`, 1e6)).toBeUndefined()
  })

  it('refuses __proto__ and constructor keys, also when escaped', () => {
    expect(checkEncoded('[5,1,"chat",[{"constructor":1}],0]', 1e6)?.code).toBe(ErrorCode.FORBIDDEN_KEY)
    expect(checkEncoded('[5,1,"chat",[{"__proto__":{}}],0]', 1e6)?.code).toBe(ErrorCode.FORBIDDEN_KEY)
    expect(checkEncoded('[5,1,"chat",[{"\\u005f_proto__":1}],0]', 1e6)?.code).toBe(ErrorCode.FORBIDDEN_KEY)
    // Inside a string value it is only text.
    expect(checkEncoded('[5,1,"chat",["the constructor"],0]', 1e6)).toBeUndefined()
  })
})

describe('AckTable', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('numbers from a first id of its own, wraps at MAX_ACK_ID, and says its next id', () => {
    const table = new AckTable(10)
    expect(table.nextId).toBe(1)
    table.nextId = MAX_ACK_ID - 1
    const ids = [1, 2, 3].map(() => table.register(() => {}))
    expect(ids).toEqual([MAX_ACK_ID - 1, MAX_ACK_ID, 1])
    expect(table.nextId).toBe(2)
  })

  it('puts a taken-over session’s questions half the id space from the old node’s, within the ids', () => {
    expect(farAckId(1)).toBe(2 ** 30 + 1)
    expect(farAckId(2 ** 30 - 1)).toBe(MAX_ACK_ID)
    expect(farAckId(2 ** 30)).toBe(1)
    expect(farAckId(MAX_ACK_ID)).toBe(2 ** 30)
    for (const id of [1, 2, 2 ** 30, 2 ** 30 + 1, MAX_ACK_ID - 1, MAX_ACK_ID])
      expect(isAckId(farAckId(id))).toBe(true)
    expect([0, -1, 1.5, MAX_ACK_ID + 1, Number.NaN, '7', null, undefined].filter(isAckId)).toEqual([])
    expect([1, MAX_ACK_ID].every(isAckId)).toBe(true)
  })

  it('settles a wait once, by id, and ignores late replies', () => {
    const table = new AckTable(10)
    const seen: unknown[] = []
    const id = table.register((error, args) => seen.push(error ?? args))
    expect(table.settle(id, null, ['ok'])).toBe(true)
    expect(table.settle(id, null, ['again'])).toBe(false)
    expect(seen).toEqual([['ok']])
    expect(awaitedReplies(table)).toBe(0)
  })

  it('times a wait out with PARLEY_ACK_TIMEOUT', () => {
    vi.useFakeTimers()
    const table = new AckTable(10)
    const errors: (string | undefined)[] = []
    table.register((error) => errors.push(error?.code), 100)
    vi.advanceTimersByTime(99)
    expect(errors).toEqual([])
    vi.advanceTimersByTime(1)
    expect(errors).toEqual([ErrorCode.ACK_TIMEOUT])
  })

  it('never fires a timeout longer than a timer can hold at once', () => {
    vi.useFakeTimers()
    const table = new AckTable(10)
    const errors: unknown[] = []
    table.register((error) => errors.push(error), 3e9)
    table.register((error) => errors.push(error), MAX_TIMER_MS + 1)
    table.register((error) => errors.push(error), Number.POSITIVE_INFINITY)
    vi.advanceTimersByTime(60_000)
    expect(errors).toEqual([])
    expect(awaitedReplies(table)).toBe(3)
  })

  it('refuses waits past its limit, and rejects every wait at the end', () => {
    const table = new AckTable(2)
    const errors: (string | undefined)[] = []
    table.register((error) => errors.push(error?.code))
    table.register((error) => errors.push(error?.code))
    expect(() => table.register(() => {})).toThrow(
      expect.objectContaining({ code: ErrorCode.TOO_MANY_PENDING_ACKS }),
    )
    table.rejectAll(
      new (class extends Error {
        code = ErrorCode.DISCONNECTED
      })() as never,
    )
    expect(errors).toEqual([ErrorCode.DISCONNECTED, ErrorCode.DISCONNECTED])
  })

  it('goes on past a callback that throws, and hands its error to `failed`', () => {
    const failed: unknown[] = []
    const table = new AckTable(3, (err) => failed.push(err))
    const errors: (string | undefined)[] = []
    const boom = new Error('boom')
    table.register(() => {
      throw boom
    })
    table.register((error) => errors.push(error?.code))
    table.rejectAll(new ParleyError(ErrorCode.DISCONNECTED, 'gone'))
    expect(errors).toEqual([ErrorCode.DISCONNECTED])
    expect(failed).toEqual([boom])
    expect(awaitedReplies(table)).toBe(0)
  })

  it("throws a failed callback's error again from a timer of its own, by default", () => {
    vi.useFakeTimers()
    const table = new AckTable(1)
    const boom = new Error('boom')
    const id = table.register(() => {
      throw boom
    })
    expect(table.settle(id, null, [])).toBe(true)
    expect(() => vi.runAllTimers()).toThrow(boom)
  })

  it('forget ends a wait without settling it', () => {
    const table = new AckTable(2)
    let called = false
    const id = table.register(() => {
      called = true
    })
    table.forget(id)
    table.rejectAll(new Error('x') as never)
    expect(called).toBe(false)
  })
})
