import { ErrorCode, ParleyError, WS_SUBPROTOCOL, type WsCloseCode } from '@parley/protocol'
import { decodeFrame, frameOf } from '../codec.js'
import { deadline } from '../deadline.js'
import { named } from '../options.js'
import type { Outgoing } from '../outgoing.js'
import * as PacketType from '../packet-type.js'
import { afterGrace, BaseTransport, shown, timeoutError, transportError, type Welcome } from './transport.js'
import { hearRefusal } from './upgrade-refusal.js'

/**
 * Any WebSocket constructor: the browser's, `ws`'s, undici's. Typed loosely on purpose: their
 * handler types differ, and only the members of `WebSocketLike` are used.
 */
export type WebSocketConstructor = abstract new (url: string, protocols?: string | string[]) => unknown

/** The members of a WebSocket the client uses. */
interface WebSocketLike {
  readonly protocol: string
  binaryType: string
  onopen: (() => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  /** 3 once closed. */
  readonly readyState: number
  /** Bytes given to `send` (and `close`) that have not left yet. */
  readonly bufferedAmount: number
  send(data: string | Uint8Array): void
  close(code?: number, reason?: string): void
  /** `ws`'s (Node): ends the connection at once, with no closing handshake. */
  terminate?(): void
}

let nodeWebSocket: Promise<WebSocketConstructor> | undefined

/**
 * The WebSocket to use: the given one, the platform's, else the `ws` package (Node). Async, so
 * that the browser bundle says each outcome with a `return` or a `throw` rather than through
 * `Promise.resolve` and `Promise.reject`.
 */
export async function resolveWebSocket(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  const ctor = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (ctor) return ctor
  // The browser bundle's build defines this true: no browser has `ws`, and the bundle is spared
  // the Node-only lookup below.
  if ((globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
    throw transportError('no WebSocket here: pass the WebSocket option')
  }
  // A variable specifier keeps bundlers from pulling `ws` into the browser build.
  const specifier = 'ws'
  // A lookup that failed, whether `ws` did not load or loaded without a WebSocket export (another
  // package under that name, a broken install), is not kept: the next transport's asks again,
  // and finds `ws` once the application has installed or mended it, without a restart.
  nodeWebSocket ??= import(specifier)
    .then((mod: { default?: WebSocketConstructor; WebSocket?: WebSocketConstructor }) => {
      const ctor = mod.WebSocket ?? mod.default
      if (!ctor) throw new Error('the "ws" module has no WebSocket export')
      return ctor
    })
    .catch((cause: unknown) => {
      nodeWebSocket = undefined
      throw new ParleyError(
        ErrorCode.TRANSPORT_ERROR,
        'no WebSocket here: install the "ws" package or pass the WebSocket option',
        { cause },
      )
    })
  return nodeWebSocket
}

/** The longest a patient upgrade waits (see `Transport.open`), whatever `connectTimeout`. */
const PATIENT_UPGRADE_MS = 10_000

/** WebSocket: one packet per message, text or (with binary) a binary frame. */
export class WebSocketTransport extends BaseTransport {
  readonly name = 'websocket'
  // As on SSE and polling (docs/protocol.md allows up to 1000 ms): an ACK per client every
  // 200 ms was 7 to 10% of a broadcasting server's busy time, more than keeping one second of
  // broadcasts for replay costs it.
  readonly ackDelay = 1000
  readonly ackAfter = 32
  #ws: WebSocketLike | undefined
  /** Node only: stops hearing an upgrade's refusal (see hearRefusal). */
  #unhear: (() => void) | undefined
  /**
   * The wait for the upgrade, then for OPEN. Cleared by teardown too: a transport closed while it
   * waits (a probe given up, an attempt left by disconnect()) settles nothing any more, and the
   * timer would only hold a Node process open until it ran out. Its stop (see deadline): after a
   * stall, an answer that came meanwhile wins over the wait that ran out.
   */
  #stop: (() => void) | undefined
  /** Until the upgrade goes through: no HELLO went, and no session can be on this WebSocket. */
  unsent = true

  /**
   * Left by disconnect() (see Transport.leave). No HELLO went yet: no session can be on this
   * WebSocket, so it ends now. Upgraded: left to its answer, an OPEN that needs the goodbye; in
   * Node for a grace at most (see afterGrace), then ended at once (see terminate): the server said
   * nothing all that time. One closed within the grace (an OPEN came, and the goodbye went) is
   * ended as every WebSocket closed in Node is (see teardown). The browser build leaves the
   * upgraded WebSocket to its answer. One closed already (an attempt paused after a try that
   * failed) has no answer to wait for: no grace, which would keep it 2 s for nothing.
   */
  leave(): void {
    if (this.unsent) this.close()
    else if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE && !this.closed)
      afterGrace(() => {
        if (this.closed) return
        this.close()
        terminate(this.#ws)
      })
  }

  open(hello: string, timeout: number, patient?: boolean, _stream?: number, of?: string): Promise<Welcome> {
    return new Promise<Welcome>((resolve, reject) => {
      let opened: boolean | undefined
      const settle = (error: ParleyError<string> | undefined, open?: Welcome) => {
        this.#stop?.()
        if (opened) return
        opened = true
        // The answer, or else the error.
        if (open) return resolve(open)
        this.close()
        reject(error)
      }
      // An upgrade that gets no answer within a third of the bound (at least a second) is most
      // often a proxy that swallows WebSockets: the next transport is tried then, not after the
      // whole bound. Patient (a resume after a handoff: WebSocket got through a moment ago, and
      // every node is busy taking sessions over), the whole bound, up to PATIENT_UPGRADE_MS:
      // given up on early, the resume would step down to a worse transport and come back later.
      // A third in whole ms (`| 0`: the bound is at most MAX_TIMER_MS), as the error says it.
      const wait = Math.min(timeout, patient ? PATIENT_UPGRADE_MS : Math.max(1000, (timeout / 3) | 0))
      // Upgraded, the WebSocket has the rest of the bound for its OPEN: a server that accepts the
      // upgrade and then says nothing is as useless as one that never answers. The rest, not the
      // bound again: the bound is the whole try's, the upgrade included, and a try again after
      // a slow middleware is given only what is left of the connect's (see Connection), which a
      // late upgrade would overrun. One timer does both: at `wait`, either the upgrade is through
      // or the try fails. An event stream's first bytes get the bound again from its GET (see
      // HttpTransport): they come after the OPEN, and a slow handshake that left them too little
      // would mark a working stream stalled; the upgrade is part of the handshake, and a late
      // OPEN marks nothing.
      // The error names the bound this wait is a share of, the one the application can raise:
      // `wait` alone is a number it never set (a third, the floor, or a third of what a try again
      // had left). `of` is set when that bound is the server's pingTimeout (see Connection).
      this.#stop = deadline(() => {
        if (this.unsent)
          settle(
            timeoutError(
              `no upgrade from ${shown(this.url)}`,
              wait,
              of ? " (its share of the server's pingTimeout)" : ' (its share of connectTimeout)',
            ),
          )
        else
          this.#stop = deadline(
            () => settle(timeoutError(`no OPEN from ${shown(this.url)}`, timeout, of)),
            timeout - wait,
          )
      }, wait)
      resolveWebSocket(this.setup.WebSocket)
        .then((Ctor) => {
          if (this.closed) throw transportError('closed before it opened')
          const ws = new (Ctor as unknown as new (url: string, protocols: string) => WebSocketLike)(
            this.url,
            WS_SUBPROTOCOL,
          )
          this.#ws = ws
          ws.binaryType = 'arraybuffer'
          // In Node, with `ws`: an upgrade refused with an HTTP status fails with the server's code.
          // (The browser build leaves this out: browsers do not show that answer.)
          if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
            this.#unhear = hearRefusal(ws, this.url, this.payloadMax, settle)
          }
          ws.onopen = () => {
            if (this.closed) return
            this.unsent = false
            // An application's WebSocket may give any `protocol`, or throw for it, and its `send`
            // may throw: thrown here, in its event, it would be no one's (in Node, a crash).
            try {
              if (ws.protocol !== WS_SUBPROTOCOL) {
                throw new ParleyError(
                  ErrorCode.UNSUPPORTED_VERSION,
                  `server chose subprotocol "${named(ws.protocol)}"`,
                )
              }
              ws.send(hello)
            } catch (err) {
              settle(transportError('WebSocket failed', err))
            }
          }
          ws.onmessage = (ev) => {
            if (this.closed) return
            const decoded = decodeFrame(ev.data, this.payloadMax)
            // An ACK may come before the CLOSE that answers a resume (HELLO `closeAck`): held,
            // as what comes after OPEN is, and taken before that CLOSE.
            if (opened || (decoded.ok && decoded.packet.type === PacketType.ACK)) {
              this.deliver(decoded)
              return
            }
            try {
              settle(undefined, this.welcome(decoded))
            } catch (err) {
              settle(err as ParleyError<string>)
            }
          }
          // What the platform said before the close (`ws` in Node: ECONNREFUSED, a TLS error;
          // browsers say nothing).
          let said: unknown
          ws.onclose = (ev) => {
            // An application's WebSocket may give any event, and any code and reason in it: read as
            // far as it lets itself be read, and named with care.
            let code: unknown
            let reason: unknown
            try {
              ;({ code, reason } = ev)
            } catch {}
            const error = transportError(
              `WebSocket ${shown(this.url)} closed (${named(code)}${reason ? ` ${named(reason)}` : ''})`,
              said,
            )
            if (opened) this.fail(error)
            // 1009 before OPEN: the HELLO, the one message sent, passed the server's maxPayload.
            // A refusal, as the 413 that answers the same HELLO over HTTP: no transport, and no
            // retry, would send a smaller one.
            else
              settle(
                code === 1009
                  ? new ParleyError(ErrorCode.PAYLOAD_TOO_LARGE, error.message, {
                      details: { refused: true },
                    })
                  : error,
              )
          }
          // Errors are followed by close; a listener must stay, since `ws` throws on unheard errors.
          ws.onerror = (ev) => {
            said = (ev as { error?: unknown }).error
          }
        })
        // What the constructor threw may be anything (transportError reads it with care); a
        // coded failure of ours (no WebSocket here) goes as it is.
        .catch((err: unknown) => settle(transportError('WebSocket failed', err)))
    })
  }

  send(items: readonly Outgoing[]): void {
    // Sent to only once open() resolved, when the WebSocket is there (`ws?.` says so to the type,
    // for no bytes, where a check would cost some).
    const ws = this.#ws
    if (this.closed) return
    // In Node, `ws`'s socket is corked until the end of this tick: what the application sends
    // meanwhile (the answers to one read, a loop of emits) leaves in one write, one system call,
    // instead of one each, and the server reads it in one go. Browsers send as they see fit;
    // the browser bundle leaves this out, and a WebSocket without `_socket` (undici's) is left be.
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
      const socket = (
        ws as { _socket?: { cork?(): void; uncork(): void; writableCorked?: number } | null } | undefined
      )?._socket
      if (socket?.cork && socket.writableCorked === 0) {
        socket.cork()
        queueMicrotask(() => socket.uncork())
      }
    }
    try {
      for (const item of items) ws?.send(item.frame ? frameOf(item.frame) : item.text)
    } catch (err) {
      this.fail(transportError('send failed', err))
    }
  }

  protected teardown(code: WsCloseCode): void {
    this.#stop?.()
    const ws = this.#ws
    if (!ws) return
    // An application's WebSocket may refuse to have its handlers set (a setter that throws): the
    // teardown goes on, and closes it all the same. Thrown here, the error would be no one's: this
    // runs in timers and in the handlers of promises (in Node, a crash), and the attempt it ends
    // would never settle. Each in a try of its own, so that one that refuses leaves the others
    // cleared all the same: one chain of assignments stopped at the first that threw, and the
    // handlers it had not reached, closures over the transport (hence over its session's
    // connection), lived as long as the WebSocket.
    try {
      ws.onopen = null
    } catch {}
    try {
      ws.onmessage = null
    } catch {}
    try {
      ws.onclose = null
    } catch {}
    try {
      ws.close(code)
    } catch {}
    if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
      // The WebSocket lives on until its closing handshake is over (up to the grace, see
      // endOnceSent), and what it still holds of this transport with it: the error listener
      // (which must stay: `ws` throws on unheard errors) and the refusal's, both closures over
      // the transport, hence over its session's connection. In Node, where a server slow to
      // close keeps it for seconds, both let the transport go now.
      try {
        ws.onerror = ignore
      } catch {}
      this.#unhear?.()
      endOnceSent(ws)
    }
  }
}

/** An error listener that holds nothing (see teardown). */
function ignore(): void {}

/** How often (ms) a closing WebSocket is looked at until what it was given has left, in Node. */
const SENT_CHECK_MS = 100
/** The looks at most: 30 s, `ws`'s own bound on a closing handshake, after which it ended it. */
const SENT_CHECKS = 300

/**
 * Node only: ends a WebSocket the client closed (after a goodbye, a heartbeat timeout, a switch)
 * once the server had a grace (see afterGrace) for its side of the closing handshake, counted
 * from when everything given to the WebSocket, the close frame last, had left. `ws` waits 30 s
 * for that side, holding the process open all along, and a server gone silent (stopped, or
 * behind a link that stopped passing anything) never sends it. Nothing that has yet to leave is
 * cut: a server slow to read still gets its goodbye. A WebSocket that never empties is ended by
 * `ws`'s own bound.
 */
function endOnceSent(ws: WebSocketLike, checks = SENT_CHECKS): void {
  ;(
    setTimeout(() => {
      let closed: boolean
      let sending: boolean
      // An application's WebSocket may throw for these: in a timer, that would be a crash.
      try {
        closed = ws.readyState === 3
        sending = ws.bufferedAmount > 0
      } catch {
        return
      }
      if (closed) return
      if (!sending) afterGrace(() => terminate(ws))
      else if (checks > 1) endOnceSent(ws, checks - 1)
    }, SENT_CHECK_MS) as { unref?(): void }
  ).unref?.()
}

/**
 * Ends `ws` at once, with no closing handshake, by `ws`'s terminate(): an application's
 * WebSocket may have none, or throw there (in a timer, that would be a crash). No WebSocket
 * (none was made yet): nothing to end.
 */
function terminate(ws: WebSocketLike | undefined): void {
  try {
    ws?.terminate?.()
  } catch {}
}
