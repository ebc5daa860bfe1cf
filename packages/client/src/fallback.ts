import {
  type CloseReason,
  ErrorCode,
  type HelloPacket,
  type OpenPacket,
  type Packet,
  ParleyError,
  type TransportName,
} from '@parley/protocol'
import { Backoff } from './backoff.js'
import type { TransportMemory } from './memory.js'
import * as PacketType from './packet-type.js'
import { type Outgoing, outgoing } from './session.js'
import type { ReservedEvents } from './socket.js'
import { isRefusal, type Transport, type TransportFactory } from './transports/transport.js'

/*
 * The connection's states, and how it moves between transports. One session, many transports.
 *
 *                      open()
 *    ┌──────┐  ─────────────────────────►  ┌────────────┐  every transport failed  ┌─────────┐
 *    │ idle │                              │ connecting │ ───────────────────────► │ waiting │
 *    └──────┘  ◄───────────────────────────└────────────┘ ◄─────────────────────── └─────────┘
 *       ▲       refused (403, ERROR on HELLO)     │   ▲     backoff, retryAfter, online
 *       │       or reconnection off / exhausted   │   │     (waits while offline)
 *       │                                         │   │
 *       │                     OPEN on transport T │   │ T lost: closed, silent for
 *       │                                         ▼   │ pingInterval + pingTimeout,
 *       │    close(): disconnect(),             ┌──────┴─┐  a seq gap, MOVED
 *       └────────────────────────────────────── │ open T │  → resume at once on the
 *            CLOSE "server disconnect"          └────────┘    transports after T, then T
 *            (other CLOSE → waiting)              │    ▲
 *                        T ≠ websocket, after     │    │ OPEN on the probe: it becomes T;
 *                        upgradeDelay (doubling   ▼    │ the server sends MOVED on the old T
 *                        on failure)          ┌─────────┐
 *                                             │ probing │  failure: stay on T, probe later
 *                                             └─────────┘
 *
 * "connecting" tries the transports in order (the remembered one first), each within
 * connectTimeout; a refusal of the transport itself (400 on the upgrade, a reset) fails over at
 * once, a refusal of the client (middleware, origin, version) ends the attempt. Every transport
 * callback first checks that its transport is still the current one, so a replaced transport
 * can never touch the session.
 */

/** Why a transport was attached: first or new connection, climbing to WebSocket, or resuming. */
export type SwitchReason = 'connect' | 'upgrade' | 'downgrade' | 'resume'

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'waiting'

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
}

/** What the connection tells the socket. */
export interface ConnectionHost {
  /** The HELLO for the next attach (asks for auth again, carries sid and ack). */
  hello(): Promise<HelloPacket>
  /** A transport was attached; `attempt` counts the failed attempts before this one. */
  opened(
    open: OpenPacket,
    now: TransportName,
    before: TransportName | null,
    why: SwitchReason,
    attempt: number,
  ): void
  /** A packet from the current transport (PING and MOVED are handled here). */
  packet(packet: Packet): void
  /** The transport was lost and no other took over at once. */
  down(reason: CloseReason): void
  /**
   * Tells the application: an attempt failed (`connect_error`), one transport could not be
   * opened and the attempt goes on with the next (`transport_error`), a reconnection attempt
   * starts (`reconnect_attempt`), reconnectionAttempts ran out (`reconnect_failed`).
   */
  notify<K extends ConnectionEvent>(event: K, ...args: Parameters<ReservedEvents[K]>): void
}

/** The socket events the connection fires. */
export type ConnectionEvent = 'connect_error' | 'transport_error' | 'reconnect_attempt' | 'reconnect_failed'

const PONG = outgoing({ type: PacketType.PONG })

/** The transport life of one client: fallback, upgrade probes, heartbeat, reconnection. */
export class Connection {
  #state: ConnectionState = 'idle'
  #current: Transport | undefined
  #last: TransportName | null = null
  #probe: Transport | undefined
  /** A MOVED arrived while a probe was in flight: the probe is now the only way on. */
  #moved = false
  /** Bumped by every new attempt and by close(): older async work sees it and stops. */
  #run = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #probeTimer: ReturnType<typeof setTimeout> | undefined
  #liveTimer: ReturnType<typeof setTimeout> | undefined
  #liveMs = 0
  /** When the current transport last brought anything (`performance.now()`). */
  #heardAt = 0
  #serverTransports: readonly TransportName[] | undefined
  #retryAfter = 0
  #lostReason: CloseReason = 'transport close'
  readonly #backoff: Backoff
  #probeFailures = 0
  #unlisten: (() => void) | undefined

  readonly #opts: ConnectionOptions
  readonly #factory: TransportFactory
  readonly #memory: TransportMemory
  readonly #host: ConnectionHost
  readonly #maxPayload: () => number

  constructor(
    opts: ConnectionOptions,
    factory: TransportFactory,
    memory: TransportMemory,
    host: ConnectionHost,
    maxPayload: () => number,
  ) {
    this.#opts = opts
    this.#factory = factory
    this.#memory = memory
    this.#host = host
    this.#maxPayload = maxPayload
    this.#backoff = new Backoff(opts.reconnectionDelay, opts.reconnectionDelayMax, opts.randomization)
  }

  get state(): ConnectionState {
    return this.#state
  }

  /** The attached transport's name, or null. */
  get transport(): TransportName | null {
    return this.#state === 'open' && this.#current ? this.#current.name : null
  }

  /** Starts connecting, unless already active. */
  open(): void {
    if (this.#state !== 'idle') return
    this.#backoff.reset()
    this.#listen()
    void this.#connect('connect')
  }

  /** Stops everything: transports, probe, timers. */
  close(): void {
    this.#run++
    this.#state = 'idle'
    this.#last = null
    this.#drop()
    this.#unlisten?.()
    this.#unlisten = undefined
  }

  /** Sends on the attached transport; false when there is none (the caller keeps or drops). */
  send(items: readonly Outgoing[]): boolean {
    if (this.#state !== 'open' || !this.#current) return false
    this.#current.send(items)
    return true
  }

  /** The server ended the session (CLOSE): reconnect later unless `again` is false. */
  ended(again: boolean, retryAfter = 0): void {
    this.#run++
    this.#drop()
    this.#last = null
    if (again) {
      this.#retryAfter = retryAfter
      this.#schedule()
    } else this.close()
  }

  /** The current transport is unusable (the socket saw a gap): resume on another. */
  lost(reason: CloseReason): void {
    if (this.#current) this.#lose(this.#current, reason)
  }

  // -------------------------------------------------------------------------------------------

  /** The transports to try, in order: options ∩ server's, starting after `after` or at memory. */
  #order(after?: TransportName): TransportName[] {
    const server = this.#serverTransports
    const base = this.#opts.transports.filter((t) => !server || server.includes(t))
    const list = base.length > 0 ? base : [...this.#opts.transports]
    const i = after ? list.indexOf(after) + 1 : Math.max(0, list.indexOf(this.#memory.get() as TransportName))
    return [...list.slice(i), ...list.slice(0, i)]
  }

  async #connect(why: 'connect' | 'resume', after?: TransportName): Promise<void> {
    const run = ++this.#run
    this.#state = 'connecting'
    let last: ParleyError<string> | undefined
    let refused = false
    for (const name of this.#order(after)) {
      const t = this.#factory(name, this.#maxPayload())
      let open: OpenPacket
      try {
        const hello = await this.#host.hello()
        if (run !== this.#run) return t.close()
        open = await t.open(hello, this.#opts.connectTimeout)
      } catch (err) {
        t.close()
        if (run !== this.#run) return
        last = asParleyError(err)
        this.#host.notify('transport_error', name, last)
        if (isRefusal(err)) {
          refused = true
          break
        }
        continue
      }
      if (run !== this.#run) return t.close()
      const moved = why === 'resume' && after && this.#rank(name) > this.#rank(after)
      this.#adopt(t, open, why === 'connect' ? 'connect' : moved ? 'downgrade' : 'resume')
      return
    }
    if (why === 'resume') {
      this.#last = null
      this.#host.down(this.#lostReason)
    }
    const error = last ?? new ParleyError(ErrorCode.TRANSPORT_ERROR, 'no transport to try')
    const reconnects = !refused && this.#opts.reconnection
    const willRetry = reconnects && this.#backoff.attempts < this.#opts.reconnectionAttempts
    this.#host.notify('connect_error', error, willRetry)
    if (run !== this.#run) return
    // With attempts used up, #schedule says reconnect_failed.
    if (reconnects) this.#schedule()
    else this.close()
  }

  #rank(name: TransportName): number {
    return this.#opts.transports.indexOf(name)
  }

  #adopt(t: Transport, open: OpenPacket, why: SwitchReason): void {
    const old = this.#current
    const before = this.#last
    const attempt = this.#backoff.attempts
    this.#current = t
    this.#last = t.name
    this.#state = 'open'
    this.#moved = false
    this.#serverTransports = open.transports
    this.#liveMs = open.pingInterval + open.pingTimeout
    this.#retryAfter = 0
    this.#backoff.reset()
    if (old && old !== t) old.close()
    this.#memory.set(t.name)
    this.#alive()
    // The socket applies OPEN (and resends what the server lacks) before any packet that came
    // after OPEN on this transport is delivered.
    this.#host.opened(open, t.name, before, why, attempt)
    if (this.#current !== t) return
    t.attach({
      packet: (p) => {
        if (this.#current === t) this.#packet(t, p)
      },
      close: () => {
        if (this.#current === t) this.#lose(t, 'transport close')
      },
    })
    if (this.#current === t) this.#scheduleProbe()
  }

  #packet(t: Transport, p: Packet): void {
    this.#heardAt = performance.now()
    if (p.type === PacketType.PING) t.send([PONG])
    else if (p.type === PacketType.MOVED) {
      if (this.#probe) {
        // The server attached our probe, whose OPEN is still on its way: wait for it.
        this.#moved = true
        this.#current = undefined
        this.#state = 'connecting'
        this.#stopAlive()
        t.close()
      } else this.#lose(t, 'transport close')
    } else this.#host.packet(p)
  }

  #lose(t: Transport, reason: CloseReason): void {
    this.#current = undefined
    t.close()
    this.#stopAlive()
    this.#cancelProbe()
    this.#lostReason = reason
    void this.#connect('resume', t.name)
  }

  /**
   * Starts the "transport is dead" timer: anything from the server proves it alive. A packet
   * only notes the time (a timer cleared and set again per packet showed in profiles); the
   * timer, when it fires, waits again for whatever is left of the window since the last one.
   */
  #alive(): void {
    this.#stopAlive()
    const t = this.#current
    this.#heardAt = performance.now()
    const check = (wait: number) => {
      this.#liveTimer = setTimeout(() => {
        if (!t || this.#current !== t) return
        const left = this.#heardAt + this.#liveMs - performance.now()
        if (left > 0) check(left)
        else this.#lose(t, 'ping timeout')
      }, wait)
    }
    check(this.#liveMs)
  }

  #stopAlive(): void {
    clearTimeout(this.#liveTimer)
    this.#liveTimer = undefined
  }

  #scheduleProbe(): void {
    const t = this.#current
    if (!t || t.name === 'websocket' || this.#probeTimer !== undefined) return
    if (!this.#opts.transports.includes('websocket') || !this.#serverTransports?.includes('websocket')) return
    const delay = Math.min(
      this.#opts.upgradeDelayMax,
      this.#opts.upgradeDelay * 2 ** Math.min(this.#probeFailures, 20),
    )
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined
      void this.#tryProbe()
    }, delay)
  }

  async #tryProbe(): Promise<void> {
    if (this.#state !== 'open') return
    const run = this.#run
    const t = this.#factory('websocket', this.#maxPayload())
    this.#probe = t
    try {
      const hello = await this.#host.hello()
      if (run !== this.#run || this.#probe !== t) return t.close()
      const open = await t.open(hello, this.#opts.connectTimeout)
      if (run !== this.#run || this.#probe !== t) return t.close()
      this.#probe = undefined
      this.#probeFailures = 0
      this.#adopt(t, open, 'upgrade')
    } catch {
      t.close()
      if (this.#probe !== t) return
      this.#probe = undefined
      this.#probeFailures++
      if (this.#moved) {
        this.#moved = false
        void this.#connect('resume', this.#last ?? undefined)
      } else this.#scheduleProbe()
    }
  }

  #cancelProbe(): void {
    clearTimeout(this.#probeTimer)
    this.#probeTimer = undefined
    this.#probe?.close()
    this.#probe = undefined
    this.#moved = false
  }

  #drop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#stopAlive()
    this.#cancelProbe()
    this.#current?.close()
    this.#current = undefined
  }

  #schedule(): void {
    if (this.#backoff.attempts >= this.#opts.reconnectionAttempts) {
      this.close()
      this.#host.notify('reconnect_failed')
      return
    }
    this.#state = 'waiting'
    const delay = Math.max(this.#backoff.next(), this.#retryAfter)
    this.#timer = setTimeout(() => this.#wake(), delay)
  }

  /** Starts the next attempt, unless the browser says it is offline (then `online` wakes us). */
  #wake(): void {
    if (this.#state !== 'waiting') return
    clearTimeout(this.#timer)
    this.#timer = undefined
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator
    if (nav?.onLine === false) return
    this.#host.notify('reconnect_attempt', this.#backoff.attempts)
    void this.#connect('connect')
  }

  /** In browsers: hurry when the network comes back or the page is shown again. */
  #listen(): void {
    type Target = {
      addEventListener?: (type: string, fn: () => void) => void
      removeEventListener?: (type: string, fn: () => void) => void
    }
    const win = globalThis as Target & { document?: Target & { visibilityState?: string } }
    const doc = win.document
    if (this.#unlisten || typeof win.addEventListener !== 'function' || !doc) return
    const online = () => this.#wake()
    const visible = () => {
      if (doc.visibilityState === 'visible') this.#wake()
    }
    win.addEventListener('online', online)
    doc.addEventListener?.('visibilitychange', visible)
    this.#unlisten = () => {
      win.removeEventListener?.('online', online)
      doc.removeEventListener?.('visibilitychange', visible)
    }
  }
}

function asParleyError(err: unknown): ParleyError<string> {
  return err instanceof ParleyError
    ? err
    : new ParleyError(ErrorCode.TRANSPORT_ERROR, String(err), { cause: err })
}
