import {
  // Every transport, the best first: the protocol's list, in the order a client tries them by
  // default, which is the registry's (see its TRANSPORTS; a test holds them equal). The client
  // climbs from a later to an earlier one. Imported under that name rather than copied into a
  // constant: the script-tag file kept the copy as an alias of its own.
  TRANSPORTS as BEST_FIRST,
  type CloseReason,
  ErrorCode,
  isBusyCode,
  MAX_TIMER_MS,
  type OpenPacket,
  type Packet,
  type ParleyError,
  type TransportName,
} from '@parley/protocol'
import { Backoff, WAIT_FLOOR_MS } from './backoff.js'
import type { Delivered } from './codec.js'
import * as State from './connection-state.js'
import { deadline } from './deadline.js'
import type { ReservedEvents, SwitchReason } from './events.js'
import type { TransportMemory } from './memory.js'
import { BYE, type Outgoing } from './outgoing.js'
import * as PacketType from './packet-type.js'
import {
  type Later,
  type Transport,
  type TransportFactory,
  timeoutError,
  transportError,
  type Welcome,
} from './transports/transport.js'

/*
 * The connection's states, and how it moves between transports. One session, many transports.
 *
 *                      open()
 *    ┌──────┐  ─────────────────────────►  ┌────────────┐  every transport failed  ┌─────────┐
 *    │ idle │                              │ connecting │ ───────────────────────► │ waiting │
 *    └──────┘  ◄───────────────────────────└────────────┘ ◄─────────────────────── └─────────┘
 *       ▲       refused (401/403, ERROR on HELLO)  │   ▲     backoff, retryAfter, online
 *       │       or reconnection off / exhausted    │   │     (waits while offline)
 *       │                                          │   │
 *       │                      OPEN on transport T │   │ T lost (the session says why: closed,
 *       │                                          ▼   │ silent, a seq gap, MOVED) → resume on
 *       │    close(): disconnect(),              ┌──────┴─┐ the transports after T, then T (at
 *       └─────────────────────────────────────── │ open T │ once after MOVED: T first): at once
 *            CLOSE "server disconnect"           └────────┘ if T had been up for STABLE_MS, else
 *            (other CLOSE → waiting)               │    ▲   after the backoff
 *                        a better transport than   │    │ OPEN on the probe: it becomes T;
 *                        T is allowed: after       ▼    │ the server sends MOVED on the old T
 *                        upgradeDelay (doubling ┌─────────┐
 *                        on failure), best      │ probing │  all failed: stay on T, probe later
 *                        first; no stalled SSE  └─────────┘
 *                        While probing, MOVED on T or a request of T refused with 400
 *                        PARLEY_TRANSPORT_MISMATCH (which may come before MOVED) means the server
 *                        took the probe: T is dropped ("connecting") until the probe's OPEN; if
 *                        the probe fails, resume on T (the one that works), then the others.
 *                        Not while the probe waits for its auth (no HELLO went): T is lost as with
 *                        no probe, and the probe with it.
 *
 * "connecting" tries the transports in order (the remembered one first), each within
 * connectTimeout (a WebSocket upgrade with no answer gives up after a third of it, but within
 * the quiet time after a handoff, resuming or connecting anew, waits all of it); a refusal of the
 * transport itself (400 on the upgrade, a reset) fails over at once, a refusal of the client
 * (middleware, origin, version) ends the attempt, and so does an auth function that does not
 * settle, or a server's middleware that did not (PARLEY_HANDSHAKE_TIMEOUT with
 * `details.middleware`): no transport's fault, the next attempt, after the backoff, tries the
 * same transport (with reconnection off, this attempt, until connectTimeout has passed: each
 * try from then on, and a step down from one whose upgrade went unanswered, within what is left).
 * Nor, within the quiet time after a handoff, does a resume's try that busy nodes failed (a HELLO
 * unanswered in time, a 503, a balancer's 502): untold, it ends the attempt, and the next one,
 * after the backoff, begins again at the transport in use before the handoff (see #connect).
 * An auth that fails (throws, rejects, or gives what cannot be sent) blames no transport either:
 * no HELLO went, and the attempt ends as a refusal, within that quiet time too, whatever the code
 * of the error (the application's own, untouched, may carry any). A refusal of the client ends it
 * within that quiet time too (a 401 or 403 with a busy node's code is none: see #connect).
 * A probe whose auth fails blames no transport either, nor one whose HELLO the server refuses with
 * a code of its own (its middleware), which stops the climb until another transport is attached
 * (see #tryProbe), nor one the server's middleware was slow for, probed again after the same
 * wait. A probe that failed once its HELLO went may still have been taken (its answer
 * lost): MOVED, or PARLEY_TRANSPORT_MISMATCH, on T after it is that move, and the session resumes
 * at once on T, blaming nothing (see moved()).
 * A HELLO that asked to resume an ended session may be answered with that session's CLOSE: the
 * session handles it as any CLOSE. An event stream that stalled (opened, then brought nothing within
 * connectTimeout: a proxy that buffers it, or a slow moment) is tried last and never probed until
 * it works, or until its mark lapses: a minute after a first stall, an hour after a second one
 * within the hour (TransportMemory). Every transport callback first checks that its
 * transport is still the current one, so a replaced transport can never touch the session.
 * close() during a handshake or a probe leaves that transport to its answer: an OPEN there gets
 * the goodbye (CLOSE 'client disconnect'), since the server may hold the session on that
 * transport by then (unless no HELLO went yet; and not for long in Node: see Transport.leave).
 *
 * The application hears of every T lost with an error (all but MOVED) as it hears of a
 * transport that could not be opened, by `transport_error`, however long T had been up: before
 * the resume's `transport` event, or the `disconnect` of a session that cannot resume.
 *
 * Backoff (exponential, full jitter by default) paces every way back into "connecting": failed
 * attempts, CLOSE, and a transport lost again before it was up for STABLE_MS. So no packet,
 * close code or server answer can make the client reconnect faster than its backoff. A resume
 * that waits (that backoff, or a handoff's retryAfter) is "waiting" as a failed attempt is: a
 * hurry (`online`, the page shown again) starts it at once, never before a retryAfter.
 */

/** A transport up this long is stable: the next loss resumes at once, and backoff starts over. */
export const STABLE_MS = 2000
/**
 * After a handoff, how long (ms) resume attempts may keep failing (every node tried was
 * draining, restarting, or slow) before the application hears the session is down: a rolling
 * restart stays out of sight. A time, not a count of attempts: a fast backoff would use up a
 * count in well under a second. Above a drain's default timeout (5 s). The time spent on attempts
 * that no node answered in time does not count, nor the wait after one that busy nodes turned
 * away, up to twice this after the CLOSE (see #connect).
 */
const QUIET_HANDOFF_MS = 10_000
/** What the wait between failed upgrade probes doubles from when `upgradeDelay` is 0, in ms. */
const UPGRADE_FLOOR_MS = 500

export interface ConnectionOptions {
  transports: readonly TransportName[]
  connectTimeout: number
  reconnection: boolean
  reconnectionAttempts: number
  reconnectionDelay: number
  reconnectionDelayMax: number
  randomization: number
  upgradeDelay: number
  upgradeDelayMax: number
  /** Read only for whether it is a function: a value (or none) takes no time (see #connect). */
  auth?: unknown
}

/** What the connection tells the session. */
export interface ConnectionHost {
  /**
   * The HELLO for the next attach, encoded (asks for auth again, carries sid and ack). Rejects
   * when the auth fails (its function throws or rejects, or it cannot be encoded): a refusal of
   * the client, with the application's own ParleyError as it is, else a coded one
   * (`details.refused`).
   */
  hello(): Promise<string>
  /** A transport was attached; `attempt` counts the failed attempts before this one. */
  opened(
    open: OpenPacket,
    now: TransportName,
    before: TransportName | null | undefined,
    why: SwitchReason,
    attempt: number,
  ): void
  /**
   * A packet from the current transport `from` (or a CLOSE answering a resume's HELLO on it),
   * taken in; what it returns runs the application's part (see `Later`).
   */
  packet(packet: Packet, from: Transport): Later
  /** A packet from the current transport `from` that this client must refuse (see TransportHandlers). */
  refused(seq: number, error: ParleyError<string>, from: Transport): Later
  /** The transport was lost and no other took over at once. */
  down(reason: CloseReason): void
  /**
   * Tells the application: an attempt failed (`connect_error`), one transport could not be
   * opened or was lost and the client goes on with the next (`transport_error`), a reconnection
   * attempt starts (`reconnect_attempt`), reconnectionAttempts ran out (`reconnect_failed`),
   * an upgrade probe's auth failed, or the server refused its HELLO with a code (`error`).
   */
  notify<K extends ConnectionEvent>(event: K, ...args: Parameters<ReservedEvents[K]>): void
}

/** The socket events the connection fires. */
export type ConnectionEvent =
  | 'connect_error'
  | 'transport_error'
  | 'reconnect_attempt'
  | 'reconnect_failed'
  | 'error'

/** The transport life of one client: fallback, upgrade probes, reconnection and its pace. */
export class Connection {
  /** Where the connection is (see the diagram). Only the connection changes it. */
  state: State.ConnectionState = State.IDLE
  #current: Transport | undefined
  /**
   * The transport the session was last attached to; none (never set, or null once an end cleared
   * it) before the first. Left without a value: a field's initial value costs bundle bytes.
   */
  #last?: TransportName | null
  /**
   * The upgrade probe whose HELLO is on its way: set once its auth is ready (see #tryProbe), so
   * that MOVED meanwhile is read as the server having taken it. Cleared when it is adopted,
   * fails, or is dropped with the transport in use.
   */
  #probe: Transport | undefined
  /**
   * The transport a try of the attempt under way (#connect) opens: close() lets it go (see
   * Transport.leave). Set once the try's auth is ready, just before its open(), and cleared by
   * that try's `finally`: never past the try (kept once opened, the current transport, it held a
   * closed transport, its WebSocket and what that held, for as long as the application kept the
   * socket after disconnect()). That `finally` runs after the try's `catch`, where a try the
   * server's handshake middleware was slow for (reconnection off) waits out the pause before the
   * next: through that pause it is the transport the `catch` already closed, whose leave() has no
   * answer left to wait for, while close() ends the pause itself (#drop, #unwait).
   */
  #attempt: Transport | undefined
  /**
   * A MOVED arrived while a probe was in flight: the probe is now the only way on. This field and
   * the two below are first set by #adopt, before anything reads them.
   */
  #moved!: boolean
  /** Bumped by every new attempt and by close(): older async work sees it and stops. */
  #run = 0
  /**
   * The connection's pause: the next attempt, waiting, or an auth's bound (see #hello); only ever
   * cleared, never read (clearing a fired one does nothing).
   */
  #timer: ReturnType<typeof setTimeout> | undefined
  /**
   * Ends the wait on the connection's timer, at once: the last auth's (see #hello), or an
   * attempt's pause after a slow handshake middleware (see #connect). #drop calls it as it clears
   * that timer: left waiting, a probe dropped with its transport, or an attempt after close(),
   * waited for good (on an auth that never settles, for as long as the application held that
   * auth's promise; on a pause, whose timer nothing else fires), holding its transport. (Called
   * again once settled, it does nothing.)
   */
  #unwait?: () => void
  /**
   * The error #hello made when the last auth did not settle in time. Told by identity from an
   * auth's own failure: the application's own ParleyError comes as it made it, with any code and
   * details (PARLEY_HANDSHAKE_TIMEOUT, PARLEY_SERVER_FULL, `stalled`), which say nothing of a
   * transport, a node or a wait.
   */
  #noAuth?: ParleyError
  #probeTimer: ReturnType<typeof setTimeout> | undefined
  #stableTimer: ReturnType<typeof setTimeout> | undefined
  /** The current transport has been up for STABLE_MS. */
  #stable!: boolean
  #serverTransports: readonly TransportName[] | undefined
  /** The server's pingTimeout: how long a live server may take to answer. */
  #pingTimeout!: number
  /**
   * Until when (performance.now()) no attempt starts, hurried or not: a CLOSE's retryAfter. Never
   * reset: a time gone by bounds nothing.
   */
  #retryAt = 0
  /** Until when (performance.now()) failed resumes go unannounced (see handedOff). */
  #quietUntil = 0
  /** How far #quietUntil may be pushed back by attempts answered too late (see #connect). */
  #quietEnd = 0
  /**
   * Why the session lost its transport since the last attach: the reason its `disconnect` gives
   * when the resume finds no way back, and a heartbeat's loss makes the resume quick to give up
   * on a pooled connection (see #connect). Every attach sets it back to 'transport close' (a probe
   * the server took, then failed, is no heartbeat's loss); every loss and handoff sets it anew.
   */
  #lostReason!: CloseReason
  /**
   * The attempt (its #run) under way when a hurry came (`online`, the page shown again): when it
   * fails, the next starts at once, as it would for a hurry during the backoff.
   */
  #hurried?: number
  /**
   * The run of the resume that #resumeLater holds back (stale once another run began), and the
   * transport it starts after: a hurry (#wake) starts it at once.
   */
  #resuming?: number
  #resumeAfter?: TransportName
  /**
   * The transport in use when a probe whose HELLO may have reached the server failed (see
   * moved()). Only while it is still the one in use: a probe that works, and every drop of the
   * transport (a loss, a CLOSE, close()), clear it; kept, it held that transport, closed, with its
   * streams, for as long as the application kept the socket.
   */
  #taken?: Transport
  readonly #backoff: Backoff
  #probeFailures = 0
  #unlisten: AbortController | undefined

  readonly #opts: ConnectionOptions
  readonly #factory: TransportFactory
  readonly #memory: TransportMemory
  readonly #host: ConnectionHost

  constructor(
    opts: ConnectionOptions,
    factory: TransportFactory,
    memory: TransportMemory,
    host: ConnectionHost,
  ) {
    this.#opts = opts
    this.#factory = factory
    this.#memory = memory
    this.#host = host
    this.#backoff = new Backoff(opts)
  }

  /**
   * The attached transport, or undefined: there is one exactly while the state is "open" (#adopt
   * sets both; every way out of "open" drops the transport first, or, for MOVED, clears it).
   */
  get current(): Transport | undefined {
    return this.#current
  }

  /** Starts connecting, unless already active. */
  open(): void {
    if (this.state !== State.IDLE) return
    this.#backoff.attempts = 0
    // In browsers: hurry when the network comes back or the page is shown again. A Worker has no
    // document but has `online`: without it, a client there that went offline would wait forever
    // (#wake waits for that event while navigator.onLine is false). And let go of the transport
    // when the browser says it has no network: a poll held at that moment (or a WebSocket Chrome's
    // offline mode leaves open) would show the session connected until the heartbeat gave up on
    // it, up to pingInterval + pingTimeout, while nothing can reach the server.
    type Target = {
      addEventListener?: (type: string, fn: () => void, options: { signal: AbortSignal }) => void
    }
    const win = globalThis as Target & { document?: Target & { visibilityState?: string } }
    const doc = win.document
    // None are on while idle: close(), the one way to "idle", takes them off.
    if (win.addEventListener) {
      // Aborting it takes every listener off (close()).
      this.#unlisten = new AbortController()
      const options = { signal: this.#unlisten.signal }
      win.addEventListener('online', () => this.#wake(), options)
      win.addEventListener('offline', () => this.lost(transportError('offline')), options)
      doc?.addEventListener?.(
        'visibilitychange',
        () => {
          if (doc.visibilityState === 'visible') this.#wake()
        },
        options,
      )
    }
    void this.#connect()
  }

  /** Stops everything: transports, timers, and the probe, once it has its answer (see #tryProbe). */
  close(): void {
    this.#run++
    this.state = State.IDLE
    this.#last = null
    // The next open() is a fresh start: this connection's failed probes say nothing of its
    // network, and its first probe waits upgradeDelay, not the doubled wait of this one's.
    this.#probeFailures = 0
    // Not closed here: its HELLO may be on its way, and the server may move the session onto it.
    // Only one that cannot have sent it yet ends now (see Transport.leave), as does such an attempt.
    this.#probe?.leave()
    this.#attempt?.leave()
    this.#probe = undefined
    this.#drop()
    this.#unlisten?.abort()
    this.#unlisten = undefined
  }

  /** Sends on the attached transport; false when there is none (the caller keeps or drops). */
  send(items: readonly Outgoing[]): boolean {
    const t = this.#current
    t?.send(items)
    return !!t
  }

  /**
   * The server ended the session (CLOSE): reconnect later unless `again` is false. `tell` says
   * so to the application (`willRetry`: attempts remain) once the client waits or has stopped,
   * and before `reconnect_failed`: the session ends before the client gives up.
   */
  ended(again: boolean, retryAfter: number, tell: (willRetry: boolean) => void): void {
    this.#drop()
    this.#last = null
    const willRetry = again && this.#backoff.attempts < this.#opts.reconnectionAttempts
    if (willRetry) this.state = State.WAITING
    else this.close()
    const run = ++this.#run
    tell(willRetry)
    // Unless a listener called connect() or disconnect(). With attempts used up, #schedule
    // says reconnect_failed.
    if (again && run === this.#run) {
      this.#retryAt = performance.now() + retryAfter
      this.#schedule()
    }
  }

  /**
   * The server handed the session to another node (CLOSE 'server handoff'): resume it, on the
   * same kind of transport, after `retryAfter` ms (the server spreads its clients over time).
   */
  handedOff(retryAfter: number): void {
    this.#drop()
    this.#lostReason = 'transport close'
    this.#quietUntil = performance.now() + QUIET_HANDOFF_MS
    this.#quietEnd = this.#quietUntil + QUIET_HANDOFF_MS
    // A hurry (see #wake) does not come before it either: the server spreads its clients so.
    this.#retryAt = performance.now() + retryAfter
    // Without `after`, the attempt starts on the transport in use (#last, see #order).
    this.#resumeLater(++this.#run, retryAfter)
  }

  /**
   * Resumes after `delay` ms, unless another attempt (`run`) began meanwhile. Waiting, as after a
   * failed attempt: a hurry (`online`, the page shown again) resumes sooner (see #wake).
   */
  #resumeLater(run: number, delay: number, after?: TransportName): void {
    this.state = State.WAITING
    this.#resuming = run
    this.#resumeAfter = after
    this.#timer = setTimeout(() => {
      if (run === this.#run) void this.#connect(true, after)
    }, delay)
  }

  /**
   * The current transport is done: MOVED came on it, or it failed with `error`. MOVED, or a
   * request of it refused with PARLEY_TRANSPORT_MISMATCH (an answer that may come before MOVED,
   * on a connection of its own), says the server attached another transport of ours: with a
   * probe in flight (its HELLO gone), the probe. Otherwise the transport is lost, and the session
   * resumes; a probe still waiting for its auth, which the server cannot have taken, goes with it.
   */
  moved(error?: ParleyError<string>): void {
    const t = this.#current
    if (!t) return
    if (!error || error.code === ErrorCode.TRANSPORT_MISMATCH) {
      if (this.#probe) {
        // The server attached our probe, whose OPEN is still on its way: wait for it. Whatever the
        // refused request carried is kept until acknowledged, and goes again on the probe.
        this.#moved = true
        this.#current = undefined
        this.state = State.CONNECTING
        // T is gone: the time it stayed up ends here. Left running, its timer could call it stable
        // while the probe waits, and start the backoff over for a transport that lived less.
        clearTimeout(this.#stableTimer)
        t.close(true)
        return
      }
      // No probe in flight, after one whose HELLO may have reached the server failed (see
      // #tryProbe): the server took it, and moved the session once, on our request. The resume
      // follows at once, as from a stable transport, blaming nothing, on T first (see `lost`).
      // Only from the transport in use then, once: else MOVED alone could make the client resume
      // faster than its backoff.
      if (this.#taken === t) {
        this.#stable = true
        error = undefined
      }
    }
    this.lost(error)
  }

  // -------------------------------------------------------------------------------------------

  /** Transports both sides allow, in the client's order of preference. */
  #allowed(): readonly TransportName[] {
    const server = this.#serverTransports
    const both = this.#opts.transports.filter((t) => !server || server.includes(t))
    return both.length > 0 ? both : this.#opts.transports
  }

  /**
   * The transports to try, in order: starting after `after`, or at the one in use (a resume
   * after a handoff, or after a probe whose answer was lost), or at the remembered one; an event
   * stream that stalled, last. The one in use first: what is remembered is shared with other
   * clients of the server, lapses after an hour, and may not be kept at all (a storage that
   * throws).
   */
  #order(after?: TransportName | null): TransportName[] {
    const list = this.#allowed()
    const [remembered, stalled] = this.#memory.recall()
    const i = after
      ? list.indexOf(after) + 1
      : Math.max(0, list.indexOf((this.#last ?? remembered) as TransportName))
    return [...list.slice(i), ...list.slice(0, i)].sort((a, b) => +stalled.includes(a) - +stalled.includes(b))
  }

  /**
   * An attempt: a new session, or with `resume` the session's resume (on the transports after
   * `after`, when given). A flag rather than the words, which the bundle would carry each time.
   */
  async #connect(resume?: boolean, after?: TransportName | null): Promise<void> {
    const run = ++this.#run
    this.state = State.CONNECTING
    let last: ParleyError<string> | undefined
    let refused: boolean | undefined
    // What the session is down for when a resume fails (its `disconnect`); none for a connect.
    // Read once: nothing sets it anew during a run (a loss, a handoff each begin another).
    const down = resume ? this.#lostReason : undefined
    // After the link froze, a pooled transport's first request may go out on a dead pooled
    // connection. A live server answers HELLO within its pingTimeout; the attempt that times out
    // takes that dead connection with it, and the same transport is tried once more. (Only the
    // heartbeat loses a transport so, and it runs once an OPEN gave #pingTimeout, above 0.)
    const frozen = down === 'ping timeout'
    // (A timer given more than MAX_TIMER_MS fires at once: connectTimeout Infinity, or a server's
    // pingTimeout past it, waits that long.)
    const timeout = Math.min(
      this.#opts.connectTimeout,
      MAX_TIMER_MS,
      frozen ? this.#pingTimeout : MAX_TIMER_MS,
    )
    // Whose bound that is, in the errors that name it (the attempt's `no auth` and `no OPEN`, a
    // transport's `no OPEN from` and `no stream data`, and the one a WebSocket's `no upgrade from`
    // waited a share of): the server's pingTimeout when it is the shorter, said so; its number
    // alone sent the application after connectTimeout, which it set to something else. Else
    // connectTimeout's, as documented.
    const of = frozen && timeout < this.#opts.connectTimeout ? " (the server's pingTimeout)" : ''
    const queue = this.#order(after)
    const retried: TransportName[] = []
    // With reconnection off this attempt is the only one: the server's middleware slow once must
    // not end it before `timeout` has passed, nor a try after that outlast it (see below).
    const end = performance.now() + timeout
    // The middleware was slow once: every try from then on has only what is left of `timeout`,
    // the same transport again, or the next one after a WebSocket's upgrade went unanswered.
    let bounded: boolean | undefined
    // The pace of those tries: a backoff of their own, as none of them is a reconnection attempt
    // (the connection's would count them, and the `connect` at the end say `reconnect` too).
    const pace = new Backoff(this.#opts)
    for (let name = queue.shift(); name; name = queue.shift()) {
      // In whole ms, as timers count (`| 0`: `timeout` is at most MAX_TIMER_MS). None left: the
      // attempt fails at its end, with the last try's error.
      const ms = bounded ? (end - performance.now()) | 0 : timeout
      if (ms <= 0) break
      const t = this.#factory(name)
      let answer: Awaited<ReturnType<Transport['open']>>
      let hello: string | undefined
      let began = 0
      try {
        // An auth that outlasts what is left fails the attempt naming `timeout`, the bound the
        // application set (connectTimeout), not the rest, a number it never gave.
        hello = await this.#hello(ms, timeout, of)
        if (run !== this.#run) return t.close()
        began = performance.now()
        this.#attempt = t
        // A try again opens in what its auth left of the bound: given `ms` again, a slow auth
        // made the connect outlast `timeout` by its own time. None left: an auth function took
        // the rest, and the attempt fails saying so, as when it outlasts it (the auth is the last
        // cause: the error of a try before, an upgrade stepped down from or the middleware slow,
        // would send the application after the wrong one). An auth value (or none) takes no
        // time: the try began in the bound's last millisecond (a pause's timer fires up to one
        // early), and the try before's error stands. No close: a transport holds nothing before
        // open().
        const left = bounded ? (end - began) | 0 : ms
        if (left <= 0) {
          if (typeof this.#opts.auth === 'function') last = timeoutError('no auth', timeout, of)
          break
        }
        // Patient (see Transport.open) after a handoff, until its quiet time ends: the nodes are
        // busy, not broken. A resume, or a connect() of the application's after disconnect()
        // meanwhile (close() keeps the quiet time), meets the same busy nodes.
        // An event stream's first bytes get the whole of `timeout` from its GET, as on a first
        // try: what the handshake left of it would fail a working stream, and mark it stalled.
        answer = await t.open(hello, left, began < this.#quietUntil, timeout, of)
      } catch (err) {
        t.close()
        if (run !== this.#run) return
        // A ParleyError: `Transport.open` wraps what the platform threw with `transportError`,
        // and #hello rejects with its timeout, the coded refusal of the application's auth, or the
        // application's own ParleyError.
        const error = err as ParleyError<string>
        // No HELLO went, and not for want of time: the auth failed (its function threw or
        // rejected, or what it gave cannot be sent). No transport's failure (no transport_error),
        // nor a busy node's: a refusal of the client, which ends the attempt at once, within the
        // quiet time after a handoff too, with no retry (asking again would not mend it). Nothing
        // of the error is read: the application's own comes with any code and details.
        if (!hello && error !== this.#noAuth) return this.#fail(error, false, down)
        // A stream that opened and brought nothing: remembered (see TransportMemory).
        if (error.details?.stalled) this.#memory.note(name, true)
        // What the attempt reports: its last error, but for a transport that could not get through
        // or that the server does not offer, which says nothing of why the server turned away the
        // transports before it (full, or shutting down): that stays the reason.
        if (!last || !isBusyCode(last.code) || !quiet(error)) last = error
        // The auth never settled, or the server's handshake middleware did not within its
        // handshakeTimeout (`details.middleware`: the server read the HELLO and says so): the
        // application's fault, not the transport's. The attempt fails as a whole, with no
        // transport_error, and the next one (after the backoff) tries the same transport: a
        // step down would only run the same middleware again, on a worse transport.
        // So is a try after it (below) whose HELLO had no answer in what was left of the bound:
        // the server's middleware, slow again. Not a WebSocket's upgrade left unanswered (`unsent`:
        // no HELLO went) while time was left, nor a stream that stalled: the transport's fault,
        // which steps down. An upgrade the bound cut short (under a ms left: its wait was what
        // was left, less than an upgrade's own) says nothing of the transport.
        if (
          error.code === ErrorCode.HANDSHAKE_TIMEOUT &&
          (!hello ||
            error.details?.middleware ||
            (bounded && (!t.unsent || end - performance.now() < 1) && !error.details?.stalled))
        ) {
          // With reconnection off no attempt follows, and a server whose handshakeTimeout is
          // shorter than this client's would have had the whole attempt end at its bound, though
          // its middleware may let the client in a moment later: the same transport is tried
          // again, after the backoff's pause (a crowd of clients turned away together spreads
          // out), until `timeout` has passed since the attempt began; then the attempt fails
          // saying so. Each try again has only what is left of `timeout`: with the whole of it,
          // one begun just before the end made the attempt last up to twice `timeout`.
          if (this.#opts.reconnection || !hello) break
          // On the connection's timer, which close() clears: a pause left running would hold a
          // Node process up to reconnectionDelayMax after disconnect(). Whatever clears it (#drop)
          // ends the pause at once (#unwait), and this run, stale by then, returns below: left
          // pending, it held this transport for good. (With no time left, a timer's shortest wait.)
          await new Promise<void>((resolve) => {
            this.#unwait = resolve
            this.#timer = setTimeout(resolve, Math.min(pace.next(), end - performance.now()))
          })
          if (run !== this.#run) return
          // What the attempt says when the pause took what was left (no try follows), unless a
          // later try fails otherwise.
          last = timeoutError('no OPEN', timeout, of, { middleware: true })
          bounded = true
          queue.unshift(name)
          continue
        }
        // No answer in time, within the quiet time after a handoff: a node busy taking sessions
        // over (a loaded machine), not one that refused. Its wait is not counted, else three
        // such tries of 3 s spend the quiet time, and the application hears a disconnect in the
        // middle of a deploy; up to a second quiet time, for a network that answers nothing.
        const patient = began < this.#quietUntil
        if (patient && error.code === ErrorCode.HANDSHAKE_TIMEOUT)
          this.#quietUntil = Math.min(this.#quietUntil + performance.now() - began, this.#quietEnd)
        // A resume's HELLO sent on a pooled connection that the loss had closed too (`reset`):
        // nothing of the server's nor of the transport's (no refusal either), and the same one is
        // tried once more, at once, unannounced. Announced, the resume ended there: a `disconnect`
        // for a session that the next attempt recovered at once. (Their bundle skips this:
        // browsers try such a request again themselves, and `reset` is Node's. A branch of its
        // own, so that the bundle keeps nothing of it.)
        if (
          !(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE &&
          resume &&
          t.reset &&
          !retried.includes(name)
        ) {
          retried.push(name)
          queue.unshift(name)
          continue
        }
        // A resume's try that busy nodes failed within that quiet time blames no transport: a
        // HELLO sent and not answered in time (a node taking the session over, as while it waits
        // for the old node's seal; not an upgrade left unanswered, nor a stream that stalled), or
        // one turned away (a draining node, or a node where the session is still arriving: 503;
        // a balancer's 502). The application hears nothing of it, and the client does not step
        // down, which would bring the session back on a worse transport: the same one is tried
        // again (at once, once, after a 503), then after the backoff.
        const held =
          resume &&
          patient &&
          (isBusyCode(error.code) ||
            error.details?.status === 502 ||
            (error.code === ErrorCode.HANDSHAKE_TIMEOUT && !t.unsent && !error.details?.stalled))
        if (!held) this.#host.notify('transport_error', name, error)
        // Its listener may have called disconnect(): the next transport would ask for auth.
        if (run !== this.#run) return
        // A refusal of this client (`details.refused`, see Transport.open) ends the attempt: no
        // other transport would help, as an auth that failed does (above). In Node,
        // nothing at the URL ends it only once no transport is left: a proxy may send the
        // WebSocket's path nowhere while it forwards the others, and a browser, blind to the
        // upgrade's 404, goes on to them. (Their bundle skips this.)
        if (
          error.details?.refused &&
          ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE ||
            error.code !== ErrorCode.NOT_FOUND ||
            !queue.length)
        ) {
          refused = true
          break
        }
        // A frozen link: see above. A node shutting down: the balancer sends the next
        // attempt to another node, so the same transport is worth one more try. So is a stream
        // refused as not attached right after its HELLO: the session left it before the GET came
        // (an OPEN later than the server's wait for that GET, or an older server's heartbeat,
        // which started at the HELLO), and lives.
        const again =
          (frozen && t.pooled && error.code === ErrorCode.HANDSHAKE_TIMEOUT) ||
          error.code === ErrorCode.SERVER_SHUTTING_DOWN ||
          error.code === ErrorCode.TRANSPORT_MISMATCH
        if (again && !retried.includes(name)) {
          retried.push(name)
          queue.unshift(name)
        } else if (held) break
        continue
      } finally {
        // Settled: nothing left for close() to let go. (Another attempt's, after a close() and a
        // connect() meanwhile, stays.)
        if (this.#attempt === t) this.#attempt = undefined
      }
      if (run !== this.#run) {
        // disconnect() came while the server opened a session for this attempt: without a
        // goodbye, the server would keep that session for its recovery window.
        if (answer.type === PacketType.OPEN) t.send([BYE])
        return t.close(true)
      }
      // A step down: the client prefers the transport the session was on to this one, however the
      // resume came (a loss, a handoff's CLOSE, a probe taken then lost): told by the transport
      // before (#last), not by where the attempt started, which a handoff's resume leaves unset.
      // Every resume follows an attach, which set #last, and only ends that clear it (close(),
      // ended(), a loss while offline, a resume that gave up) lead to a connect instead; none
      // before would read as -1, every transport a step down from it. Typed as a list that may
      // be searched for none, rather than #last asserted set.
      const order: readonly (TransportName | null | undefined)[] = this.#opts.transports
      this.#adopt(
        t,
        answer,
        !resume ? 'connect' : order.indexOf(name) > order.indexOf(this.#last) ? 'downgrade' : 'resume',
      )
      return
    }
    // Here every transport failed: the list is never empty (see #allowed), and every other way
    // out of the loop returned. So `last` is set, and this attempt is still the current one (the
    // last try checked it after its listener, and nothing was awaited since). TypeScript cannot
    // follow the loop that far: a guard that is never taken says so.
    if (!last) return
    if (resume) {
      // Handed off: the first nodes tried may be draining too. Try again, within the backoff,
      // before the application hears the session is down. Not after a refusal of this client (a
      // node's middleware, the origin, the version): no node is busy, and a try again would meet
      // the same answer (a middleware's refusal ends the session on the server besides). It ends
      // the resume at once, as an auth that fails does, unless the attempt's error has a busy
      // node's code (an application's own error from its fetch or WebSocket, marked refused). A
      // 401 or 403 with such a code is no refusal at all (see httpError).
      if (performance.now() < this.#quietUntil && (!refused || isBusyCode(last.code))) {
        const wait = this.#backoff.next()
        // Turned away at once (a draining node's 503, a balancer's 502 with no node to offer):
        // the wait before the next try is not counted, as tries no node answered in time are
        // not, up to the same end; else a fast backoff's waits spend the quiet time in a deploy.
        if (isBusyCode(last.code) || last.details?.status === 502)
          this.#quietUntil = Math.min(this.#quietUntil + wait, this.#quietEnd)
        this.#resumeLater(run, wait)
        return
      }
      this.#last = null
    }
    this.#fail(last, !refused && this.#opts.reconnection, down)
  }

  /**
   * An attempt failed: says so (after `disconnect` with the reason `down`, when the session went
   * down with it), then waits for the backoff (or stops).
   */
  #fail(error: ParleyError<string>, reconnects: boolean, down?: CloseReason): void {
    const willRetry = reconnects && this.#backoff.attempts < this.#opts.reconnectionAttempts
    // Stopped before the application hears that the client will not retry: its listener may
    // call connect() at once (with new credentials, say, or by hand with reconnection off),
    // which does nothing while connecting. Otherwise waiting from now on: a transport lost while
    // offline comes here from "open", and its listeners must not see a connection still there.
    if (!willRetry) this.close()
    else this.state = State.WAITING
    const run = this.#run
    if (down) {
      this.#host.down(down)
      if (run !== this.#run) return
    }
    this.#host.notify('connect_error', error, willRetry)
    if (run !== this.#run) return
    // With attempts used up, #schedule says reconnect_failed.
    if (reconnects) this.#schedule()
  }

  /**
   * The HELLO, within `ms`: an `auth` function whose promise never settles (a token fetch left
   * hanging) fails the attempt (not the transport: see #connect), where it held the client
   * "connecting" for good, with `no auth within <bound> ms<of>`: the attempt's bound, of which `ms`
   * may be only what is left, and whose it is when not connectTimeout (see #connect). A bound
   * that close() stops (#unwait): left running, it would hold a Node process up to `ms` after
   * disconnect() while the auth hangs. (No other pause of the connection runs
   * meanwhile: an attempt's is over, and a probe is made only while open, with no attempt
   * waiting.) Whatever clears it (#drop: close(), and a probe's transport lost, moved, handed off
   * or closed by the server) ends the wait at once (#unwait), which its caller, stale by then,
   * drops.
   */
  #hello(ms: number, bound: number, of?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      // biome-ignore lint/suspicious/noAssignInExpressions: kept to be told by identity (see #noAuth).
      const end = () => reject((this.#noAuth = timeoutError('no auth', bound, of)))
      // A bound (see deadline): after a stall, an auth whose answer came meanwhile (a token
      // fetched) wins over it. Stopped by whatever ends the wait first.
      const stop = deadline(end, ms)
      this.#unwait = () => {
        stop()
        end()
      }
      this.#host.hello().then(resolve, reject).finally(stop)
    })
  }

  /** Attaches `t`, which said OPEN; or ends it, when it said CLOSE. */
  #adopt(t: Transport, open: Welcome, why: SwitchReason): void {
    // What `t` brings, as the session takes it: a packet, or one to refuse (an `error`).
    const take = (d: Delivered) =>
      d.ok ? this.#host.packet(d.packet, t) : this.#host.refused(d.seq, d.error, t)
    if (open.type === PacketType.CLOSE) {
      // The session we asked to resume has ended; the session hears why and decides. The ACK
      // the server may have sent before that CLOSE is taken first, as on a live transport: what
      // it covers is not sent again into the next session, and one the session refuses (past
      // what this client sent, or not a packet) is heard as an `error`, whose listener may call
      // disconnect() (a new run): then the CLOSE is nobody's business any more. Nothing else
      // before it is taken (no server sends anything else there): a numbered packet of the ended
      // session would reach the application, and be acknowledged, as if that session lived on.
      const run = this.#run
      t.attach({
        decoded: (d) => ((d.ok ? d.packet.type === PacketType.ACK : !d.seq) ? take(d) : undefined),
        close() {},
      })
      t.close(true)
      if (run === this.#run) this.#host.packet(open, t)?.()
      return
    }
    const old = this.#current
    const before = this.#last
    const attempt = this.#backoff.attempts
    this.#current = t
    this.#last = t.name
    this.state = State.OPEN
    this.#moved = false
    this.#serverTransports = open.transports
    this.#pingTimeout = open.pingTimeout
    this.#lostReason = 'transport close'
    // The quiet time after a handoff outlasts the resume's OPEN: a resume that the draining node
    // relayed to another node is lost again when that node closes, and the next one is patient too.
    // Backoff starts over only once a transport has stayed up for STABLE_MS.
    clearTimeout(this.#stableTimer)
    this.#stable = false
    this.#stableTimer = setTimeout(() => {
      this.#stable = true
      this.#backoff.attempts = 0
    }, STABLE_MS)
    // `t` is fresh from the factory (an attempt's or a probe's), never the one it replaces.
    old?.close(true)
    this.#memory.note(t.name)
    // The session applies OPEN (and resends what the server lacks) before any packet that came
    // after OPEN on this transport is delivered.
    this.#host.opened(open, t.name, before, why, attempt)
    if (this.#current !== t) return
    t.attach({
      decoded: (d) => {
        if (this.#current === t) return take(d)
      },
      close: (error) => {
        if (this.#current === t) this.moved(error)
      },
    })
    // Only for a transport still current, which #scheduleProbe checks itself: a packet delivered
    // by attach may have lost `t` (and no other can be attached before an await).
    this.#scheduleProbe()
  }

  /**
   * The current transport is unusable (a gap, no sign of life), or lost (`error` says how; none
   * for MOVED: the server took another transport of ours): resume on another. The application
   * hears it as `transport_error`, as it does a transport that could not be opened, whenever the
   * loss comes, before the `transport` event of the resume or the `disconnect` of a session that
   * cannot resume. `reason` is what the session is down for if it cannot resume.
   */
  lost(error?: ParleyError<string>, reason: CloseReason = 'transport close'): void {
    const after = this.#current?.name
    if (!after) return
    this.#drop(true)
    this.#lostReason = reason
    // Not "open" while its listeners run: the transport is gone.
    this.state = State.CONNECTING
    const run = ++this.#run
    if (error) this.#host.notify('transport_error', after, error)
    // Its listener may have called disconnect() (and connect() after it).
    if (run !== this.#run) return
    if (offline()) {
      // No attempt can work: the session is down until the browser is online again, or for good
      // with reconnection off (as when a resume fails): the client stops before `disconnect`.
      this.#last = null
      this.#fail(error ?? transportError('offline'), this.#opts.reconnection, reason)
    } else if (this.#stable) {
      // Lost with an error: the others first, this one last. Moved (no error: the server moved
      // the session onto another transport of ours, a probe whose answer was lost): this one
      // first, the one that works (MOVED, or the refused request, has just come over it), where
      // the probe's transport lost an answer.
      void this.#connect(true, error && after)
    } else {
      // Lost again soon after it opened: something keeps failing (a server that does not know
      // the session, a stream that breaks). Resume all the same, but only once the backoff
      // allows it, and say so. Moved: this one first, as from a stable transport.
      if (error) this.#host.notify('connect_error', error, true)
      if (run === this.#run) this.#resumeLater(run, this.#backoff.next(), error && after)
    }
  }

  /**
   * Climbs back towards WebSocket, when the session is on a lesser transport: probes the better
   * ones, best first, until one works (a WebSocket blocked for good must not keep a working event
   * stream out of reach after a failure that did not last), never a stream that stalled.
   */
  #scheduleProbe(): void {
    const t = this.#current
    if (!t || this.#probeTimer !== undefined) return
    const allowed = this.#allowed()
    const [, stalled] = this.#memory.recall()
    const [best, ...worse] = BEST_FIRST.slice(0, BEST_FIRST.indexOf(t.name)).filter(
      (name) => allowed.includes(name) && this.#serverTransports?.includes(name) && !stalled.includes(name),
    )
    if (!best) return
    // After a failure the wait doubles from upgradeDelay, or from UPGRADE_FLOOR_MS when that is 0:
    // 0 · 2ⁿ stays 0, and where WebSocket is always refused the client probed again the moment
    // each probe failed, for good. The first probe keeps upgradeDelay's 0 (`#probeFailures && ...`).
    // upgradeDelayMax caps it, but no lower than WAIT_FLOOR_MS: a cap of 0 (or 1) made every wait
    // 0 again. A small upgradeDelay still doubles up to that floor within a few failures.
    const delay = Math.min(
      Math.max(this.#opts.upgradeDelayMax, WAIT_FLOOR_MS),
      MAX_TIMER_MS,
      (this.#opts.upgradeDelay || (this.#probeFailures && UPGRADE_FLOOR_MS)) *
        2 ** Math.min(this.#probeFailures, 20),
    )
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined
      void this.#tryProbe(best, worse)
    }, delay)
  }

  /** Probes `name`; when it fails, the worse transports after it at once, in order. */
  async #tryProbe(name: TransportName, [next, ...worse]: TransportName[]): Promise<void> {
    if (this.state !== State.OPEN) return
    const run = this.#run
    const t = this.#factory(name)
    const timeout = Math.min(this.#opts.connectTimeout, MAX_TIMER_MS)
    let hello: string | undefined
    try {
      // Bounded as a connect attempt's is: an auth that never settles would hold the probe, and
      // every climb after it, for good. The probe is the connection's (#probe) only once its
      // auth is ready: until its HELLO goes, the server cannot take it, and MOVED that comes
      // meanwhile is for another transport of ours (a probe before it, whose answer was lost).
      // Then T is lost as with no probe in flight, and this one goes with it (see moved()): its
      // wait ends (#drop), and so does this run, stale.
      hello = await this.#hello(timeout, timeout)
      if (run !== this.#run) return t.close()
      this.#probe = t
      const answer = await t.open(hello, timeout)
      if (run !== this.#run || this.#probe !== t) {
        // Only close() leaves a probe unwanted but open. OPEN: the server moved the session onto
        // it, and refused the goodbye on the transport before (400 PARLEY_TRANSPORT_MISMATCH), or
        // none went (after MOVED); without one here, the session would wait out its recovery
        // window. (A probe closed otherwise never resolves; if it did, this would do nothing.)
        if (answer.type === PacketType.OPEN) t.send([BYE])
        return t.close(true)
      }
      this.#probe = this.#taken = undefined
      this.#probeFailures = 0
      this.#adopt(t, answer, 'upgrade')
    } catch (err) {
      t.close()
      const error = err as ParleyError<string>
      // As in #connect; never from an auth's failure (no HELLO), whose error is not read.
      if (hello && error.details?.stalled) this.#memory.note(name, true)
      // Dropped meanwhile (a loss, a CLOSE, close(), MOVED before its HELLO went: each begins
      // another run): its failure is nobody's, its auth's too (a resume asks for auth anew).
      if (run !== this.#run) return
      this.#probe = undefined
      // No HELLO went: the auth failed, not the transport (so the server cannot have taken the
      // probe). The application hears it once, by `error`; no worse transport is probed (each
      // would ask for auth again), and the wait does not double. An auth that never settled (told
      // by identity, see #noAuth): the same climb after the same wait, as a connect attempt tries
      // the same transport again. One that threw or rejected, whatever the code of its error (the
      // application's own may say PARLEY_HANDSHAKE_TIMEOUT): no more probes from this transport,
      // since asking again would not mend it; the next transport attached asks anew. No
      // transport_error for either: no transport failed.
      // The same for the server's refusal of the HELLO, with a code of its own (its middleware: a
      // token that expired, a policy; the origin; the version): it refuses the client, not the
      // transport, and a lesser transport, or the next probe, would get the same answer until the
      // application mends what the code names (a resume runs the middleware again). Not a
      // refusal: what the server says of a state that passes (a node full or shutting down, a
      // session moving: `details.refused` false), of a HELLO that came late
      // (PARLEY_HANDSHAKE_TIMEOUT), nor an answer without a code of Parley's
      // (PARLEY_TRANSPORT_ERROR, PARLEY_NOT_FOUND): something in front of the server, which
      // another transport may pass. `details.transport` names the probe, in the details the
      // transport made of the server's answer (see refusal); not in an error of the
      // application's fetch or WebSocket whose details it froze, where the write would throw
      // and the refusal go untold. The server's middleware that did not settle in time
      // (`details.middleware`: the server read the HELLO, and kept the session where it was) is
      // told as an auth that never settled is: the same climb after the same wait, where a
      // lesser probe would only run the same middleware again.
      // The server's coded refusal: `details.refused` (which implies details, those the transport
      // made of the answer) with a code of the server's, not one the client gives an answer
      // without a code (PARLEY_TRANSPORT_ERROR, PARLEY_NOT_FOUND), nor the server's word for a
      // HELLO that came late. Written where it is used, once: a function of its own cost bytes.
      if (
        !this.#moved &&
        (!hello ||
          (error.details?.refused &&
            !quiet(error) &&
            error.code !== ErrorCode.NOT_FOUND &&
            error.code !== ErrorCode.HANDSHAKE_TIMEOUT) ||
          error.details?.middleware)
      ) {
        try {
          if (hello) (error.details as Record<string, unknown>).transport = name
        } catch {}
        this.#host.notify('error', error)
        if (hello ? error.code === ErrorCode.HANDSHAKE_TIMEOUT : error === this.#noAuth) this.#scheduleProbe()
        return
      }
      // The HELLO may have reached the server, which then moved the session onto the probe:
      // MOVED, or a request refused PARLEY_TRANSPORT_MISMATCH, may follow on the transport in use.
      // Not after a WebSocket refused at its upgrade (the usual failed probe where WebSocket is
      // blocked), an SSE or polling probe whose POST was refused with a coded 4xx, nor, in Node,
      // one whose POST could not connect: the server cannot have taken the HELLO, and a refusal
      // that comes then is the server having let the transport in use go (its heartbeat gave up
      // on a stream held back), a loss to be told.
      if (!t.unsent) this.#taken = this.#current
      if (!this.#moved && next) return void this.#tryProbe(next, worse)
      this.#probeFailures++
      if (this.#moved) {
        this.#moved = false
        // On T first, as after MOVED with no probe in flight (see `lost`).
        void this.#connect(true)
      } else this.#scheduleProbe()
    }
  }

  /**
   * Ends the current transport, its probe and timers. `lost`: the transport was lost and is
   * dropped; otherwise the session is over (CLOSE, disconnect, refusal).
   */
  #drop(lost?: boolean): void {
    clearTimeout(this.#timer)
    this.#unwait?.()
    clearTimeout(this.#stableTimer)
    clearTimeout(this.#probeTimer)
    this.#probeTimer = undefined
    this.#probe?.close()
    this.#probe = undefined
    this.#moved = false
    this.#current?.close(!lost)
    this.#current = this.#taken = undefined
  }

  /**
   * The next attempt, after the backoff. Both callers (a CLOSE's end, a failed attempt) have set
   * "waiting" already when attempts are left, and call this only while their run is current.
   */
  #schedule(): void {
    if (this.#backoff.attempts >= this.#opts.reconnectionAttempts) {
      this.close()
      this.#host.notify('reconnect_failed')
      return
    }
    // Counted as an attempt all the same, as a hurry during the backoff does.
    const delay = this.#backoff.next()
    this.#timer = setTimeout(() => this.#wake(), this.#hurried === this.#run ? 0 : delay)
  }

  /**
   * Starts the next attempt, unless the browser says it is offline (then `online` wakes us). Not
   * before a CLOSE's retryAfter: the backoff's timer, or a hurry (`online`, the page shown
   * again), that comes sooner waits for the rest of it. A hurry during an attempt is kept for
   * when it fails (#hurried): the network may have come back after that attempt went out.
   */
  #wake(): void {
    // Not waiting: kept for the attempt under way, if any (every other way to the backoff starts
    // a new #run first, which leaves this mark behind).
    if (this.state !== State.WAITING) {
      this.#hurried = this.#run
      return
    }
    clearTimeout(this.#timer)
    const early = this.#retryAt - performance.now()
    if (early > 0) this.#timer = setTimeout(() => this.#wake(), early)
    // A resume that waits (a transport lost soon after it opened, a handoff's retryAfter) goes
    // on as a resume: the session is still up, and the client offline hears it is down there.
    else if (this.#resuming === this.#run) void this.#connect(true, this.#resumeAfter)
    else if (!offline()) {
      this.#host.notify('reconnect_attempt', this.#backoff.attempts)
      // Unless its listener called disconnect() (or connect() after it).
      if (this.state === State.WAITING) void this.#connect()
    }
  }
}

/** An error that says nothing of the server: the transport could not reach it, or is not offered. */
const quiet = ({ code }: ParleyError<string>) =>
  code === ErrorCode.TRANSPORT_ERROR || code === ErrorCode.TRANSPORT_DISABLED

/** True when a browser says it has no network. */
function offline(): boolean {
  return (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false
}
