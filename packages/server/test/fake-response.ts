// A stand-in for the `ServerResponse` of a GET, for tests of one HTTP transport alone.
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'

/** A response that records its body; `drop()` is the client hanging up. */
export class FakeResponse extends EventEmitter {
  destroyed = false
  writableEnded = false
  writableLength = 0
  /**
   * A stand-in for its connection: a response being served has one (an SSE transport takes one
   * without for gone). Not a `net.Socket`, so the transport writes through the response.
   */
  socket: object | null = {}
  useChunkedEncodingByDefault = true
  req = { headers: {} }
  body = ''
  /** What `end` was given, as it was given (a string, or bytes). */
  ended: string | Uint8Array | undefined
  writeHead(): this {
    return this
  }
  write(chunk: string | Uint8Array): boolean {
    this.body += String(chunk)
    return true
  }
  end(body: string | Uint8Array = ''): void {
    this.ended = body
    this.body += String(body)
    this.writableEnded = true
    this.emit('close')
  }
  drop(): void {
    this.destroyed = true
    this.emit('close')
  }
  destroy(): void {
    if (this.destroyed) return
    this.drop()
  }
}

export const response = () => new FakeResponse() as FakeResponse & ServerResponse
