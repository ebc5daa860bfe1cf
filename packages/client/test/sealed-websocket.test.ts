// An application's WebSocket whose event handlers cannot be set (a frozen object, setters that
// throw, a wrapper that offers addEventListener alone and refuses the `on...` properties): the
// client cannot listen to it, so the transport fails with PARLEY_TRANSPORT_ERROR, the next one is
// tried, and nothing it throws escapes the client (thrown from a promise's handler, it would be
// unhandled: in Node, a crash). Real client against the real server.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, startServer } from './helpers.js'

afterEach(closeAll)

/** An event handler of the WebSocket's. */
type Handler = (event: unknown) => void

/**
 * `ws`'s WebSocket behind a class whose handler properties named in `which` refuse to be set
 * (with `clearing`, only to be cleared: set to null); the others are passed what the WebSocket
 * inside says.
 */
function sealed(which: readonly string[], { clearing = false } = {}) {
  return class SealedWebSocket {
    readonly #ws: WebSocket
    readonly #handlers = new Map<string, Handler>()
    binaryType = 'arraybuffer'

    constructor(url: string, protocols: string) {
      const ws = new WebSocket(url, protocols)
      this.#ws = ws
      ws.binaryType = 'arraybuffer'
      for (const name of ['onopen', 'onmessage', 'onclose', 'onerror'] as const) {
        Object.defineProperty(this, name, {
          get: () => this.#handlers.get(name) ?? null,
          set: (fn: Handler | null) => {
            if (which.includes(name) && (!clearing || !fn)) throw new TypeError(`${name} cannot be set`)
            if (fn) this.#handlers.set(name, fn)
            else this.#handlers.delete(name)
          },
        })
        // What `ws` says goes to the handler set, if any (an error heard, as `ws` requires).
        ws[name] = (event: unknown) => this.#handlers.get(name)?.(event)
      }
    }

    get protocol(): string {
      return this.#ws.protocol
    }

    send(data: string | Uint8Array): void {
      this.#ws.send(data)
    }

    close(code?: number): void {
      this.#ws.close(code)
    }
  }
}

describe("an application's WebSocket whose handlers cannot be set", () => {
  it.each([
    ['onopen', ['onopen']],
    ['onmessage', ['onmessage']],
    ['onclose', ['onclose']],
    ['onerror', ['onerror']],
    ['any of them', ['onopen', 'onmessage', 'onclose', 'onerror']],
  ])(
    '(%s) fails its transport with PARLEY_TRANSPORT_ERROR, then SSE, and nothing escapes',
    async (_, which) => {
      const server = await startServer()
      const errors: unknown[] = []
      const thrown = await unheard(async () => {
        const socket = client(server.url, {
          transports: ['websocket', 'sse'],
          reconnection: false,
          WebSocket: sealed(which) as never,
        })
        socket.on('transport_error', (name: string, error: ParleyError<string>) =>
          errors.push([name, error.code, error.message]),
        )
        await next(socket, 'connect')
        expect(socket.transport).toBe('sse')
      })
      expect(errors).toEqual([
        [
          'websocket',
          ErrorCode.TRANSPORT_ERROR,
          expect.stringMatching(/^WebSocket failed: on\w+ cannot be set$/),
        ],
      ])
      expect(thrown).toEqual([])
    },
  )
})

describe("an application's WebSocket that refuses to have one handler cleared", () => {
  it.each([['onopen'], ['onmessage'], ['onclose']])(
    '(%s) has the other handlers cleared all the same once the client is done with it',
    async (which) => {
      const server = await startServer()
      const made: Record<string, unknown>[] = []
      const Refusing = sealed([which], { clearing: true })
      const thrown = await unheard(async () => {
        const socket = client(server.url, {
          transports: ['websocket'],
          reconnection: false,
          WebSocket: class extends Refusing {
            constructor(url: string, protocols: string) {
              super(url, protocols)
              made.push(this as unknown as Record<string, unknown>)
            }
          } as never,
        })
        await next(socket, 'connect')
        expect(socket.transport).toBe('websocket')
        socket.disconnect()
      })
      expect(made).toHaveLength(1)
      const ws = made[0] as Record<string, unknown>
      // The one that refused keeps its handler; none of the others holds one of the client's.
      for (const name of ['onopen', 'onmessage', 'onclose'])
        expect([name, ws[name]]).toEqual([name, name === which ? expect.any(Function) : null])
      expect(thrown).toEqual([])
    },
  )
})
