// A `fetch` for the load generator built on `node:http`, the HTTP client socket.io-client uses
// in Node. Node's own fetch (undici) costs about four times more client CPU per request, which
// made the load generator, not the server, the limit of the SSE and polling scenarios. It does
// what the Parley client asks of fetch and no more: a URL string, method, headers, a string or
// byte body, `signal`, and an answer that reads as a WHATWG Response does (status, headers,
// text, JSON, a body read through a stream's reader as it arrives: SSE reads it so).
import http from 'node:http'

export interface OwnFetch {
  fetch: typeof fetch
  /** Closes the client's connections, idle or not. */
  close(): void
}

/** Statuses whose Response must have a null body (the WHATWG constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304])

/** fetch rejects with a TypeError when the network fails; so does this one. */
const networkError = (cause: unknown) => new TypeError('fetch failed', { cause })

function bodyBytes(body: BodyInit | null | undefined): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return body
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  throw new TypeError('this fetch sends only string or byte bodies')
}

/** The response's headers, repeated ones (set-cookie) kept apart as fetch keeps them. */
function responseHeaders(raw: readonly string[]): Headers {
  const headers = new Headers()
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
  return headers
}

/** One chunk of a body, or its end, as a stream's reader gives them. */
type Read = ReadableStreamReadResult<Uint8Array>

/**
 * The response body as the Parley client reads a stream: `getReader()`, then `read()` until done
 * (a polling answer, an event stream), or `cancel()`. A WHATWG ReadableStream per answer (its
 * controller, queue, reader and a promise through each) is CPU of this glue, not of the client
 * the bench measures: this hands each chunk from the connection straight to the read waiting
 * for it. (`Readable.toWeb` would not do either: its
 * `cancel()` destroys the connection even when the whole body has come, and the Parley client
 * cancels the body of every POST's answer: each POST would open a new connection.)
 * Cancelled, a body is drained, which keeps its connection for the next request, as browsers
 * and undici do; an event stream, which has no end, ends its connection.
 */
class LeanBody {
  readonly #incoming: http.IncomingMessage
  /** Chunks come but not read yet; the connection is paused while there are any. */
  readonly #chunks: Uint8Array[] = []
  /** The read waiting for the next chunk. */
  #waiting: { resolve(read: Read): void; reject(reason: unknown): void } | undefined
  #ended = false
  /** Why the body broke (the abort's reason, a cut connection), once it did. */
  #error: { reason: unknown } | undefined

  constructor(incoming: http.IncomingMessage) {
    this.#incoming = incoming
    incoming.on('data', (chunk: Buffer) => {
      const value = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      const waiting = this.#waiting
      this.#waiting = undefined
      if (waiting) waiting.resolve({ done: false, value })
      else {
        this.#chunks.push(value)
        incoming.pause()
      }
    })
    incoming.once('end', () => this.#settle())
    incoming.on('error', (err) => this.#settle({ reason: err }))
    // Closed before its end without an error (the connection went away): not a whole body.
    // Every answer closes once read: the errors are made only when it was not.
    incoming.once('close', () => {
      if (!this.#ended)
        this.#settle({ reason: networkError(new Error('connection closed before the end of the body')) })
    })
  }

  /** The body ended (`error` undefined) or broke; the first of these counts. */
  #settle(error?: { reason: unknown }): void {
    if (this.#ended) return
    this.#ended = true
    this.#error = error
    this.#incoming.removeAllListeners('data')
    const waiting = this.#waiting
    this.#waiting = undefined
    if (!waiting) return
    if (error) waiting.reject(error.reason)
    else waiting.resolve({ done: true, value: undefined })
  }

  /** The next chunk, or done; rejects once the body broke, as a stream's reader does. */
  read(): Promise<Read> {
    const value = this.#chunks.shift()
    if (value) return Promise.resolve({ done: false, value })
    if (this.#error) return Promise.reject(this.#error.reason)
    if (this.#ended) return Promise.resolve({ done: true, value: undefined })
    if (this.#waiting) return Promise.reject(new TypeError('one read at a time'))
    this.#incoming.resume()
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  getReader(): Pick<ReadableStreamDefaultReader<Uint8Array>, 'read' | 'cancel' | 'releaseLock'> {
    return { read: () => this.read(), cancel: () => this.cancel(), releaseLock: () => {} }
  }

  /** Stops reading; resolves once a body with an end was drained (its connection kept). */
  cancel(): Promise<void> {
    const incoming = this.#incoming
    const ended = this.#ended
    this.#chunks.length = 0
    this.#settle()
    if (ended || incoming.readableEnded) return Promise.resolve()
    // An event stream never ends on its own: its connection goes. Any other body is drained,
    // and the cancel is done once it was (the connection is then free for the next request).
    if (!incoming.complete && incoming.headers['content-type']?.startsWith('text/event-stream')) {
      incoming.destroy()
      return Promise.resolve()
    }
    const drained = new Promise<void>((resolve) => {
      incoming.once('end', resolve)
      incoming.once('close', resolve)
    })
    incoming.resume()
    return drained
  }

  /** The rest of the body as UTF-8. */
  async text(): Promise<string> {
    const decoder = new TextDecoder()
    let text = ''
    for (let read = await this.read(); !read.done; read = await this.read())
      text += decoder.decode(read.value, { stream: true })
    return text + decoder.decode()
  }
}

/**
 * What the Parley client reads of a Response: status, headers, the body as text or JSON, or as a
 * stream (SSE). A WHATWG Response costs a stream, a Headers and undici's body reading per
 * request, a seventh of the load generator's CPU in the polling broadcast, where the generator
 * is the limit: here the body (a LeanBody) is made only when `body` is read, the headers when
 * `headers` is, and `text()` reads the connection directly.
 */
class LeanResponse {
  readonly status: number
  readonly statusText: string
  readonly #incoming: http.IncomingMessage
  readonly #nullBody: boolean
  #body: LeanBody | undefined
  #headers: Headers | undefined

  constructor(incoming: http.IncomingMessage, status: number, nullBody: boolean) {
    this.#incoming = incoming
    this.status = status
    this.statusText = incoming.statusMessage ?? ''
    this.#nullBody = nullBody
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }

  get headers(): Headers {
    this.#headers ??= responseHeaders(this.#incoming.rawHeaders)
    return this.#headers
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#nullBody) return null
    this.#body ??= new LeanBody(this.#incoming)
    // What the Parley client calls of a stream's, and no more (see LeanBody).
    return this.#body as unknown as ReadableStream<Uint8Array>
  }

  /** The whole body as UTF-8; rejects as the stream would (an abort's reason, a cut connection). */
  text(): Promise<string> {
    if (this.#nullBody) return Promise.resolve('')
    if (this.#body) return this.#body.text()
    const incoming = this.#incoming
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
      incoming.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      incoming.once('error', reject)
      incoming.once('close', () => {
        if (!incoming.complete)
          reject(networkError(new Error('connection closed before the end of the body')))
      })
    })
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }
}

/** Where a request goes: what `http.request` takes of a URL. */
interface Target {
  host: string
  port: string
  path: string
}

/**
 * A URL the URL parser would give back as it is: printable ASCII but what it escapes or reads
 * otherwise (spaces, quotes, angle brackets, backslashes, `#`), no credentials, and a path free of
 * dot segments (`/.`, `/%2e`). What the Parley client asks for always is.
 */
const PLAIN_URL = /^http:\/\/([\w.-]+)(?::(\d{1,5}))?(\/(?![^?]*\/(?:\.|%2[eE]))[!$%&(-;=?-[\]_a-z~]*)?$/

/**
 * The URL's host, port and path. A URL string of the plain shape the client sends is cut as it
 * is, rather than parsed into a URL object per request (CPU of this glue, not of the client the
 * bench measures). Any other goes through the URL parser.
 */
function target(input: string | URL): Target {
  const plain = typeof input === 'string' ? PLAIN_URL.exec(input) : null
  if (plain) return { host: plain[1]!, port: plain[2] ?? '80', path: plain[3] ?? '/' }
  const url = new URL(input)
  if (url.protocol !== 'http:') throw new TypeError(`this fetch speaks http: only, not ${url.protocol}`)
  // As fetch does: a request's URL may not carry credentials.
  if (url.username || url.password) throw new TypeError('this fetch takes no credentials in the URL')
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || '80',
    path: url.pathname + url.search,
  }
}

/**
 * The request's headers, names in lower case as fetch sends them. A plain object of strings,
 * what the Parley client passes, is copied as it is (`http.request` checks names and values);
 * anything else goes through `Headers`, which reads every form fetch takes. (A `Headers` per
 * request, undici's, checking every name and value, was a visible part of the load generator's
 * CPU per request.)
 */
function requestHeaders(init: HeadersInit | undefined): Record<string, string> {
  const headers: Record<string, string> = {}
  if (init === undefined) return headers
  if (Object.getPrototypeOf(init) === Object.prototype) {
    const plain = init as Record<string, unknown>
    let strings = true
    for (const name in plain) {
      const value = plain[name]
      if (typeof value !== 'string') strings = false
      else headers[name.toLowerCase()] = value
    }
    if (strings) return headers
  }
  new Headers(init).forEach((value, name) => {
    headers[name] = value
  })
  return headers
}

/**
 * A fetch with a keep-alive connection pool of its own, as a browser tab has: one per simulated
 * client, so that no client's request waits for, or searches through, another's connections.
 */
export function httpFetch(): OwnFetch {
  const agent = new http.Agent({ keepAlive: true })
  const request = (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      if (typeof input !== 'string' && !(input instanceof URL))
        throw new TypeError('this fetch takes a URL, not a Request')
      const url = target(input)
      const { signal } = init
      signal?.throwIfAborted()
      const body = bodyBytes(init.body)
      const headers = requestHeaders(init.headers)
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body))

      const req = http.request({ ...url, method: init.method ?? 'GET', headers, agent })
      let res: http.IncomingMessage | undefined
      // Aborting ends the exchange at any stage, as fetch does: before the answer the promise
      // rejects, after it the body stream errors, both with the signal's reason.
      const onAbort = () => {
        const reason: unknown = signal?.reason
        res?.destroy(reason as Error)
        req.destroy(reason as Error)
        reject(reason)
      }
      // Without `once`: a signal aborts once, and the listener goes with the exchange anyway.
      signal?.addEventListener('abort', onAbort)
      // 'close' comes once the exchange is over (body read or connection gone): the listener
      // must not outlive it, or a long-lived signal would collect one per request.
      req.once('close', () => signal?.removeEventListener('abort', onAbort))
      req.on('error', (err) => reject(signal?.aborted ? signal.reason : networkError(err)))
      req.once('response', (incoming) => {
        res = incoming
        const status = incoming.statusCode ?? 0
        const nullBody = NULL_BODY.has(status) || init.method === 'HEAD'
        // A body nobody will read is drained, which gives the connection back to the pool.
        if (nullBody) incoming.resume()
        if (status < 200 || status > 599) {
          // A status a WHATWG Response cannot hold: the answer is unusable.
          req.destroy()
          reject(networkError(new RangeError(`status ${status}`)))
          return
        }
        resolve(new LeanResponse(incoming, status, nullBody) as unknown as Response)
      })
      req.end(body)
    })
  return {
    fetch: request as typeof fetch,
    close: () => agent.destroy(),
  }
}
