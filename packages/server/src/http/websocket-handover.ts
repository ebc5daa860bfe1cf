import type { HelloPacket } from '@parley/protocol'
import type { WebSocket } from 'ws'
import type { CertificateAuthority } from '../options.js'
import type { ClosingWebSockets } from '../transports/closing-websockets.js'
import { forwardedHeaders } from './forward-headers.js'
import type { HandOver } from './forward-http.js'
import { forwardWebSocket, type Relay, type UpgradeRefused } from './forward-ws.js'
import type { ForwardedRequest } from './forwarded-request.js'
import { nodeAddress, pathOnNode } from './node-agents.js'
import type { Owner } from './owner-lookup.js'
import { SENT_ON } from './routing.js'

export interface WebSocketHandoversOptions {
  /** The longest wait for a connection to the owner, and for its WebSocket upgrade. */
  connectTimeout: number
  /** The TLS settings of an owner whose address is `https://` (see node-agents.ts). */
  tls: { ca?: CertificateAuthority }
  /** A relayed WebSocket stops reading a side whose peer holds more unsent bytes than this. */
  highWaterMark: number
  /** The server's maxPayload: what the owner sends a relay is bounded by it (see forward-ws.ts). */
  maxPayload: number
  /** Where a relay's side whose close frame went waits for its peer's (cut when the server closes). */
  closingWebSockets: ClosingWebSockets
  /** Called when the owner could not be reached at its URL `url` (counted and logged by the server). */
  unreachable(node: string, err: unknown, url?: string): void
  /** Sends a relayed client's late goodbye to its owner `base` (see `HttpForwards.goodbye`). */
  goodbye(base: string, sid: string, request: ForwardedRequest, text: string): void
}

/**
 * The WebSockets this node relays to the nodes that own their sessions (see forward-ws.ts), from
 * the HELLO that resumes one to the end of the relay; closed with a CLOSE 'server handoff' when
 * this node closes (`close`).
 */
export class WebSocketHandovers {
  readonly #options: WebSocketHandoversOptions
  readonly #relays = new Set<Relay>()
  /** The CLOSE a relay that begins once this node closed is ended with; set by `close`. */
  #closing: (() => string) | undefined

  constructor(options: WebSocketHandoversOptions) {
    this.#options = options
  }

  /** See `Forwarder.handOverWebSocket`. */
  async handOver(
    owner: Owner & { url: string },
    ws: WebSocket,
    hello: HelloPacket,
    request: ForwardedRequest,
    take: () => WebSocket,
    relayed?: (answered: Promise<void>) => void,
  ): Promise<HandOver | UpgradeRefused> {
    const { connectTimeout, highWaterMark, maxPayload, closingWebSockets } = this.#options
    // Named here: the closure below keeps them as they are now.
    const url = owner.url
    const sid = hello.sid
    let target: string
    try {
      target = webSocketUrl(url, request.url)
    } catch (err) {
      this.#options.unreachable(owner.node, err, url)
      return 'unreachable'
    }
    const result = await forwardWebSocket({
      ws,
      take,
      url: target,
      tls: this.#options.tls,
      headers: forwardedHeaders(request, true, owner.sentOn ? SENT_ON : '1'),
      hello,
      connectTimeout,
      highWaterMark,
      maxPayload,
      closing: closingWebSockets,
      ...(sid !== undefined && {
        lateGoodbye: (text: string) => this.#options.goodbye(url, sid, request, text),
      }),
    })
    if (result instanceof Error) {
      this.#options.unreachable(owner.node, result, url)
      return 'unreachable'
    }
    if (result === 'gone' || 'refused' in result) return result
    if (this.#closing) {
      result.close(this.#closing())
      return 'answered'
    }
    this.#relays.add(result)
    void result.closed.then(() => this.#relays.delete(result))
    relayed?.(result.answered)
    return 'answered'
  }

  /**
   * Closes every relay with 1001 after `handoff()`, the CLOSE 'server handoff' its client
   * resumes elsewhere with, and every relay that begins from now on the same way. Resolves once
   * those closed now are over (both sides closed, or cut).
   */
  close(handoff: () => string): Promise<void> {
    this.#closing = handoff
    const closing = [...this.#relays]
    for (const relay of closing) relay.close(handoff())
    this.#relays.clear()
    return Promise.all(closing.map((relay) => relay.closed)).then(() => {})
  }
}

/** `path` on the node at `address`, over `ws:` (`wss:` for an `https:` address; see `pathOnNode`). */
function webSocketUrl(address: string, path: string): string {
  const node = nodeAddress(address)
  return `${node.protocol === 'https:' ? 'wss:' : 'ws:'}//${node.host}${pathOnNode(node, withoutFragment(path))}`
}

/**
 * The upgrade's `url` as the owner reads it the way this node did, with no `#` left in it. Node
 * takes a `#` in a request's target, and the router reads it as the start of the query when no
 * `?` came before it (`/ws#&v=1` has the query `&v=1`), else as a character of the query; the ws
 * client refuses a URL with a fragment (it throws). So the first `#` before any `?` becomes that
 * `?`, and every other `#` is `%23`, which the owner's query parser decodes back to `#`: the
 * owner gets the query this node read, key for key.
 */
function withoutFragment(url: string): string {
  const hash = url.indexOf('#')
  if (hash < 0) return url
  const query = url.indexOf('?')
  const separated = query >= 0 && query < hash ? url : `${url.slice(0, hash)}?${url.slice(hash + 1)}`
  return separated.replaceAll('#', '%23')
}
