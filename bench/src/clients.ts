// The load generator's view of a connection: the same five operations over the Parley client,
// socket.io-client and a bare `ws` WebSocket, so that every scenario is written once.
import { connect, type TransportName, type WebSocketConstructor } from '@parley/client'
import { io as socketIo } from 'socket.io-client'
import { Agent, fetch as undiciFetch } from 'undici'
import WebSocket from 'ws'
import { closingFetch } from './goodbye.ts'
import { httpFetch, type OwnFetch } from './http-fetch.ts'
import { type ThinTransport, thinParleyClient } from './thin-parley.ts'
import { type ThinSocketIoTransport, thinSocketIoClient } from './thin-socketio.ts'

/**
 * A server and the way clients reach it. `parley` and `socketio` alone use default clients;
 * `-thin-` targets use the thin clients (thin-parley.ts, thin-socketio.ts), which speak the wire
 * format directly, so that a reader can tell the server's cost from the client's.
 */
export type Target =
  | 'ws'
  | 'parley-websocket'
  | 'parley-sse'
  | 'parley-polling'
  | 'parley-thin-websocket'
  | 'parley-thin-sse'
  | 'parley-thin-polling'
  | 'socketio-websocket'
  | 'socketio-polling'
  | 'socketio-thin-websocket'
  | 'socketio-thin-polling'

/**
 * `parley` and `socketio` alone: the default clients. `parley-metrics`: the Parley client over
 * WebSocket, to a server given a prom-client registry (`metrics` option).
 */
export type ClientKind = Target | 'parley' | 'socketio' | 'parley-metrics'

export const serverKindOf = (target: ClientKind): 'parley' | 'socketio' | 'ws' =>
  target.startsWith('parley') ? 'parley' : target.startsWith('socketio') ? 'socketio' : 'ws'

export interface Msg {
  id: number
  t: number
  text?: string
  n?: number
}

export interface BenchClient {
  /** Settles when the client is connected (rejects on failure or after `timeoutMs`). */
  ready: Promise<void>
  /** The transport in use once connected (`websocket` for raw ws). */
  transport(): string | null
  /** Connected now (false once the connection is lost; no client here reconnects). */
  connected(): boolean
  on(event: 'echo' | 'tick', fn: (m: Msg) => void): void
  emit(event: 'echo', m: Msg): void
  /** Sends `ack` and resolves with the server's reply. */
  request(m: Msg): Promise<Msg>
  /**
   * Leaves, saying goodbye where the protocol has one. Where the goodbye goes in a request of
   * its own (the Parley client's SSE and polling, the thin clients' HTTP) or before a close
   * frame the thin clients wait for, resolves once the server has answered it (at most
   * GOODBYE_MS, goodbye.ts) and the connections are gone: the server has ended the session by
   * then, instead of keeping it for its heartbeat's window. The libraries' clients over
   * WebSocket, and socket.io-client, send theirs on connections they close themselves: at once.
   */
  close(): Promise<void>
}

/**
 * The HTTP client under the Parley client's SSE and polling: `http` (node:http, as
 * socket.io-client uses in Node) or `undici` (Node's own fetch).
 */
export type FetchKind = 'http' | 'undici'

export const FETCH_KINDS: readonly FetchKind[] = ['http', 'undici']

export interface ClientSettings {
  /** Server base URL, `http://127.0.0.1:<port>`. */
  url: string
  timeoutMs: number
  fetch: FetchKind
  /**
   * The source address of the client's connections (127.0.0.x on Linux): past about 28 000
   * connections to one server port, one source address runs out of ephemeral ports.
   */
  localAddress?: string | undefined
}

const memoryStorage = () => {
  const map = new Map<string, string>()
  return {
    getItem: (k: string) => map.get(k) ?? null,
    setItem: (k: string, v: string) => void map.set(k, v),
    removeItem: (k: string) => void map.delete(k),
  }
}

function withTimeout(p: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not connected after ${ms} ms`)), ms)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

const HOUR = 3_600_000

/**
 * Node's fetch (undici, the same version Node 20 bundles) with connections of its own, as each
 * browser tab has: with one shared pool, every request of a thousand clients would scan the
 * pool's thousand busy connections (held polls, event streams) for a free one, and that search
 * alone would saturate the load generator.
 */
function undiciOwnFetch(): OwnFetch {
  const dispatcher = new Agent()
  const own = (input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher })
  return {
    fetch: own as unknown as typeof fetch,
    close: () => void dispatcher.close().catch(() => {}),
  }
}

function parleyClient(kind: ClientKind, { url, timeoutMs, fetch }: ClientSettings): BenchClient {
  const only = (kind === 'parley-metrics' ? 'websocket' : kind.slice('parley-'.length)) as TransportName
  // Closed only once the goodbye's POST (SSE, polling) was answered.
  const http = closingFetch(fetch === 'undici' ? undiciOwnFetch() : httpFetch())
  const socket = connect(`${url}/parley`, {
    // `parley` alone: the default client (WebSocket first, then SSE, then polling).
    // Pinned to one transport, with nothing to fall back to: the client's own connect bound is the
    // measurement's (its default, 3 s, gives a WebSocket upgrade a second, which a busy machine
    // can use up). The default client keeps its default: the fallback scenario measures it.
    ...(kind === 'parley'
      ? {}
      : { transports: [only], upgradeDelay: HOUR, upgradeDelayMax: HOUR, connectTimeout: timeoutMs }),
    reconnection: false,
    ackTimeout: 30_000,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    fetch: http.fetch,
    storage: memoryStorage(),
  })
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (err) => reject(err))
    socket.once('disconnect', (reason) => reject(new Error(`disconnected: ${reason}`)))
  })
  return {
    ready: withTimeout(ready, timeoutMs, kind),
    transport: () => socket.transport,
    connected: () => socket.connected,
    on: (event, fn) => void socket.on(event, fn as (...args: unknown[]) => void),
    emit: (event, m) => void socket.emit(event, m),
    request: (m) => socket.emitWithAck('ack', m) as Promise<Msg>,
    close: () => {
      socket.disconnect()
      return http.close()
    },
  }
}

/**
 * socket.io-client's connect_error with what the server answered, when it says: a transport
 * error carries the HTTP status (`description`) and the request (`context`) whose body says why
 * (`{"code":1,"message":"Session ID unknown"}` from a node that does not hold the session).
 */
function socketIoError(err: Error & { description?: unknown; context?: unknown }): Error {
  const status = typeof err.description === 'number' ? ` ${err.description}` : ''
  const body = (err.context as { responseText?: unknown } | undefined)?.responseText
  const why = typeof body === 'string' && body.length > 0 && body.length < 200 ? ` ${body}` : ''
  return status || why ? new Error(`${err.message}:${status}${why}`) : err
}

function socketIoClient(kind: ClientKind, { url, timeoutMs }: ClientSettings): BenchClient {
  const socket = socketIo(url, {
    // `socketio` alone: the default client (polling first, then an upgrade to WebSocket).
    ...(kind === 'socketio' ? {} : { transports: [kind.slice('socketio-'.length)] }),
    forceNew: true,
    reconnection: false,
    timeout: timeoutMs,
  })
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', (err) => reject(socketIoError(err)))
  })
  return {
    ready: withTimeout(ready, timeoutMs, kind),
    transport: () => (socket.connected ? socket.io.engine.transport.name : null),
    connected: () => socket.connected,
    on: (event, fn) => void socket.on(event, fn),
    emit: (event, m) => void socket.emit(event, m),
    request: (m) => socket.emitWithAck('ack', m) as Promise<Msg>,
    // Its goodbye goes out on connections it keeps for it (nothing here closes them sooner).
    close: async () => void socket.disconnect(),
  }
}

function wsClient({ url, timeoutMs, localAddress }: ClientSettings): BenchClient {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), { localAddress })
  const handlers = new Map<string, (m: Msg) => void>()
  const pending = new Map<number, (m: Msg) => void>()
  ws.on('error', () => {})
  ws.on('message', (data) => {
    const [event, m] = JSON.parse(String(data)) as [string, Msg]
    if (event === 'ack') {
      const resolve = pending.get(m.id)
      pending.delete(m.id)
      resolve?.(m)
    } else handlers.get(event)?.(m)
  })
  const ready = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  return {
    ready: withTimeout(ready, timeoutMs, 'ws'),
    transport: () => (ws.readyState === WebSocket.OPEN ? 'websocket' : null),
    connected: () => ws.readyState === WebSocket.OPEN,
    on: (event, fn) => void handlers.set(event, fn),
    emit: (event, m) => ws.send(JSON.stringify([event, m])),
    request: (m) =>
      new Promise<Msg>((resolve) => {
        pending.set(m.id, resolve)
        ws.send(JSON.stringify(['ack', m]))
      }),
    // Raw ws has no goodbye: the server drops the client when the connection goes.
    close: async () => ws.terminate(),
  }
}

export function createClient(kind: ClientKind, settings: ClientSettings): BenchClient {
  const client =
    kind === 'ws'
      ? wsClient(settings)
      : kind.startsWith('parley-thin-')
        ? thinParleyClient(kind.slice('parley-thin-'.length) as ThinTransport, settings)
        : kind.startsWith('socketio-thin-')
          ? thinSocketIoClient(kind.slice('socketio-thin-'.length) as ThinSocketIoTransport, settings)
          : kind.startsWith('parley')
            ? parleyClient(kind, settings)
            : socketIoClient(kind, settings)
  client.ready.catch(() => {})
  return client
}
