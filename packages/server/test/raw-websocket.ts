// A WebSocket to a Parley endpoint that sends exactly what a test gives it, from the first
// message on (a HELLO of any shape, frames of any kind), and keeps every packet it gets back
// and its close code. For clients that misbehave before or after the handshake; a client that
// handshakes by the rules is `rawConnect` (raw-client.ts).
import { decodeFrame, decodeText, type Packet, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import WebSocket from 'ws'
import { until, within } from './helpers.js'

/**
 * The head of a WebSocket upgrade to `target` (Parley's `/ws` endpoint and its query) offering
 * Parley's subprotocol, with `headers` added, for tests that speak to the server over a bare TCP
 * connection.
 */
export function rawUpgradeHead(target = '/parley/ws?v=1', headers: Record<string, string> = {}): string {
  return [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    '',
  ].join('\r\n')
}

export class RawWebSocket {
  /** Every packet received that decodes, in order. */
  readonly packets: Packet[] = []
  /** The close code, once closed. */
  readonly closed: Promise<number>
  readonly #waiting: (() => void)[] = []
  #probes = 1_000_000

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => {})
    ws.on('message', (data: Buffer, binary: boolean) => {
      const decoded = decodeFrame(binary ? new Uint8Array(data) : data.toString(), { maxPayload: 1e8 })
      if (!decoded.ok) return
      this.packets.push(decoded.packet)
      for (const waiter of this.#waiting.splice(0)) waiter()
    })
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)))
  }

  /** Opens a WebSocket to `base` (`http://host:port/parley`) and sends `first` once it is open. */
  static async open(base: string, first: string | Buffer): Promise<RawWebSocket> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
    const raw = new RawWebSocket(ws)
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('error', reject)
      }),
      2000,
      'the upgrade',
    )
    ws.send(first)
    return raw
  }

  /** True while the WebSocket is open. */
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  /** The first packet received (waits up to 2 s). */
  async first(): Promise<Packet> {
    if (!this.packets[0]) {
      await within(new Promise<void>((resolve) => this.#waiting.push(resolve)), 2000, 'a packet')
    }
    return this.packets[0]!
  }

  /**
   * True when the session answers a request on this WebSocket (an unnumbered EVENT `probe`
   * with an ack id, which the server's handler answers) within 1.5 s.
   */
  async answers(): Promise<boolean> {
    const ackId = this.#probes++
    if (this.ws.readyState !== WebSocket.OPEN) return false
    this.ws.send(`[5,0,"probe",[${ackId}],${ackId}]`)
    const end = performance.now() + 1500
    while (performance.now() < end) {
      if (this.packets.some((p) => p.type === PacketType.REPLY && p.ackId === ackId)) return true
      if (this.ws.readyState !== WebSocket.OPEN) return false
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return false
  }
}

/**
 * Has `ws` send `goodbye` (a client's CLOSE) the moment it reads the server's CLOSE packet, in
 * the same turn, before a close frame behind it is read: a goodbye that crosses the server's
 * CLOSE. The function returned says whether the WebSocket was still open when the goodbye went
 * (undefined until it went).
 */
export function goodbyeAtClose(ws: WebSocket, goodbye: string): () => boolean | undefined {
  let open: boolean | undefined
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (open !== undefined || binary) return
    const decoded = decodeFrame(data.toString(), { maxPayload: 1e8 })
    if (!decoded.ok || decoded.packet.type !== PacketType.CLOSE) return
    open = ws.readyState === WebSocket.OPEN
    ws.send(goodbye)
  })
  return () => open
}

/**
 * A WebSocket resume of `sid` at node `base`, which relays it to the session's node `owner`:
 * the owner does not answer the request to hand the session over while the resume comes in
 * (`cluster.unreachable`, cleared once the OPEN came), so it is relayed rather than moved. The
 * WebSocket is the caller's to close; `packets` fills as frames come through the relay.
 */
export async function relayedResume(
  cluster: { unreachable: Set<string> },
  base: string,
  sid: string,
  owner = 'node0',
): Promise<{ ws: WebSocket; packets: Packet[] }> {
  cluster.unreachable.add(owner)
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
  const packets: Packet[] = []
  ws.on('message', (data) => {
    const decoded = decodeText(String(data), { maxPayload: 1e6 })
    if (decoded.ok) packets.push(decoded.packet)
  })
  try {
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    ws.send(JSON.stringify([PacketType.HELLO, { sid, ack: 0 }]))
    await until(() => packets.some((p) => p.type === PacketType.OPEN), 3000, 'OPEN through the relay')
  } catch (error) {
    ws.terminate()
    throw error
  } finally {
    cluster.unreachable.delete(owner)
  }
  return { ws, packets }
}
