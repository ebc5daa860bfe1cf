import { isUtf8 } from 'node:buffer'
import {
  type AckPacket,
  type ClosePacket,
  decodeFrame,
  ErrorCode,
  encodeFrame,
  type OpenPacket,
  ParleyError,
  type SplitText,
  WsCloseCode,
} from '@parley/protocol'
import type { RawData, WebSocket } from 'ws'
import { notUtf8 } from '../not-utf8.js'
import type { ClosingWebSockets } from './closing-websockets.js'
import { type Corkable, corkable, corkForTick } from './tick-cork.js'
import { BaseTransport, type CloseKind, KEEP_AS_UTF8_FROM, type Outgoing } from './transport.js'

/** The first byte of an unfragmented text frame (RFC 6455 5.2: FIN, opcode 1). */
const FIN_TEXT = 0x81

/** A broadcast's shared tail up to this long is copied into each copy's frame (see `#sendSplit`). */
const COPY_TAIL_BYTES = 1024

/** The length of an unmasked frame's header for a payload of `length` bytes (RFC 6455 5.2). */
const headerBytes = (length: number): number => (length < 126 ? 2 : length < 65_536 ? 4 : 10)

/** Writes the header of an unfragmented, unmasked text frame of `length` bytes at the start of `frame`. */
function writeHeader(frame: Buffer, length: number): void {
  frame[0] = FIN_TEXT
  if (length < 126) frame[1] = length
  else if (length < 65_536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
}

const closeCodes: Record<Exclude<CloseKind, 'overflow'>, WsCloseCode> = {
  normal: WsCloseCode.NORMAL,
  shutdown: WsCloseCode.GOING_AWAY,
  refused: WsCloseCode.POLICY_VIOLATION,
}

/**
 * The errors of `ws` for a frame it could not read, and so never handed over as a message:
 * 1007 (a text frame, or a close frame's reason, that is not UTF-8) and 1002 (a frame that
 * breaks the protocol). `ws` closes with that code itself; the session ends as for a packet
 * that does not decode ('invalid packet'), with the code an HTTP body of the same bytes gets.
 */
const unreadableFrames = new Map<string, () => ParleyError>([
  ['WS_ERR_INVALID_UTF8', notUtf8],
  ...[
    'WS_ERR_UNEXPECTED_RSV_1',
    'WS_ERR_UNEXPECTED_RSV_2_3',
    'WS_ERR_INVALID_OPCODE',
    'WS_ERR_EXPECTED_FIN',
    'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH',
    'WS_ERR_EXPECTED_MASK',
    'WS_ERR_UNEXPECTED_MASK',
    'WS_ERR_INVALID_CLOSE_CODE',
  ].map((code): [string, () => ParleyError] => [code, () => brokenFrame(code)]),
])

const brokenFrame = (code: string) =>
  new ParleyError(ErrorCode.INVALID_PACKET, `the frame breaks the WebSocket protocol (${code})`)

/**
 * True for an error of `ws` for a frame that breaks the protocol (it closes with 1002): a relay
 * passes it on to the owner as a close with 1002 and the error's code as the reason (see
 * forward-ws.ts), which the owner takes as its own (see `#closed`).
 */
export function isProtocolError(code: string | undefined): code is string {
  return code !== undefined && code !== 'WS_ERR_INVALID_UTF8' && unreadableFrames.has(code)
}

/** What every WebSocket transport of one server shares: one object, not fields of each. */
export interface WebSocketSettings {
  maxPayload: number
  /**
   * Set when Parley registered @fastify/websocket itself, whose `errorHandler` (Parley's) only
   * logs: the transport's own error listener then takes the place of the one
   * @fastify/websocket added to each WebSocket (which holds the upgrade request for as long as
   * the connection lives), and logs the same line with this.
   */
  logError?: ((err: Error) => void) | undefined
  /** Where a WebSocket waits for its client's close frame, so that a closing server cuts it. */
  closing?: ClosingWebSockets | undefined
  /**
   * True when ws hands on text frames without checking their bytes are UTF-8: the application's
   * own @fastify/websocket registration set `skipUTF8Validation`. Read once for the server, so
   * that where ws checks (always with Parley's own registration) no frame pays for a second check.
   */
  checkUtf8?: boolean | undefined
}

/**
 * The transport of each WebSocket. Its listeners are shared by every socket (an emitter calls
 * them with the socket as `this`) rather than three closures per connection.
 */
const owners = new WeakMap<WebSocket, WebSocketTransport>()
let onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void
let onError: (this: WebSocket, error: Error & { code?: string }) => void
let onClose: (this: WebSocket, code: number, reason: Buffer) => void

/** One WebSocket: each packet is one message, a text frame or (with binary) a binary frame. */
export class WebSocketTransport extends BaseTransport {
  // On the prototype, not a field of each transport (an idle connection should cost little).
  get name(): 'websocket' {
    return 'websocket'
  }

  /** Where it writes split forms as frames of its own (see `#sendSplit`): no extension. */
  override get writesBytes(): boolean {
    return this.#framesDirect
  }
  readonly #ws: WebSocket
  readonly #settings: WebSocketSettings
  readonly #socket: Corkable | undefined
  /** Writes broadcast copies as frames of its own onto the socket (see `#sendSplit`). */
  readonly #framesDirect: boolean
  /**
   * 'too large': ws refused a message past maxPayload (and closes with 1009 by itself);
   * 'released': another owner took the WebSocket over (see `release`).
   */
  #fate: 'too large' | 'released' | undefined
  /** True for a WebSocket another node relays here (the routed mark): see `#closed`. */
  readonly #relayed: boolean

  /**
   * `socket`: the connection under `ws` (the upgrade request's socket), corked per tick;
   * `relayed`: the upgrade came from a node that relays its client's WebSocket here.
   */
  constructor(ws: WebSocket, settings: WebSocketSettings, socket?: Corkable, relayed = false) {
    super()
    this.#ws = ws
    this.#relayed = relayed
    this.#settings = settings
    this.#socket = corkable(socket)
    // Only where ws itself would write a text frame as it is: no extension (permessage-deflate
    // would compress it) and a socket to write to.
    this.#framesDirect = typeof this.#socket?.write === 'function' && ws.extensions === ''
    owners.set(ws, this)
    ws.on('message', onMessage)
    ws.on('error', onError)
    ws.on('close', onClose)
    if (settings.logError) {
      // Ours was added first: removing an event's last listener deletes a property of the
      // emitter's event table, which turns that table into a dictionary (about 130 bytes more
      // per connection); removing one of two keeps it as it is.
      for (const listener of ws.listeners('error')) {
        if (listener !== onError) ws.removeListener('error', listener as (err: Error) => void)
      }
    }
  }

  static {
    onMessage = function (data, isBinary) {
      const transport = owners.get(this)
      if (transport) transport.#message(data, isBinary)
    }
    onError = function (error) {
      const transport = owners.get(this)
      if (transport) transport.#error(error)
    }
    onClose = function (code, reason) {
      const transport = owners.get(this)
      if (transport) transport.#closed(code, reason)
    }
  }

  /**
   * Lets go of the WebSocket without a word on it, for another owner to take it over (a relay
   * to the node that holds the session the HELLO named). The transport is closed from then on,
   * and nothing of the socket reaches it any more.
   */
  release(): WebSocket {
    this.#fate = 'released'
    this.#ws.off('message', onMessage)
    // The WebSocket's errors are still logged, as before the transport took it.
    if (this.#settings.logError) this.#ws.on('error', this.#settings.logError)
    this.#ws.off('error', onError)
    this.#ws.off('close', onClose)
    owners.delete(this.#ws)
    this.close('normal')
    return this.#ws
  }

  #error(error: Error & { code?: string }): void {
    this.#settings.logError?.(error)
    // ws closes with 1009 by itself; remember why, since the close code we see may be 1006.
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#fate = 'too large'
    const unreadable = error.code === undefined ? undefined : unreadableFrames.get(error.code)
    // Before the close that follows: the owner ends the session, or refuses the handshake.
    if (unreadable) this.emitInvalid(unreadable())
  }

  // No close code from the client ends the session, whatever it says (see WsCloseCode): a
  // client says goodbye with a CLOSE packet, and a close without one may be a browser tab
  // going to sleep, a proxy, or the client dropping a transport it no longer trusts. Only our
  // own 1009 ends it, since the client would send the same message again on every resume; and
  // a relay's 1009 or 1002, which are the relaying node's own (its ws refused the client's
  // message or frame: see forward-ws.ts), ending it as on this node. A client that sends the
  // routed mark itself to pass for a relay gains nothing by it: it can end only its own
  // session, as a CLOSE packet would.
  #closed(code: number, reason: Buffer): void {
    if (this.#relayed && code === WsCloseCode.PROTOCOL_ERROR) {
      const named = reason.toString()
      this.emitInvalid(brokenFrame(isProtocolError(named) ? named : 'relayed'))
    }
    const tooLarge = this.#fate === 'too large' || (this.#relayed && code === WsCloseCode.MESSAGE_TOO_BIG)
    this.lost(tooLarge ? 'payload too large' : 'transport close')
  }

  /** Bytes ws queued and the socket has not handed to the kernel: real bytes of frames. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount
  }

  handshake(answer: Outgoing<OpenPacket | ClosePacket>, ack?: Outgoing<AckPacket>): void {
    if (ack) this.send(ack)
    this.send(answer)
  }

  send(out: Outgoing): void {
    if (!this.open || this.#ws.readyState !== this.#ws.OPEN) return
    this.#cork()
    if (out.binary) this.#ws.send(out.frame?.() ?? encodeFrame(out.packet))
    else if (!this.#framesDirect) this.#ws.send(out.text)
    else {
      const split = out.split?.()
      if (split) this.#sendSplit(split)
      else this.#sendText(out.text)
    }
  }

  /**
   * A text of the session's own, as a frame of our own: header and UTF-8 in one buffer, one
   * chunk for the socket. ws would make an options object and a header buffer per message and
   * hand the socket the header and the string apart. A text as long as the session keeps as
   * UTF-8 (`KEEP_AS_UTF8_FROM`) most often comes split; one that does not, ws sends: one limit
   * for both, so that they cannot drift apart.
   */
  #sendText(text: string): void {
    if (text.length >= KEEP_AS_UTF8_FROM) {
      this.#ws.send(text)
      return
    }
    const length = Buffer.byteLength(text)
    const at = headerBytes(length)
    const frame = Buffer.allocUnsafe(at + length)
    writeHeader(frame, length)
    frame.write(text, at, 'utf8')
    this.#socket!.write!(frame)
  }

  /**
   * A broadcast copy, written as a text frame of our own: the frame's header and the copy's
   * `head` in one small buffer, then the broadcast's shared `tail` as it is (or copied in, when
   * short). ws would encode the whole text into a new buffer for every recipient; a long tail
   * is never copied. The socket is corked (`#cork`), so the pieces leave in the same write as
   * everything else of this tick, in order with what ws writes itself (ws writes at once when
   * it has no extension, so nothing of its own waits behind these).
   */
  #sendSplit(split: SplitText): void {
    const { head, tail } = split
    const length = head.length + tail.length
    const at = headerBytes(length)
    // A short tail is copied in: one write of a few hundred bytes costs less than two.
    const copyTail = tail.length <= COPY_TAIL_BYTES
    const start = Buffer.allocUnsafe(at + head.length + (copyTail ? tail.length : 0))
    writeHeader(start, length)
    start.write(head, at, 'latin1')
    const socket = this.#socket!
    if (copyTail) {
      start.set(tail, at + head.length)
      socket.write!(start)
      return
    }
    socket.write!(start)
    socket.write!(tail)
  }

  // The frames sent in one tick leave in one write: the profile of an echo load showed writev
  // as the largest cost.
  #cork(): void {
    if (this.#socket) corkForTick(this.#socket)
  }

  protected end(kind: CloseKind): void {
    if (this.#fate === 'released') return
    // A client that does not read would not read a close frame either, and the closing
    // handshake would hold every queued byte for ws's close timeout: cut it now.
    if (kind === 'overflow') this.#ws.terminate()
    else this.#closeGracefully(closeCodes[kind])
  }

  /** A closing handshake, which the server cuts short when it closes (see ClosingWebSockets). */
  #closeGracefully(code: WsCloseCode): void {
    this.#ws.close(code)
    this.#settings.closing?.closing(this.#ws)
  }

  #message(data: RawData, isBinary: boolean): void {
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength
    if (size > this.#settings.maxPayload) {
      // ws enforces this too when Parley configured it; an application-registered
      // @fastify/websocket may allow more, so the limit is checked here as well.
      this.#closeGracefully(WsCloseCode.MESSAGE_TOO_BIG)
      this.lost('payload too large')
      return
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
    if (!isBinary && this.#settings.checkUtf8 && !isUtf8(bytes)) {
      // What ws does when it checks (see `unreadableFrames`): close with 1007 first, so that
      // nothing the session sends as it ends goes out on this WebSocket, then end it.
      this.#closeGracefully(WsCloseCode.INVALID_DATA)
      this.emitInvalid(notUtf8())
      return
    }
    // A plain Uint8Array view: the application gets Uint8Array leaves, not Node Buffers.
    const frame = isBinary
      ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      : bytes.toString()
    // The decoder measures again, and is left to: it is not always the same measure. For a
    // binary frame it counts the same bytes as above; for a text frame, the UTF-8 bytes of the
    // decoded text, the same count, since those bytes were UTF-8 (checked by ws, or above). It
    // costs a comparison (see `pastBytes`).
    const result = decodeFrame(frame, { maxPayload: this.#settings.maxPayload })
    if (result.ok) this.emitPacket(result.packet, frame.length)
    else this.emitInvalid(result.error)
  }
}
