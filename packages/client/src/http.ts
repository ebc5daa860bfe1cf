import { ErrorCode, type HelloPacket, ParleyError } from '@parley/protocol'
import { decodeText, encodeText } from './codec.js'
import type { Outgoing } from './outgoing.js'
import * as PacketType from './packet-type.js'
import {
  BaseTransport,
  notFound,
  shown,
  timeoutError,
  transportError,
  type Welcome,
  welcome,
} from './transports/transport.js'

export type Fetch = typeof fetch

/**
 * Builds the ParleyError an HTTP error answer to `url` stands for, from its `{code, message}`
 * body. A 404 without a code of Parley's means nothing is there: a wrong URL or path, which no
 * retry will fix (PARLEY_NOT_FOUND, a refusal).
 */
export async function httpError(res: Response, url: string): Promise<ParleyError<string>> {
  const status = res.status
  let b: { code?: unknown; message?: unknown } = {}
  try {
    b = (await res.json()) ?? {}
  } catch {}
  const code = typeof b.code === 'string' ? b.code : undefined
  if (!code && status === 404) return notFound(url)
  // 403 is the middleware or the origin check, 401 the application's own auth hook: the server
  // refuses the client, not the transport. A version refusal would be the same anywhere.
  return new ParleyError<string>(
    code ?? ErrorCode.TRANSPORT_ERROR,
    typeof b.message === 'string' ? b.message : `HTTP ${status} from ${shown(url)}`,
    {
      details: {
        status,
        refused: status === 401 || status === 403 || code === ErrorCode.UNSUPPORTED_VERSION,
      },
    },
  )
}

/**
 * What SSE and polling share: the handshake (POST one HELLO line, get one OPEN line), the
 * upstream of POSTs, and the teardown. A subclass opens the downstream once the handshake gave
 * the session's URL.
 */
export abstract class HttpTransport extends BaseTransport {
  // An ACK alone is a whole POST: it waits longer for company.
  readonly ackDelay = 1000
  readonly pooled = true
  /** Aborts the request in flight: the handshake, then the downstream's. */
  protected ctl = new AbortController()
  #upstream: Upstream | undefined

  // `declare`: set by the constructor alone (no field of the same name declared beforehand).
  /** The endpoint: the base URL, `/sse` or `/poll`, `?v=1` and the URL's own parameters. */
  declare readonly url: string
  declare readonly fetchFn: Fetch
  /** The largest packet taken from the server: OPEN's `maxPayload` once it came. */
  declare maxPayload: number

  constructor(url: string, fetchFn: Fetch, maxPayload: number) {
    super()
    this.url = url
    this.fetchFn = fetchFn
    this.maxPayload = maxPayload
  }

  /** Opens the downstream at `url`; resolves once it works (`open` bounds the wait). */
  protected abstract downstream(url: string): Promise<void> | void

  async open(hello: HelloPacket, timeout: number): Promise<Welcome> {
    const ctl = this.ctl
    // One bound for the whole attempt: the timeout aborts the transport's controller, which ends
    // the handshake or the downstream's first request, whichever is under way.
    const timer = setTimeout(() => ctl.abort(), timeout)
    try {
      const res = await this.fetchFn(this.url, {
        method: 'POST',
        body: encodeText(hello),
        headers: TEXT,
        signal: ctl.signal,
      })
      if (res.status !== 200) throw await httpError(res, this.url)
      const open = welcome(decodeText((await res.text()).trim()))
      // The session we asked to resume has ended: nothing to open.
      if (open.type === PacketType.CLOSE) return open
      this.maxPayload = open.maxPayload
      const url = `${this.url}&sid=${encodeURIComponent(open.sid)}`
      this.#upstream = new Upstream(this.fetchFn, url, open.maxPayload, (e) => this.fail(e))
      await this.downstream(url)
      return open
    } catch (err) {
      // With an upstream, the handshake is done: the downstream failed.
      const down = this.#upstream
      const error =
        err instanceof ParleyError
          ? err
          : ctl.signal.aborted
            ? timeoutError(down ? 'no stream data' : 'no OPEN', timeout)
            : transportError(`${down ? 'GET' : 'POST'} ${shown(this.url)} failed`, err)
      this.close()
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  send(items: readonly Outgoing[]): void {
    this.#upstream?.send(items)
  }

  protected teardown(): void {
    this.#upstream?.finish()
    this.ctl.abort()
  }
}

/** Headers of a "simple" request: browsers send no CORS preflight for it. */
const TEXT = { 'content-type': 'text/plain;charset=UTF-8' }

/** How long to wait before sending again a body the server answered 409 (a POST overlapped). */
const RETRY_409_MS = 25

/**
 * The upstream of the HTTP transports: packet lines go out in POST bodies, one POST at a time
 * (the server refuses overlapping ones), each body under `maxPayload` bytes.
 */
export class Upstream {
  #lines: { text: string; bytes: number }[] = []
  #busy = false
  #closed = false
  #afterBusy: (() => void) | undefined

  readonly #fetch: Fetch
  readonly #url: string
  readonly #maxPayload: number
  readonly #onFail: (error: ParleyError<string>) => void

  constructor(fetchFn: Fetch, url: string, maxPayload: number, onFail: (error: ParleyError<string>) => void) {
    this.#fetch = fetchFn
    this.#url = url
    this.#maxPayload = maxPayload
    this.#onFail = onFail
  }

  send(lines: readonly { text: string; bytes: number }[]): void {
    if (this.#closed) return
    for (const l of lines) this.#lines.push(l)
    this.#flush()
  }

  /**
   * Takes no more lines, but sends those already queued (at most one more POST, failures
   * ignored): a CLOSE queued just before should still reach the server. In-flight POSTs are never
   * aborted, since the server decides, by the session's state, what to do with them.
   */
  finish(): void {
    if (this.#closed) return
    this.#closed = true
    const rest = this.#lines
    this.#lines = []
    if (rest.length === 0) return
    // Once closed, #post only sends: whatever the answer, nothing more follows.
    const send = () => void this.#post(rest)
    if (!this.#busy) send()
    else this.#afterBusy = send
  }

  #flush(): void {
    if (this.#busy || this.#closed || this.#lines.length === 0) return
    // Take lines while the body (lines joined by "\n") stays under maxPayload; at least one,
    // which the session already checked against the limit.
    let size = this.#lines[0]!.bytes
    let n = 1
    while (n < this.#lines.length && size + 1 + this.#lines[n]!.bytes <= this.#maxPayload) {
      size += 1 + this.#lines[n]!.bytes
      n++
    }
    const batch = this.#lines.splice(0, n)
    this.#busy = true
    void this.#post(batch)
  }

  /**
   * No POST in flight any more. After `finish()`, the last lines go now, whatever became of the
   * POST before them (answered, refused with 409, or failed): the CLOSE among them must not be
   * lost, or the server would keep the session for its whole recovery window.
   */
  #idle(): void {
    this.#busy = false
    this.#afterBusy?.()
    this.#afterBusy = undefined
  }

  async #post(batch: { text: string; bytes: number }[]): Promise<void> {
    const body = batch.map((l) => l.text).join('\n')
    try {
      const res = await this.#fetch(this.#url, { method: 'POST', body, headers: TEXT })
      if (this.#closed) {
        this.#idle()
        await res.body?.cancel()
        return
      }
      if (res.status === 409) {
        // Another POST of ours is still being read: send the same lines again shortly.
        this.#lines.unshift(...batch)
        await res.body?.cancel()
        setTimeout(() => {
          this.#idle()
          this.#flush()
        }, RETRY_409_MS)
        return
      }
      if (res.status >= 300) {
        this.#closed = true
        this.#onFail(await httpError(res, this.#url))
        return
      }
      await res.body?.cancel()
      this.#busy = false
      this.#flush()
    } catch (err) {
      if (this.#closed) return this.#idle()
      this.#closed = true
      this.#onFail(transportError(`POST ${shown(this.#url)} failed`, err))
    }
  }
}
