import http from 'node:http'
import https from 'node:https'
import type { CertificateAuthority } from '../options.js'
import { originForm } from './request-target.js'

/**
 * The connections this node opens to the others, by the scheme of their address: `http://` on
 * `node:http`, `https://` on `node:https`, trusting the `forwarding` option's `ca` when given
 * (Node's default CAs otherwise). `node:http` alone refuses an `https:` URL
 * (ERR_INVALID_PROTOCOL), and a node behind TLS could not be forwarded to at all.
 */
export class NodeAgents {
  readonly #tls: { ca?: CertificateAuthority }
  // One keep-alive agent per scheme; the newest idle connection is reused first.
  readonly #http = new http.Agent({ keepAlive: true, scheduling: 'lifo' })
  readonly #https: https.Agent

  constructor(ca: CertificateAuthority | undefined) {
    this.#tls = ca === undefined ? {} : { ca }
    this.#https = new https.Agent({ keepAlive: true, scheduling: 'lifo', ...this.#tls })
  }

  /** The TLS settings of an `https://` or `wss://` connection to another node. */
  get tls(): { ca?: CertificateAuthority } {
    return this.#tls
  }

  /**
   * A request to the node at `url` (its scheme, host and port; `options.path` is the path
   * sent, see `pathOnNode`), on the keep-alive agent of its scheme, or with `agent: false` on a connection of its
   * own, closed after the answer.
   */
  request(url: URL, options: http.RequestOptions & { agent?: false }): http.ClientRequest {
    const secure = url.protocol === 'https:'
    const agent = options.agent === false ? false : secure ? this.#https : this.#http
    const target = {
      ...options,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      agent,
    }
    // Without an agent, the TLS settings go with the request (a one-off agent is made of them).
    return secure ? https.request({ ...target, ...this.#tls }) : http.request(target)
  }

  /** Closes the agents' connections: called once the requests on them are over. */
  destroy(): void {
    this.#http.destroy()
    this.#https.destroy()
  }
}

/**
 * The node address `address` as a URL, when it is one this node can forward to: `http://` or
 * `https://`. An adapter of the application's own may name anything; what is not such a URL
 * throws, and the node counts as one that cannot be reached (its clients' requests are answered
 * as for an unknown session), where Node's own error (ERR_INVALID_PROTOCOL, ERR_INVALID_URL)
 * would reach the client.
 */
export function nodeAddress(address: string): URL {
  const url = new URL(address)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`the node address is not an http:// or https:// URL (${url.protocol})`)
  }
  return url
}

/**
 * The path to send for `path` (a path and query, as this node's clients send them: its own
 * `path` first) to the node at `address`: that address's own path, if it has one, goes in front,
 * since the address is the node's base URL (a node a proxy serves under `/node-a` is
 * `http://proxy/node-a`, and its endpoints are under `/node-a/parley`). So for every request sent
 * there: SSE and polling, a goodbye, a relayed WebSocket. A target in absolute form goes in
 * origin form (see `originForm`): after the address's path it would make no path (nor, for a
 * relayed WebSocket, after the owner's host a URL: the ws client throws).
 */
export function pathOnNode(address: URL, path: string): string {
  return `${address.pathname.replace(/\/+$/, '')}${originForm(path)}`
}
