import type { OutgoingHttpHeaders } from 'node:http'
import { ErrorCode, encodeText, type HelloPacket, WS_SUBPROTOCOL } from '@parley/protocol'
import { type RawData, WebSocket } from 'ws'
import type { CertificateAuthority } from '../options.js'
import type { ClosingWebSockets } from '../transports/closing-websockets.js'
import { isProtocolError } from '../transports/websocket.js'
import { codedError, readAnswer } from './owner-answers.js'
import { goodbyeIn } from './relayed-goodbye.js'

export interface WebSocketForward {
  /** The client's WebSocket, still owned by its transport while the owner is being reached. */
  ws: WebSocket
  /** Takes the WebSocket from its transport, once the owner's side is open. */
  take: () => WebSocket
  /** The owner's endpoint: `ws://host:port/parley/ws?v=1` (`wss://` for an `https://` node). */
  url: string
  /** The TLS settings of a `wss://` owner (see node-agents.ts). */
  tls: { ca?: CertificateAuthority }
  headers: OutgoingHttpHeaders
  hello: HelloPacket
  connectTimeout: number
  highWaterMark: number
  maxPayload: number
  /** Where a side whose close frame went waits for its peer's (cut when the server closes). */
  closing: ClosingWebSockets
  /**
   * Hears the client's goodbye (its CLOSE, as text) when it comes once the owner's side takes no
   * more messages (see relayed-goodbye.ts).
   */
  lateGoodbye?: (text: string) => void
}

/** A WebSocket relayed to the node that owns its session. */
export interface Relay {
  /**
   * Closes both sides with 1001 (this node is going away; the client resumes elsewhere), after
   * the message `last` to the client, if given (the CLOSE that tells it so: see `Forwarder.close`).
   */
  close(last?: string): void
  /** Settles once both sides are closed. */
  readonly closed: Promise<void>
  /** Settles once the owner's first message (the HELLO's answer) went on to the client, or at the close. */
  readonly answered: Promise<void>
}

/**
 * Connects to the owner (bounded by `connectTimeout`), sends it the HELLO, and relays every
 * message both ways. Resolves with the relay; with an Error when the owner cannot be reached
 * (the client's WebSocket is then untouched); or `gone` when the client left meanwhile.
 *
 * ```
 * client ──ws──▶ this node ──ws (x-parley-routed)──▶ owner
 *        ◀──────  messages as they are, both ways  ──────▶
 * one side closes (code)  → the other is closed with the same code
 * one side breaks (1006)  → the other is terminated
 * a text frame not UTF-8  → the other gets one too (see NOT_UTF8_FRAME)
 * a message past maxPayload → the other is closed with 1009 (see `pipe`)
 * a frame that breaks RFC 6455 → the other is closed with 1002, ws's error code as the reason
 * the client's goodbye once the owner's side is closing or closed → `lateGoodbye`, once
 * ```
 */
export function forwardWebSocket(
  forward: WebSocketForward,
): Promise<Relay | Error | 'gone' | UpgradeRefused> {
  const { ws } = forward
  return new Promise((resolve) => {
    const upstream = new WebSocket(forward.url, WS_SUBPROTOCOL, {
      ...forward.tls,
      headers: forward.headers as Record<string, string>,
      handshakeTimeout: forward.connectTimeout,
      // The owner bounds what it sends by maxPayload in UTF-8 bytes (docs/protocol.md, limits),
      // but an owner of a version before that rule bounded it in UTF-16 code units, up to 3
      // bytes each: ws counts bytes. Bounded by maxPayload itself, the relay would refuse (1009)
      // a packet such an owner may send, which it sends again on every resume.
      maxPayload: forward.maxPayload * UTF8_BYTES_PER_UNIT,
      // Compressing between two nodes costs CPU on both for little gain.
      perMessageDeflate: false,
    })
    let settled = false
    const settle = (result: Relay | Error | 'gone' | UpgradeRefused) => {
      if (settled) return
      settled = true
      ws.off('close', onClientGone)
      resolve(result)
    }
    const onClientGone = () => {
      upstream.terminate()
      settle('gone')
    }
    ws.once('close', onClientGone)
    // The owner is there, and answered with a status of its own (its headers too large once
    // forwarded, a refusal of its hooks, its close under way): not unreachable, which would give
    // the client a new session while its own lives on the owner.
    upstream.once('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0
      readAnswer(response, (body) => {
        settle(upgradeRefused(status, body))
        upstream.terminate()
      })
    })
    upstream.on('error', (err) => settle(err))
    upstream.once('open', () => {
      if (settled) return
      if (ws.readyState !== WebSocket.OPEN) {
        upstream.terminate()
        settle('gone')
        return
      }
      const client = forward.take()
      upstream.send(encodeText(forward.hello))
      settle(relay(client, upstream, forward))
    })
  })
}

/** The most bytes one UTF-16 code unit takes in UTF-8 (a surrogate pair's two take 4). */
const UTF8_BYTES_PER_UNIT = 3

/** The owner answered the upgrade with `status` instead of a WebSocket: what to tell the client. */
export interface UpgradeRefused {
  refused: true
  status: number
  code: string
  message: string
}

/**
 * The owner's refusal as the client gets it: its own code and message when it gave them (the
 * same a client that reached it would get), else PARLEY_SERVER_SHUTTING_DOWN, a try again: an
 * answer without Parley's code comes from before its routes (headers past its limit once this
 * node added its own, Fastify's 503 while it closes), and the client's next try may reach the
 * owner directly.
 */
function upgradeRefused(status: number, body: string): UpgradeRefused {
  const coded = codedError(body)
  if (coded) return { refused: true, status, code: coded.code, message: coded.message.slice(0, 1024) }
  const message = `the node of this session refused to relay the WebSocket (HTTP ${status}): try again`
  return { refused: true, status, code: ErrorCode.SERVER_SHUTTING_DOWN, message }
}

/** Relays messages between two open WebSockets, closes and breaks included. */
function relay(client: WebSocket, upstream: WebSocket, forward: WebSocketForward): Relay {
  const { highWaterMark, closing, lateGoodbye, maxPayload } = forward
  const closed = Promise.all([closeOf(client), closeOf(upstream)]).then(() => undefined)
  // One goodbye at most: a session has one, and until its close frame the client may send
  // messages at will, each of which would otherwise become a request to the owner.
  let goodbyeSent = false
  const late =
    lateGoodbye &&
    ((data: RawData, isBinary: boolean) => {
      if (goodbyeSent) return
      const text = goodbyeIn(data, isBinary, maxPayload)
      if (text === undefined) return
      goodbyeSent = true
      lateGoodbye(text)
    })
  pipe(client, upstream, highWaterMark, closing, late)
  pipe(upstream, client, highWaterMark, closing)
  // After the pipe's listener: the message is on its way to the client (queued in order, ahead
  // of any close frame).
  const answered = Promise.race([
    new Promise<void>((resolve) => upstream.once('message', () => resolve())),
    closed,
  ])
  return {
    closed,
    answered,
    close(last) {
      if (last !== undefined && client.readyState === WebSocket.OPEN) client.send(last)
      closeWith(client, closing, 1001)
      closeWith(upstream, closing, 1001)
    },
  }
}

/**
 * Messages from `from` go to `to` as they are (text as text, binary as binary). While `to`
 * holds more than `highWaterMark` unsent bytes, `from` is not read (TCP pushes back on its
 * sender); it is read again once `to` has written what it held. Those that come once `to` takes
 * no more go to `late`, if given.
 */
function pipe(
  from: WebSocket,
  to: WebSocket,
  highWaterMark: number,
  closing: ClosingWebSockets,
  late?: (data: RawData, isBinary: boolean) => void,
): void {
  /**
   * True once `to` was told why `from` went (NOT_UTF8_FRAME, or a close with 1009 or 1002): it is
   * closed with a close frame, never cut before it.
   */
  let told = false
  const drained = () => {
    if (from.isPaused && to.bufferedAmount <= highWaterMark) from.resume()
  }
  from.on('message', (data: RawData, isBinary: boolean) => {
    if (to.readyState !== WebSocket.OPEN) {
      late?.(data, isBinary)
      return
    }
    to.send(data, { binary: isBinary }, drained)
    if (to.bufferedAmount > highWaterMark && !from.isPaused) from.pause()
  })
  from.on('close', (code: number, reason: Buffer) => {
    // 1005 (no code) and 1006 (no close frame) cannot be sent: the first closes without a
    // code, the second is a break, passed on as one.
    if (code === 1006 && !told) to.terminate()
    else closeWith(to, closing, code === 1005 || code === 1006 ? undefined : code, reason)
  })
  from.on('error', (err: Error & { code?: string }) => {
    if (to.readyState !== WebSocket.OPEN) to.terminate()
    else if (err.code === 'WS_ERR_INVALID_UTF8') {
      to.send(NOT_UTF8_FRAME, { binary: false })
      told = true
    } else if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      // ws refused a message past maxPayload (it keeps none of it) and closes `from` with 1009.
      // The owner takes a 1009 from a relay as its own (see WebSocketTransport), and ends the
      // session with 'payload too large' as if the message had reached it: cut instead, the
      // session would only detach, and its client would send the message again on every resume.
      closeWith(to, closing, 1009)
      told = true
    } else if (isProtocolError(err.code)) {
      // A frame that breaks the protocol (ws closes `from` with 1002): the owner ends the
      // session with 'invalid packet', as for such a frame of its own, told by a 1002 whose
      // reason names ws's error.
      closeWith(to, closing, 1002, Buffer.from(err.code))
      told = true
    } else to.terminate()
  })
}

/**
 * What a relay sends on for a frame that was not UTF-8 (ws keeps none of its bytes): a text frame
 * that is not UTF-8 either (ws checks none it sends), so that the owner ends the session as it
 * would have had the client's frame reached it, with its own 1007.
 */
const NOT_UTF8_FRAME = Buffer.from([0xff])

function closeWith(ws: WebSocket, closing: ClosingWebSockets, code?: number, reason?: Buffer): void {
  if (ws.readyState === WebSocket.CLOSED) return
  if (ws.readyState === WebSocket.CLOSING) return
  try {
    ws.close(code !== undefined && sendable(code) ? code : undefined, reason)
    closing.closing(ws)
  } catch {
    ws.terminate()
  }
}

/** Close codes that may appear in a close frame (RFC 6455 7.4, as ws checks them). */
function sendable(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  )
}

function closeOf(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve()
  return new Promise((resolve) => ws.once('close', () => resolve()))
}
