import { decodeText, utf8Length } from '../codec.js'
import { HttpTransport, httpError } from '../http.js'
import { tooLarge, transportError } from './transport.js'

/**
 * Server-Sent Events read with fetch streaming (browsers and Node alike), POST upstream.
 * Reading the stream ourselves, rather than with EventSource, is what lets us see a proxy that
 * buffers the body: the server's 2 KiB prelude must arrive within the connect timeout.
 */
export class SseTransport extends HttpTransport {
  readonly name = 'sse'
  // An ACK alone is a whole POST, for the server too: a receiving client sends one every five
  // seconds (or after 256 packets), a fifth of the POSTs of one a second. What the server keeps
  // for replay meanwhile is bounded by the PING it sends to ask for the ACK (see Transport).
  readonly ackDelay = 5000
  readonly ackAfter = 256

  /**
   * Opens the stream; resolves once its first bytes came, then keeps reading in the background.
   * The GET carries the ACK (as polling's do): a GET this client gave up on that reached the
   * server first took the stream, and the server then writes what it wrote there again.
   */
  protected async downstream(url: string): Promise<void> {
    const res = await this.setup.fetchFn(`${url}&ack=${this.ackParam()}`, {
      headers: { accept: 'text/event-stream' },
      signal: this.ctl.signal,
    })
    if (res.status !== 200) throw await httpError(res, url)
    // A 200 that is no event stream (a filter's block page in its place) fails open() here:
    // taken for a stream, it ended at once, and every probe climbed onto it again. Media types
    // are case-insensitive (RFC 9110): a proxy may write `Text/Event-Stream`. No content type at
    // all (null) fails too.
    if (!/^text\/event-stream/i.test(res.headers.get('content-type') ?? ''))
      throw transportError('not an event stream')
    // The platform's 200 always has a body; none (which only an application's fetch could give)
    // is a stream that ended before its first bytes, not the engine's TypeError for a null.
    const reader = res.body?.getReader()
    const first = await reader?.read()
    // (No `first` without a `reader`: the guard says so to TypeScript.)
    if (!reader || !first || first.done) throw transportError('stream ended')
    void this.#read(reader, first.value)
  }

  /** Reads the stream from its first `chunk` on; `chunk` then holds each next one. */
  async #read(reader: ReadableStreamDefaultReader<Uint8Array>, chunk: Uint8Array | undefined): Promise<void> {
    const text = new TextDecoder()
    let buffer = ''
    let data: string[] = []
    try {
      while (chunk && !this.closed) {
        // Whole lines now (ended by LF or CRLF); the last, unfinished one waits for the next
        // chunk, a CR at its end too.
        const lines = (buffer + text.decode(chunk, { stream: true })).split(/\r?\n/)
        // `split` gives at least one part: the `''` is never taken.
        buffer = lines.pop() ?? ''
        for (const line of lines) {
          if (line === '') {
            // A blank line ends an event; the data lines of one event join with "\n".
            if (data.length > 0) this.deliver(decodeText(data.join('\n'), this.payloadMax))
            data = []
          } else if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5))
          // Comments (the prelude) and other fields carry nothing for us.
        }
        // In Node, an event or a line that outgrows any packet (the slack covers the field
        // name and the 2 KiB prelude) ends the stream before it takes the memory of the whole
        // process; see `boundedBody` (http.ts) for why browsers are left out. Counted in UTF-8
        // bytes, as maxPayload is (`utf8Length` counts without a copy in Node).
        if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
          let held = 0
          for (const part of [buffer, ...data]) held += utf8Length(part)
          if (held > this.payloadMax + 4096) {
            this.fail(tooLarge('event', this.payloadMax))
            return
          }
        }
        const next = await reader.read()
        chunk = next.done ? undefined : next.value
      }
      this.fail(transportError('stream ended'))
    } catch (err) {
      this.fail(transportError('stream broke', err))
    }
  }
}
