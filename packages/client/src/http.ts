import {
  ErrorCode,
  isBusyCode,
  isWireCode,
  MAX_TIMER_MS,
  type OpenPacket,
  ParleyError,
} from '@parley/protocol'
import { decodeText } from './codec.js'
import { deadline } from './deadline.js'
import { BYE, type Outgoing } from './outgoing.js'
import * as PacketType from './packet-type.js'
import {
  afterGrace,
  BaseTransport,
  shown,
  silence,
  timeoutError,
  tooLarge,
  transportError,
  type Welcome,
} from './transports/transport.js'
import { defaultMaxPayload } from './wire-limits.js'

/**
 * How long to wait before sending again a body the server answered 409 (a POST overlapped).
 * Declared above its use, so that the bundler writes the number in its place.
 */
const RETRY_409_MS = 25

export type Fetch = typeof fetch

/**
 * What `httpError` reads of an HTTP answer: a fetch `Response`, or (Node, `ws`) the answer to a
 * WebSocket upgrade (see `hearRefusal`).
 */
export interface ErrorAnswer {
  readonly status: number
  /** A fetch `Response`'s body, which Node reads through `boundedBody`. */
  readonly body?: ReadableStream<Uint8Array> | null
  /** The body parsed as JSON; rejects when it is not JSON. */
  json(): Promise<unknown>
}

/**
 * Builds the ParleyError an HTTP error answer to `url` stands for, from its `{code, message}`
 * body. A 404 without a code of Parley's means nothing is there: a wrong URL or path, which no
 * retry will fix (PARLEY_NOT_FOUND, a refusal). `hello`: the transport whose HELLO this answers,
 * told whether the server cannot have taken it (`unsent`).
 */
export async function httpError(
  res: ErrorAnswer,
  url: string,
  hello?: { unsent?: boolean },
): Promise<ParleyError<string>> {
  const status = res.status
  let b: { code?: unknown; message?: unknown; middleware?: unknown } = {}
  try {
    // In Node a fetch's body is read through `boundedBody`: one with no end (a broken proxy, a
    // hostile server) must not take the process's memory, an error's no more than a 200's. Its
    // bound is the protocol's default maxPayload, far above any `{code, message}`: past it the
    // error has its status alone. A page is bounded by the browser itself, and gets its server
    // from its own origin, which could harm it anyway: its build reads the body whole.
    b =
      ((await ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE || !res.body
        ? res.json()
        : JSON.parse(await boundedBody(res, defaultMaxPayload)))) as typeof b | null) ?? {}
  } catch {}
  const received = b.code
  // A code of Parley's: one the protocol defines, or an application's own (a middleware's
  // refusal), both of the form the server puts on the wire (`isWireCode`, the rule an ERROR
  // packet's code is held to; a PARLEY_ code of another release's protocol too). Any other
  // (empty, in lower case, not a string: a proxy's or another service's JSON error body) would
  // match no `switch (error.code)` of the application's: the answer is read as one without a
  // code, and its body kept in `details.body`.
  // A 503 without a code of Parley's is a server closing: from the first moment of `app.close()`
  // Fastify answers every request so itself, before Parley sees it (or a proxy in front has no
  // node to offer). Read as the shutdown it is: the same transport once more (a balancer sends
  // it to another node), then the others, the session kept.
  const code = isWireCode(received) ? received : status === 503 ? ErrorCode.SERVER_SHUTTING_DOWN : undefined
  // For the answer to a HELLO (`hello`, its transport): whether the server may have taken it (see
  // Connection.moved). An error under 500 (a 4xx: Parley answers a HELLO it took with 200 alone)
  // with a code in its body is Parley's refusal (version, origin, method, size, a body that is no
  // HELLO, a middleware's refusal), or an application hook's before Parley's handler; a node that
  // sends the request on to another gives back that node's coded 4xx as it is. A 4xx without a
  // code is from something in front, which may have judged the server's answer (a firewall's
  // rules on answers): taken, maybe. A 5xx, too: a balancer's 502 or 504 after the node read the
  // HELLO, a 503 of a node whose relay broke once the other node had it. (The client README's
  // table, "Fallback and upgrade".)
  if (hello) hello.unsent = status < 500 && !!code
  // The body as it came, when its code was not taken (see above) or it had none and was read as
  // a shutdown (a 503) or as nothing there (a 404): it may say whose it is.
  const body = code === received ? undefined : b
  // Nothing is at `url` (HTTP 404 without a code of Parley's): a refusal, no retry would help.
  if (!code && status === 404) {
    return new ParleyError(ErrorCode.NOT_FOUND, `404 at ${shown(url)}: check URL and path`, {
      details: { status, refused: true, body },
    })
  }
  // 403 is the middleware or the origin check, 401 the application's own auth hook: the server
  // refuses the client, not the transport. Not when the body's code is a busy node's (full,
  // shutting down: a hook or a middleware of the application's that says so in a 403): that
  // passes, and the client tries again, as after a 503 or the same code in a WebSocket's ERROR
  // (read from `b`: such a code is of Parley's form, so it is `code` too). A version
  // refusal would be the same anywhere, and so would a HELLO past the server's maxPayload (413),
  // as the WebSocket's close 1009 says.
  return new ParleyError<string>(
    code ?? ErrorCode.TRANSPORT_ERROR,
    // The body's message goes with the body's code, or with none: a bare 503's ("Service
    // Unavailable") would say less than the URL.
    typeof b.message === 'string' && code === received ? b.message : `HTTP ${status} from ${shown(url)}`,
    {
      details: {
        status,
        refused:
          ((status === 401 || status === 403) && !isBusyCode(received)) ||
          code === ErrorCode.UNSUPPORTED_VERSION ||
          (!!hello && code === ErrorCode.PAYLOAD_TOO_LARGE),
        // The server's handshake middleware was slow, not this transport (see Connection).
        middleware: b.middleware === true || undefined,
        body,
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
  readonly pooled = true
  /**
   * The server cannot have taken the HELLO: its POST was answered with a coded 4xx (`httpError`,
   * browsers too), or, in Node, failed before its connection opened (see open()).
   */
  declare unsent?: boolean
  /** The HELLO's POST failed on a connection that closed under it (see Transport.reset). */
  declare reset?: boolean
  /** Aborts the request in flight: the handshake, then the downstream's. */
  protected ctl = new AbortController()
  /**
   * The session's URL, once the handshake gave it: the downstream's and the upstream's. Set
   * before any line can be queued: the owner sends only on a transport whose open() resolved.
   * Undefined before (as the flags below are rather than false: see BaseTransport.closed).
   */
  #session?: string
  /** Packet lines waiting for a POST. */
  #lines: Outgoing[] = []
  /** A POST is in flight: the server refuses overlapping ones. */
  #busy?: boolean
  /**
   * How long a POST may go unanswered, in ms: the heartbeat window of the OPEN (see #post). Set
   * with `#session`, before any POST.
   */
  #postWithin!: number
  /**
   * Node only: when (performance.now()) the POSTs that go once the transport closed (at
   * disconnect(), the teardown's) must be answered, set by the teardown (see there). `declare`:
   * no field in the browser build, which never sets it.
   */
  declare protected endBy: number
  /**
   * The handshake opened a new session, whose first GET goes out before OPEN reaches the
   * session's books: they still count the packets of the session before (see `ack`).
   */
  #fresh?: boolean
  /**
   * disconnect() left this handshake (see leave): a session the server opened or resumed for it
   * is no one's any more, and needs the goodbye, however the handshake ends.
   */
  #left?: boolean

  /**
   * The ACK a GET carries (see `TransportSetup.ledger`). None in the first GET of a new session:
   * the last session's count, there, would acknowledge what the new one sent before that GET
   * (a welcome in `connection`), and the server would never send it again should the answer be
   * lost: a gap at every resume.
   */
  protected ackParam(): number {
    // What takeOwed gives, when anything was owed, is inSeq.
    const ack = this.setup.ledger.takeOwed() ?? this.setup.ledger.inSeq
    if (!this.#fresh) return ack
    this.#fresh = false
    return 0
  }

  /**
   * Left by disconnect() (see Transport.leave): the HELLO went at once, and the answer may be an
   * OPEN that needs the goodbye, so the handshake goes on, in Node for a grace at most (see
   * afterGrace), then the transport closes. Still open then with the session's URL, the OPEN came
   * and only the stream did not (a proxy that buffers it, or one stalled): the server holds the
   * session on this transport, which takes POSTs before its stream's first bytes, so the goodbye
   * goes in a POST of its own, as it would once the stream came. Without it the session lived out
   * the server's recovery window. (Closed by then, the handshake settled, and its owner said the
   * goodbye if one was due: `send` does nothing.) One closed already (an attempt paused after a
   * try that failed) has no answer to wait for: no grace, which would keep it 2 s for nothing.
   */
  leave(): void {
    this.#left = true
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE && !this.closed)
      afterGrace(() => {
        if (this.#session) this.send([BYE])
        this.close()
      })
  }

  /** Opens the downstream at `url`; resolves once it works (`open` bounds the wait). */
  protected abstract downstream(url: string): Promise<void> | void

  async open(
    hello: string,
    timeout: number,
    _patient?: boolean,
    stream = timeout,
    of?: string,
  ): Promise<Welcome> {
    const ctl = this.ctl
    // The timeout aborts the transport's controller, which ends the handshake or the
    // downstream's first request, whichever is under way. Each has a bound of its own: see below.
    // A bound (see deadline): after a stall, an answer that came meanwhile wins over it.
    let stop = deadline(() => ctl.abort(), timeout)
    let open: Welcome | undefined
    try {
      // No Content-Type of ours: fetch sends a string body as `text/plain;charset=UTF-8` (the
      // Fetch standard's "extract a body"), which keeps the POST a simple request, without a
      // CORS preflight; so does each upstream POST below.
      const res = await this.setup.fetchFn(this.url, {
        method: 'POST',
        body: hello,
        signal: ctl.signal,
      })
      if (res.status !== 200) throw await httpError(res, this.url, this)
      // One line, OPEN or CLOSE; an ACK line may come before a CLOSE (HELLO `closeAck`): held,
      // as packets after OPEN are, and taken before that CLOSE.
      const lines = (
        await ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE
          ? res.text()
          : boundedBody(res, this.payloadMax))
      )
        .trim()
        .split('\n')
      // `split` gives at least one line: the `''` is never taken.
      open = this.welcome(decodeText(lines.pop() ?? ''))
      for (const line of lines) this.deliver(decodeText(line))
      // The session we asked to resume has ended: nothing to open.
      if (open.type === PacketType.CLOSE) return open
      // At most MAX_TIMER_MS: a timer set for longer fires at once.
      this.#postWithin = Math.min(open.pingInterval + open.pingTimeout, MAX_TIMER_MS)
      // The decoder took the sid only as URL-safe characters: it needs no escaping.
      this.#session = `${this.url}&sid=${open.sid}`
      this.#fresh = !open.recovered
      // The stream's first bytes get the whole bound from its GET on, however long the OPEN took
      // (a resume whose node waited for the old node's tail): what a slow handshake left of one
      // bound would fail a working stream, and mark it stalled as if a proxy buffered it. The
      // whole of the attempt's too (`stream`), where this try had only what was left of it.
      stop()
      stop = deadline(() => ctl.abort(), stream)
      await this.downstream(this.#session)
      return open
    } catch (err) {
      // With the session's URL, the handshake is done: the downstream failed.
      const down = this.#session
      // A session the server opened for this try, which the client now leaves for another
      // transport: without a goodbye it would live out its recovery window, a `connection` the
      // application sees with no one behind it. A resumed one is the client's own, and goes on,
      // unless disconnect() left this handshake: then it ends too (in a browser, where nothing
      // cuts the handshake short, a stream that stalled fails here, its connect timeout passed).
      if (down && (this.#left || !(open as OpenPacket).recovered)) this.send([BYE])
      // A HELLO whose POST could not even connect never reached the server, which cannot have
      // taken this probe (see Connection.moved). Node alone can tell, with its own fetch alone:
      // - the HELLO goes in the POST's body, for SSE as for polling (the stream's GET comes once
      //   the OPEN did), so a failed POST may have delivered it;
      // - a browser says "Failed to fetch" alike for a connection refused, one lost once the POST
      //   went, and an answer it keeps from the page (no CORS headers) after the server took the
      //   HELLO; even a request it never began (the page's rules forbid it) fails so, later, as
      //   fetch never throws at the call;
      // - an application's fetch may try again on its own (after a reset, a 502), and its error
      //   is its last try's: "connection refused" there says nothing of a try before it that
      //   delivered the HELLO. The client sees only that no answer came back to it.
      // Wherever the client cannot know, the probe may have been taken (`unsent` stays false).
      if (
        !(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE &&
        !down &&
        this.setup.ownFetch
      ) {
        this.unsent ||= hasCode(err, NOT_CONNECTED)
        this.reset ||= hasCode(err, CLOSED_UNDER)
      }
      // A coded failure of ours as it is (transportError gives it back); anything else, what an
      // application's fetch rejected with included (a Proxy, on which even `instanceof` throws),
      // is read there with care.
      let error = transportError(`${down ? 'GET' : 'POST'} ${shown(this.url)} failed`, err)
      // Aborted by our timer alone: one the client closed (a probe given up while the stream's
      // first bytes were on their way) timed nothing out, and marked no stall.
      if (error !== err && ctl.signal.aborted && !this.closed)
        error = down
          ? // Opened, and nothing came: a proxy that buffers the stream, or a slow moment
            // (TransportMemory tells them apart by a second stall).
            timeoutError('no stream data', stream, of, { stalled: true })
          : timeoutError(`no OPEN from ${shown(this.url)}`, timeout, of)
      this.close()
      throw error
    } finally {
      stop()
    }
  }

  // The upstream: packet lines go out in POST bodies, one POST at a time (the server refuses
  // overlapping ones), each body under `maxPayload` bytes.

  /**
   * Queues lines; the first of a run waits for a microtask (no time): what the application sends
   * synchronously meanwhile (a loop of emits, the listeners of one answer) goes in the same POST.
   * Not what comes after an `await`, whose continuation is a microtask queued after this one: the
   * POST went, and it waits for that POST's answer. Sent at once, the first line went alone and
   * the rest in a second POST: an echo over polling took twice the requests, its answers split as
   * its POSTs were. Queued lines are never left without a flush to come: this microtask's, the
   * answer of the POST in flight's, or the teardown's.
   */
  send(items: readonly Outgoing[]): void {
    if (this.closed) return
    if (!this.#lines.length) queueMicrotask(() => this.#flush())
    for (const item of items) this.#lines.push(item)
  }

  /**
   * Sends the lines already queued, failures ignored: a CLOSE queued just before should still
   * reach the server. In-flight POSTs are never aborted, since the server decides, by the
   * session's state, what to do with them.
   *
   * The last lines go as any others (#flush): in bodies under maxPayload, one after another, each
   * once the POST before it is answered, whatever the answer (see #next), the CLOSE in the last.
   * In one body, what was queued behind a POST in flight (large emits) could pass maxPayload: the
   * server would refuse it (413) and end the session with 'payload too large', the emits lost.
   * They wait for the POST in flight: they must not overtake packets the server has not read yet
   * (it would drop them as a gap and end the session).
   *
   * But not a hidden page's goodbye (see `leaving`): a POST that waited for an answer that comes
   * late, or never (a proxy that holds it), would die with the page, and the session outlive the
   * tab for its whole recovery window. It goes at once, in one body, with those of the lines
   * before it that fit (see #post): POSTs of their own would die with the page. What the POST in
   * flight carried may then come after the CLOSE, too late. Should the server still be reading
   * that POST's body, it answers this one 409 and keeps the session for its window, as before:
   * closed, the client ignores the answer.
   */
  protected teardown(): void {
    this.ctl.abort()
    // Node only: one deadline for every POST that goes from now on, a heartbeat window away,
    // where each had a window of its own: a server that holds its answers (stalled, or behind a
    // proxy that swallows them) kept the process alive a window per body. Past it, what is left
    // is dropped: the server gave no sign of life for a whole window, and keeps the session for
    // its recovery window, as for a goodbye lost. (The POST in flight now, if any, ends within
    // its own bound, before this one; unanswered through it, it ends the sending: see #post.) A
    // page lives on: there each POST keeps its own window. A clock, not a timer whose verdict
    // waits a turn (see deadline): after a stall of the thread past the window, a goodbye let go
    // by an answer that came during the stall would find the transport let go by the server as
    // well, its heartbeat (the same window, from the last it heard) unanswered all that time:
    // refused, 400 PARLEY_TRANSPORT_MISMATCH, the session kept for its recovery window all the same.
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE)
      this.endBy = performance.now() + this.#postWithin
    if (leaving(this.#lines)) void this.#post(this.#lines.splice(0))
    else this.#flush()
  }

  /** Sends the next body, unless a POST is in flight: its answer calls this again. */
  #flush(): void {
    const lines = this.#lines
    if (this.#busy || lines.length === 0) return
    this.#busy = true
    // At least one line, which the session already checked against the limit.
    void this.#post(lines.splice(0, fitting(lines, this.payloadMax, -1) || 1))
  }

  /**
   * No POST in flight any more: the next body goes. After teardown, whatever became of the POST
   * before it (answered, refused, or failed): the CLOSE in the last must not be lost, or the
   * server would keep the session for its whole recovery window. (In Node, until the teardown's
   * deadline: see teardown.)
   */
  #next(): void {
    this.#busy = false
    this.#flush()
  }

  /**
   * One POST, bounded: the server answers one as soon as its body is in, and one left hanging (a
   * proxy that swallows it, a half-open connection) would hold back every packet after it while
   * the GETs or the stream still show the session alive. The bound is the heartbeat window
   * (pingInterval + pingTimeout), the silence the session allows the server before it gives up on
   * a transport: past it the transport fails (PARLEY_TRANSPORT_ERROR), the session resumes, and
   * what the server has not acknowledged goes again (the server drops what it already has).
   */
  async #post(batch: Outgoing[]): Promise<void> {
    // Set before any line was queued (see #session).
    const url = this.#session as string
    // A page's goodbye goes with keepalive, so that it outlives the page, and browsers refuse
    // keepalive bodies past 64 KiB (those of a page in flight, together); the server refuses one
    // past maxPayload (413), ending the session with 'payload too large'. So it carries, in order,
    // the lines before it that fit with it under both, and the rest is dropped, as disconnect()
    // drops whatever the server has not acknowledged. In a POST of their own they would die with
    // the page (its other requests are cancelled as it goes), or race the goodbye: overtaken by
    // it, dropped by the ended session; still being read when it comes, the goodbye answered 409
    // and the session kept for its recovery window. (Counted once more, the CLOSE itself may be
    // among those that fit: the splice takes only lines before it.)
    const keepalive = leaving(batch)
    if (keepalive) {
      const n = fitting(batch, Math.min(65_535, this.payloadMax), BYE.bytes)
      batch.splice(n, batch.length - 1 - n)
    }
    const body = batch.map((l) => l.text).join('\n')
    // Closed, in Node: what is left to the teardown's deadline (see there) bounds this POST, the
    // transport's heartbeat window no longer of use; and once it passed, nothing more goes.
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE && this.closed) {
      this.#postWithin = this.endBy - performance.now()
      if (this.#postWithin <= 0) {
        this.#lines = []
        return
      }
    }
    const ctl = new AbortController()
    // A bound (see deadline): after a stall of the thread past it, an answer that came during
    // the stall is read before the verdict, and stops it.
    const stop = deadline(() => ctl.abort(), this.#postWithin)
    try {
      const res = await this.setup.fetchFn(url, {
        method: 'POST',
        body,
        signal: ctl.signal,
        keepalive,
      })
      // Once closed, whatever the answer, the next body goes (see #next).
      if (!this.closed) {
        if (res.status === 409) {
          // Another POST of ours is still being read: send the same lines again shortly.
          this.#lines.unshift(...batch)
          await res.body?.cancel()
          setTimeout(() => this.#next(), RETRY_409_MS)
          return
        }
        if (res.status >= 300) {
          const error = await httpError(res, url)
          // The transport is done: nothing queued goes after this.
          this.#lines = []
          this.fail(error)
          return
        }
      }
      await res.body?.cancel()
      this.#next()
    } catch (err) {
      if (this.closed) {
        // Node: a POST left unanswered through its whole bound ends what the teardown sends, the
        // server silent for a window. Not left to the deadline's clock alone: the bound of a POST
        // in flight at the teardown ends before the deadline, by as little as the time between
        // them (or less: Node's timers run on the loop's clock, behind performance.now()), and
        // what is left would go with that sliver of a bound, and still reach the server.
        if (
          !(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE &&
          ctl.signal.aborted
        ) {
          this.#lines = []
          return
        }
        return this.#next()
      }
      // The transport is done: nothing queued goes after this.
      this.#lines = []
      this.fail(
        ctl.signal.aborted
          ? silence(`POST ${shown(url)}: no answer`, this.#postWithin)
          : transportError(`POST ${shown(url)} failed`, err),
      )
    } finally {
      stop()
    }
  }
}

/**
 * How many of `lines`, from the first, go in a body (lines joined by "\n") of at most `max`
 * bytes beside `size` bytes already in it (-1 for none: no "\n" before the first line).
 */
function fitting(lines: readonly Outgoing[], max: number, size: number): number {
  let n = 0
  for (const line of lines) {
    size += 1 + line.bytes
    if (size > max) break
    n++
  }
  return n
}

/**
 * True for a goodbye (lines that end with the CLOSE of `disconnect()`) from a page that may be
 * going away: a hidden one (a background tab, a page being unloaded), or one in a `pagehide`
 * listener, since browsers hide a page that goes only after `pagehide` (the event being
 * dispatched is the window's `event`). No `document` (Node, a Worker): never.
 */
function leaving(lines: readonly Outgoing[]): boolean {
  const page = globalThis as { document?: { visibilityState?: string }; event?: { type?: string } }
  return (
    lines.at(-1) === BYE &&
    (page.document?.visibilityState === 'hidden' ||
      // Quoted: the browser build shortens the client's own `event` properties (build.mjs).
      // biome-ignore lint/complexity/useLiteralKeys: see above
      page['event']?.type === 'pagehide')
  )
}

/**
 * Node only: true when a request of the platform's fetch (undici, which sends a POST once) failed
 * with one of `codes` in the cause chain, as Node and undici give them. With NOT_CONNECTED: it
 * failed before its connection opened (refused, no such host, no route to it, no connection in
 * time), and nothing of it reached the server; anything else (a reset once connected, an abort,
 * an answer cut) may have come after the server read it. With CLOSED_UNDER: the connection closed
 * under it before any answer. Not asked of an application's fetch (see open()). Read with care,
 * as `transportError` reads it.
 */
function hasCode(err: unknown, codes: readonly string[]): boolean {
  try {
    for (let e = err as { code?: unknown; cause?: unknown } | undefined, n = 0; e && n < 4; n++) {
      if (codes.includes(e.code as string)) return true
      e = e.cause as typeof e
    }
  } catch {}
  return false
}

const NOT_CONNECTED = [
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]

/** undici's code for a connection the other side closed under a request (see Transport.reset). */
const CLOSED_UNDER = ['UND_ERR_SOCKET']

/**
 * What `boundedBody` asks of its decoder: `TextDecoder`'s `decode`, named here so that the
 * published types need no DOM library (a Node application's tsconfig may have none).
 */
export interface Utf8Decoder {
  decode(input?: Uint8Array, options?: { stream?: boolean }): string
}

/**
 * Node only: the body of an answer, read up to `maxPayload` bytes (what one answer may hold);
 * past it PARLEY_PAYLOAD_TOO_LARGE, and the rest is not read, since a body with no end (a
 * broken proxy, a hostile server) would take the memory of the whole process. A page gets its
 * Parley server from its own origin, which could harm it anyway: the browser build
 * (PARLEY_BROWSER_BUNDLE) reads the body whole (`res.text()`) and leaves this out.
 *
 * `decoder` may serve answers read one after another, never two at once (a polling transport's
 * GETs): a whole answer leaves it as new, its last chunk decoded without `stream`, which ends a
 * character cut at the end as U+FFFD rather than keeping its bytes for the next answer. One that
 * fails midway may leave bytes in it: its transport fails with it, and reads no more answers.
 */
export async function boundedBody(
  res: Pick<ErrorAnswer, 'body'>,
  maxPayload: number,
  decoder: Utf8Decoder = new TextDecoder(),
): Promise<string> {
  // A 200 always has a body; none (which only an application's fetch could give) fails the
  // read, as a body cut short does.
  const reader = res.body?.getReader()
  if (!reader) throw transportError('answer without a body')
  let text = ''
  let bytes = 0
  // The last chunk read, decoded once the next comes, or whole at the end: most answers are one
  // chunk, and Node decodes one whole several times faster than as part of a stream.
  let held: Uint8Array | undefined
  for (;;) {
    const read = await reader.read()
    if (held) {
      bytes += held.length
      text += decoder.decode(held, read.done ? undefined : { stream: true })
    }
    if (bytes > maxPayload) {
      reader.cancel().catch(() => {})
      throw tooLarge('answer', maxPayload)
    }
    if (read.done) return text
    held = read.value
  }
}
