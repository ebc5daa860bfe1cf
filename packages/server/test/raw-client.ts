// A bare-bones client written from docs/protocol.md alone: it uses the protocol package's codec
// and nothing of the server. It does no replay, no acks and no reconnection of its own: tests
// drive every packet, so that they can also misbehave on purpose.
import {
  type ClosePacket,
  decodeFrame,
  decodeText,
  encodeFrame,
  encodeText,
  type OpenPacket,
  type Packet,
  PacketType,
  type TransportName,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import WebSocket from 'ws'

export interface Hello {
  auth?: unknown
  sid?: string
  ack?: number
}

export interface RawOptions {
  /**
   * Answer PING with PONG at once (default true). Over polling, the next GET is the PONG: with
   * false, the client stops polling after an answer that brought a PING.
   */
  autoPong?: boolean
  /** Extra request headers (Origin, ...). */
  headers?: Record<string, string>
  /** WebSocket: the certificate trusted for a `https://` base (a node behind TLS). */
  ca?: string
  /** How long a WebSocket waits for the answer to its HELLO (default 3000 ms). */
  answerWithinMs?: number
  /**
   * SSE and polling: the first GET waits for this (as one whose OPEN reached its client late, or
   * that a browser held back); by default it goes at once.
   */
  firstGetAfter?: Promise<unknown>
}

/** Thrown when the server refuses the handshake. */
export class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(`${code}: ${message}`)
  }
}

/** Thrown when the server answers a resume with the CLOSE of a session that ended. */
export class Closed extends Error {
  constructor(
    readonly packet: ClosePacket,
    /** WebSocket: the close code that followed the CLOSE. */
    readonly code?: number,
  ) {
    super(`closed: ${packet.reason}: ${packet.message}`)
  }
}

type Waiter = { predicate: (p: Packet) => boolean; resolve: (p: Packet) => void }

export interface RawClient {
  readonly transport: TransportName
  readonly open: OpenPacket
  readonly sid: string
  /** The public socket id from OPEN. */
  readonly id: string
  /** Every packet received and not yet taken by `next`. */
  readonly inbox: Packet[]
  /** Every packet received, in order. */
  readonly received: Packet[]
  /** Sends packets (one POST for HTTP transports). Resolves with the HTTP status (101 for ws). */
  send(...packets: Packet[]): Promise<number>
  /** Sends raw text (one WebSocket message, or one POST body). */
  sendRaw(text: string | Uint8Array): Promise<number>
  /** Takes the first received packet that matches (waits up to `timeoutMs`). */
  next(predicate?: (p: Packet) => boolean, timeoutMs?: number): Promise<Packet>
  /** Resolves when the transport ended: the WebSocket close code, or the last HTTP status. */
  readonly ended: Promise<number>
  /** Drops the transport without a word (like a network cut). */
  close(): void
  /** WebSocket only: a closing handshake with `code`, and no CLOSE packet before it. */
  closeWith(code: number): void
}

abstract class Base {
  readonly inbox: Packet[] = []
  readonly received: Packet[] = []
  readonly #waiters: Waiter[] = []
  open!: OpenPacket
  protected endedResolve!: (code: number) => void
  readonly ended = new Promise<number>((resolve) => {
    this.endedResolve = resolve
  })
  protected closed = false

  constructor(protected readonly autoPong: boolean) {}

  get sid(): string {
    return this.open.sid
  }

  get id(): string {
    return this.open.id
  }

  abstract send(...packets: Packet[]): Promise<number>

  protected deliver(packet: Packet): void {
    this.received.push(packet)
    if (packet.type === PacketType.PING && this.autoPong) {
      this.send({ type: PacketType.PONG }).catch(() => {})
    }
    const index = this.#waiters.findIndex((w) => w.predicate(packet))
    if (index >= 0) {
      const [waiter] = this.#waiters.splice(index, 1)
      waiter!.resolve(packet)
    } else {
      this.inbox.push(packet)
    }
  }

  next(predicate: (p: Packet) => boolean = () => true, timeoutMs = 3000): Promise<Packet> {
    const index = this.inbox.findIndex(predicate)
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0]!)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (p) => {
          clearTimeout(timer)
          resolve(p)
        },
      }
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(new Error(`no matching packet within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox)}`))
      }, timeoutMs)
      this.#waiters.push(waiter)
    })
  }
}

class WsClient extends Base {
  readonly transport = 'websocket'
  constructor(
    readonly ws: WebSocket,
    autoPong: boolean,
  ) {
    super(autoPong)
    ws.on('message', (data, isBinary) => {
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[])
      const result = decodeFrame(
        isBinary ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : bytes.toString(),
        { maxPayload: 1e8 },
      )
      if (!result.ok) throw result.error
      this.deliver(result.packet)
    })
    ws.on('close', (code) => this.endedResolve(code))
    ws.on('error', () => {})
  }

  async send(...packets: Packet[]): Promise<number> {
    for (const p of packets) this.ws.send(encodeFrame(p))
    return 101
  }

  async sendRaw(text: string | Uint8Array): Promise<number> {
    this.ws.send(text)
    return 101
  }

  close(): void {
    this.closed = true
    this.ws.terminate()
  }

  closeWith(code: number): void {
    this.closed = true
    this.ws.close(code)
  }
}

class HttpClient extends Base {
  readonly #endpoint: string
  readonly #headers: Record<string, string>
  readonly #abort = new AbortController()
  #posting: Promise<unknown> = Promise.resolve()

  constructor(
    readonly transport: 'sse' | 'polling',
    endpoint: string,
    headers: Record<string, string>,
    autoPong: boolean,
  ) {
    super(autoPong)
    this.#endpoint = endpoint
    this.#headers = headers
  }

  get url(): string {
    return `${this.#endpoint}?v=1&sid=${this.sid}`
  }

  start(): void {
    if (this.closed) return
    if (this.transport === 'sse') void this.#stream()
    else void this.#poll()
  }

  async #stream(): Promise<void> {
    try {
      const res = await fetch(this.url, { headers: this.#headers, signal: this.#abort.signal })
      if (res.status !== 200 || !res.body) {
        this.endedResolve(res.status)
        return
      }
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        let cut = buffer.indexOf('\n\n')
        while (cut >= 0) {
          const event = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          for (const line of event.split('\n')) {
            if (line.startsWith('data: ')) this.#take(line.slice(6))
          }
          cut = buffer.indexOf('\n\n')
        }
      }
      this.endedResolve(200)
    } catch {
      this.endedResolve(0)
    }
  }

  async #poll(): Promise<void> {
    try {
      while (!this.closed) {
        const res = await fetch(this.url, { headers: this.#headers, signal: this.#abort.signal })
        const body = await res.text()
        if (res.status !== 200) {
          this.endedResolve(res.status)
          return
        }
        for (const line of body.split('\n')) if (line) this.#take(line)
        // Its next GET would answer the PING: a client that does not answer stops here.
        if (!this.autoPong && this.received.some((p) => p.type === PacketType.PING)) return
      }
    } catch {
      this.endedResolve(0)
    }
  }

  #take(line: string): void {
    const result = decodeText(line, { maxPayload: 1e8 })
    if (!result.ok) throw result.error
    this.deliver(result.packet)
  }

  send(...packets: Packet[]): Promise<number> {
    return this.sendRaw(packets.map((p) => encodeText(p)).join('\n'))
  }

  sendRaw(body: string | Uint8Array): Promise<number> {
    // One POST at a time, as the protocol asks.
    const result = this.#posting.then(async () => {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', ...this.#headers },
        // Tests hand over plain byte arrays; fetch's types want an ArrayBuffer-backed view.
        body: body as string | Uint8Array<ArrayBuffer>,
      })
      await res.arrayBuffer()
      return res.status
    })
    this.#posting = result.catch(() => {})
    return result
  }

  close(): void {
    this.closed = true
    this.#abort.abort()
  }

  closeWith(): void {
    throw new Error(`no close codes over ${this.transport}`)
  }
}

/**
 * Opens a transport, sends HELLO and waits for OPEN. Rejects with `Refused` on a refusal, and
 * with `Closed` when a resume is answered with the CLOSE of a session that ended.
 */
export async function rawConnect(
  transport: TransportName,
  base: string,
  hello: Hello = {},
  options: RawOptions = {},
): Promise<RawClient> {
  const autoPong = options.autoPong ?? true
  const headers = options.headers ?? {}
  const helloPacket = JSON.stringify([8, hello])
  if (transport === 'websocket') {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL, {
      headers,
      ...(options.ca !== undefined && { ca: options.ca }),
    })
    const client = new WsClient(ws, autoPong)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) =>
        reject(new Refused('HTTP', 'upgrade refused', res.statusCode)),
      )
      ws.once('error', reject)
    })
    ws.send(helloPacket)
    const first = await client.next(
      (p) => p.type === PacketType.OPEN || p.type === PacketType.ERROR || p.type === PacketType.CLOSE,
      options.answerWithinMs,
    )
    if (first.type === PacketType.ERROR) throw new Refused(first.code, first.message)
    if (first.type === PacketType.CLOSE) throw new Closed(first, await client.ended)
    client.open = first as OpenPacket
    return client
  }
  const endpoint = `${base}/${transport === 'sse' ? 'sse' : 'poll'}`
  const res = await fetch(`${endpoint}?v=1`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', ...headers },
    body: helloPacket,
  })
  const text = await res.text()
  if (res.status !== 200) {
    const body = JSON.parse(text) as { code: string; message: string }
    throw new Refused(body.code, body.message, res.status)
  }
  const decoded = decodeText(text)
  if (decoded.ok && decoded.packet.type === PacketType.CLOSE) throw new Closed(decoded.packet)
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error(`bad OPEN: ${text}`)
  const client = new HttpClient(transport, endpoint, headers, autoPong)
  client.open = decoded.packet
  if (options.firstGetAfter) void options.firstGetAfter.then(() => client.start())
  else client.start()
  return client
}
