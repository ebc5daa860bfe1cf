// HTTP/1.1 over a bare TCP connection: the bytes go out exactly as a test writes them, so that
// it can send what no HTTP client would (a body cut short, an odd method, a broken upgrade) and
// see every byte of the answer, and when the connection closes.
import { connect, type Socket } from 'node:net'

/** One answer as it came over the connection. */
export interface RawAnswer {
  status: number
  /** Header names in lower case. */
  headers: Record<string, string>
  body: string
}

export class RawHttp {
  readonly socket: Socket
  /** Everything received so far, as latin1 text (one character per byte). */
  received = ''
  #isClosed = false
  /** Resolves when the connection has closed, either way. */
  readonly closed: Promise<void>

  private constructor(socket: Socket) {
    this.socket = socket
    socket.setEncoding('latin1')
    socket.on('data', (text: string) => {
      this.received += text
    })
    socket.on('error', () => {})
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true
        resolve()
      }),
    )
  }

  /** Opens a connection to 127.0.0.1:`port`. */
  static async open(port: number): Promise<RawHttp> {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawHttp(socket)
  }

  /** True once the connection closed. */
  get isClosed(): boolean {
    return this.#isClosed
  }

  /** Writes raw bytes (header lines end with `\r\n`). */
  write(text: string): void {
    this.socket.write(text, 'latin1')
  }

  /**
   * The first complete answer, once it is all there (within `timeoutMs`). `bodiless`: the
   * answer to a HEAD, whose Content-Length announces a body it does not carry.
   */
  async answer(timeoutMs = 5000, bodiless = false): Promise<RawAnswer> {
    const end = performance.now() + timeoutMs
    for (;;) {
      const answer = parseAnswer(this.received, bodiless)
      if (answer) return answer
      if (this.#isClosed || performance.now() > end) {
        throw new Error(
          `no complete answer (closed: ${this.#isClosed}); received: ${JSON.stringify(this.received)}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  /** Destroys the connection. */
  destroy(): void {
    this.socket.destroy()
  }
}

/** A request's head: request line, headers, blank line. */
export function head(method: string, path: string, headers: Record<string, string> = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  return `${lines.join('\r\n')}\r\n\r\n`
}

/**
 * The answer at the start of `text`, once its head and its body are there: its `Content-Length`
 * bytes, or its chunks up to the last (`Transfer-Encoding: chunked`).
 */
function parseAnswer(text: string, bodiless: boolean): RawAnswer | undefined {
  const headEnd = text.indexOf('\r\n\r\n')
  if (headEnd < 0) return undefined
  const [statusLine = '', ...lines] = text.slice(0, headEnd).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const status = Number(statusLine.split(' ')[1])
  const rest = text.slice(headEnd + 4)
  if (!bodiless && headers['transfer-encoding'] === 'chunked') {
    const body = dechunked(rest)
    return body === undefined ? undefined : { status, headers, body }
  }
  const length = bodiless ? 0 : Number(headers['content-length'] ?? 0)
  const body = Buffer.from(rest, 'latin1')
  if (body.length < length) return undefined
  return { status, headers, body: body.subarray(0, length).toString('utf8') }
}

/** A chunked body (latin1 text) decoded, once its last chunk is there; no trailers. */
function dechunked(text: string): string | undefined {
  const chunks: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at)
    if (lineEnd < 0) return undefined
    const size = Number.parseInt(text.slice(at, lineEnd), 16)
    if (size === 0) return Buffer.concat(chunks).toString('utf8')
    const start = lineEnd + 2
    if (text.length < start + size + 2) return undefined
    chunks.push(Buffer.from(text.slice(start, start + size), 'latin1'))
    at = start + size + 2
  }
}

/**
 * Writes on `raw` the head of a POST to `url` that announces a body of `length` bytes, and no
 * body: an answer that comes proves that nothing of the body was waited for.
 */
export function announcePost(raw: RawHttp, url: string, length: number): void {
  const { pathname, search } = new URL(url)
  raw.write(
    head('POST', `${pathname}${search}`, { 'Content-Type': 'text/plain', 'Content-Length': String(length) }),
  )
}
