import type { IncomingHttpHeaders } from 'node:http'
import type { JsonValue, TransportName } from '@parley/protocol'
import type { Handshake } from './types.js'

/**
 * The request that carried a HELLO. `url` and `params` came after the others, and are optional
 * so that a request built by hand before them (a test of a middleware) still is one.
 */
export interface HandshakeRequest {
  headers: IncomingHttpHeaders
  query: Record<string, string>
  address: string
  /** The request's URL as it came, path and query (see `Handshake.url`); `''` when left out. */
  url?: string
  /**
   * The route's parameters, as Fastify gives them (see `Handshake.params`); `{}` when left out,
   * as under a route without parameters.
   */
  params?: Record<string, string>
}

/** `request.params`, or what a request without them stands for: a route without parameters. */
export function paramsOf(request: HandshakeRequest): Record<string, string> {
  return request.params ?? {}
}

/**
 * Between the names and values of a packed form (see `pack`): HTTP forbids NUL in header names
 * and values, and a query string that holds one (`%00`) is kept as an object instead.
 */
const SEP = '\0'
/** Between the headers and the query in a packed form. */
const PART = '\u0001'

/** Accessor descriptors, their functions set by `SocketHandshake` (its static block). */
const HEADERS: PropertyDescriptor = { enumerable: true, configurable: true }
const QUERY: PropertyDescriptor = { enumerable: true, configurable: true }
const TIME: PropertyDescriptor = { enumerable: true, configurable: true }
const ISSUED: PropertyDescriptor = { enumerable: true, configurable: true }

/**
 * What `issued` is counted from in a handshake: a number of milliseconds since then stays a
 * small integer in the handshake itself for 24 days, where a date in milliseconds takes an
 * object of its own (16 bytes per connection). On the wall clock, as `issued` is: only a base
 * that `issued` is given back from whole, never a deadline.
 */
const EPOCH = Date.now()

/**
 * `issued - EPOCH`, made a small integer where it is one: V8 gives the result of a subtraction
 * of two large numbers an object of its own even when it is small, `Math.round` does not.
 */
const sinceEpoch = (issued: number) => Math.round(issued - EPOCH)

/**
 * `socket.handshake`: what the server knew about the client when it last attached.
 *
 * It reads as the plain object it describes: nine own enumerable members, in the documented
 * order, each one assignable, so that spreading, `Object.keys` and JSON see what they always
 * saw. It is kept more compactly, though, since it lives as long as the connection (idle memory
 * per connection is one of Parley's benchmarks): the headers and the query as one string, made
 * into their objects when first read (then each read gives the same object, and changes to it
 * stay), `issued` as a count from `EPOCH`, and `time` written out from `issued` when read. Those
 * four are accessors for that, the same pair of functions on every handshake, which V8 keeps
 * once in the shape the handshakes share rather than in each of them.
 */
export class SocketHandshake implements Handshake {
  declare headers: IncomingHttpHeaders
  declare query: Record<string, string>
  declare auth: JsonValue | undefined
  declare address: string
  declare time: string
  declare issued: number
  declare transport: TransportName
  declare url: string
  declare params: Record<string, string>

  /** The headers and the query not read yet, packed (see `pack`); undefined once both were. */
  #packed: string | undefined
  #headers: IncomingHttpHeaders | undefined
  #query: Record<string, string> | undefined
  /** `issued - EPOCH`. */
  #issued: number

  constructor(
    request: HandshakeRequest,
    auth: JsonValue | undefined,
    transport: TransportName,
    // The wall clock, not the monotonic one the server's own deadlines read: `issued` is a date
    // (`time` writes it out), read by the application and, in a handoff's snapshot (`created`),
    // by the node that takes the session over, another process whose monotonic clock counts
    // from its own start.
    issued = Date.now(),
  ) {
    const packed = pack(request.headers, request.query)
    if (packed === undefined) {
      this.#headers = request.headers
      this.#query = request.query
    } else {
      this.#packed = packed
    }
    // One member after the other, accessors included, so that the order of the keys is the
    // documented one.
    Object.defineProperty(this, 'headers', HEADERS)
    Object.defineProperty(this, 'query', QUERY)
    this.auth = auth
    this.address = request.address
    Object.defineProperty(this, 'time', TIME)
    this.#issued = sinceEpoch(issued)
    Object.defineProperty(this, 'issued', ISSUED)
    this.transport = transport
    this.url = request.url ?? ''
    this.params = paramsOf(request)
  }

  static {
    HEADERS.get = function (this: SocketHandshake) {
      if (this.#headers === undefined) {
        this.#headers = unpackHeaders(this.#packed!)
        if (this.#query !== undefined) this.#packed = undefined
      }
      return this.#headers
    }
    HEADERS.set = function (this: SocketHandshake, value: IncomingHttpHeaders) {
      this.#headers = value
      if (this.#query !== undefined) this.#packed = undefined
    }
    QUERY.get = function (this: SocketHandshake) {
      if (this.#query === undefined) {
        this.#query = unpackQuery(this.#packed!)
        if (this.#headers !== undefined) this.#packed = undefined
      }
      return this.#query
    }
    QUERY.set = function (this: SocketHandshake, value: Record<string, string>) {
      this.#query = value
      if (this.#headers !== undefined) this.#packed = undefined
    }
    TIME.get = function (this: SocketHandshake) {
      return new Date(this.issued).toISOString()
    }
    // Assigned (who would?): from then on a plain member of this handshake.
    TIME.set = function (this: SocketHandshake, value: string) {
      Object.defineProperty(this, 'time', { value, writable: true, enumerable: true, configurable: true })
    }
    ISSUED.get = function (this: SocketHandshake) {
      return EPOCH + this.#issued
    }
    ISSUED.set = function (this: SocketHandshake, value: number) {
      this.#issued = sinceEpoch(value)
    }
  }
}

/**
 * The headers and the query as one string: `name SEP value SEP ...` for the headers, `PART`,
 * then the query's pairs the same way. Undefined when one of them holds anything but strings
 * free of the separators (a header an `onRequest` hook set to a number, `set-cookie`'s array,
 * a query value with `%00`): those are kept as they are.
 */
function pack(headers: IncomingHttpHeaders, query: Record<string, string>): string | undefined {
  const parts: string[] = []
  for (const name in headers) {
    const value: unknown = headers[name]
    if (typeof value !== 'string' || !plain(name) || !plain(value)) return undefined
    parts.push(name, SEP, value, SEP)
  }
  parts.push(PART)
  for (const key in query) {
    const value: unknown = query[key]
    if (typeof value !== 'string' || !plain(key) || !plain(value)) return undefined
    parts.push(key, SEP, value, SEP)
  }
  // `join` makes one string; `+=` would make a tree of pieces, each an object of its own.
  return parts.join('')
}

const plain = (text: string) => !text.includes(SEP) && !text.includes(PART)

function unpackHeaders(packed: string): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {}
  unpackInto(headers, packed, 0, packed.indexOf(PART))
  return headers
}

function unpackQuery(packed: string): Record<string, string> {
  const query: Record<string, string> = {}
  unpackInto(query, packed, packed.indexOf(PART) + 1, packed.length)
  return query
}

/** Assigns each pair of `packed[from, to)` to `into`, in order, as they were read from. */
function unpackInto(
  into: Record<string, string | string[] | undefined>,
  packed: string,
  from: number,
  to: number,
) {
  let at = from
  while (at < to) {
    const nameEnd = packed.indexOf(SEP, at)
    const valueEnd = packed.indexOf(SEP, nameEnd + 1)
    into[packed.slice(at, nameEnd)] = packed.slice(nameEnd + 1, valueEnd)
    at = valueEnd + 1
  }
}
