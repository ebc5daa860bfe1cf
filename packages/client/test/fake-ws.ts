// A scripted WebSocket peer that speaks docs/protocol.md by hand, for client behaviours a real
// server will not produce on demand (gaps, silence, odd answers). Loopback only.
import type { AddressInfo } from 'node:net'
import {
  decodeFrame,
  encodeFrame,
  type OpenPacket,
  type Packet,
  PacketType,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import { type WebSocket, WebSocketServer } from 'ws'

export interface FakeConn {
  ws: WebSocket
  received: Packet[]
  send(packet: Packet): void
  /** The next packet matching `pred` (already received or future), within `ms`. */
  next(pred?: (p: Packet) => boolean, ms?: number): Promise<Packet>
}

export interface FakeServer {
  url: string
  conns: FakeConn[]
  nextConn(ms?: number): Promise<FakeConn>
  close(): Promise<void>
}

export function openPacket(sid: string, fields: Partial<OpenPacket> = {}): OpenPacket {
  return {
    type: PacketType.OPEN,
    sid,
    id: `id_${sid}`.slice(0, 64),
    pingInterval: 1000,
    pingTimeout: 1000,
    maxPayload: 1_000_000,
    transports: ['websocket'],
    recovered: false,
    ack: 0,
    ...fields,
  }
}

export async function startFakeWs(): Promise<FakeServer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  const conns: FakeConn[] = []
  const waiting: ((c: FakeConn) => void)[] = []
  wss.on('connection', (ws) => {
    const listeners = new Set<() => void>()
    const conn: FakeConn = {
      ws,
      received: [],
      send: (p) => ws.send(encodeFrame(p)),
      next(pred = () => true, ms = 2000) {
        let seen = 0
        return new Promise((resolve, reject) => {
          const check = () => {
            for (; seen < conn.received.length; seen++) {
              const p = conn.received[seen]!
              if (pred(p)) {
                conn.received.splice(seen, 1)
                listeners.delete(check)
                clearTimeout(timer)
                resolve(p)
                return
              }
            }
          }
          const timer = setTimeout(() => {
            listeners.delete(check)
            reject(new Error('no such packet in time'))
          }, ms)
          listeners.add(check)
          check()
        })
      },
    }
    ws.on('message', (data, isBinary) => {
      const decoded = decodeFrame(isBinary ? new Uint8Array(data as Buffer) : data.toString())
      if (decoded.ok) conn.received.push(decoded.packet)
      for (const l of [...listeners]) l()
    })
    conns.push(conn)
    waiting.shift()?.(conn)
  })
  const { port } = wss.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/parley`,
    conns,
    nextConn(ms = 2000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no connection in time')), ms)
        waiting.push((c) => {
          clearTimeout(timer)
          resolve(c)
        })
      })
    },
    close() {
      for (const c of wss.clients) c.terminate()
      return new Promise((resolve) => wss.close(() => resolve()))
    },
  }
}
