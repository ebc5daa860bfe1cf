import type { IncomingHttpHeaders } from 'node:http'
import { PROTOCOL_VERSION, type TransportName, WS_SUBPROTOCOL } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from '../burst-log.js'

/**
 * A request refused for another protocol version (`400 PARLEY_UNSUPPORTED_VERSION`), as its log
 * line shows the first of a burst: the endpoint, the `v` it asked for (null when none; values
 * given twice joined by commas) and, for a WebSocket upgrade, the subprotocols it offered.
 */
export type VersionRefusal = {
  transport: TransportName
  v: string | null
  subprotocols?: string
}

/**
 * How much of what a client asked for a line quotes: a client chooses it, and a line must stay
 * short (a header may be kilobytes long).
 */
const QUOTED = 64

/** The refusal of a request to endpoint `transport` whose query asked for versions `v`. */
export function versionRefusal(
  transport: TransportName,
  v: string | readonly string[] | undefined,
  headers: IncomingHttpHeaders,
): VersionRefusal {
  const given = v === undefined ? [] : typeof v === 'string' ? [v] : v
  const refusal: VersionRefusal = {
    transport,
    v: given.length === 0 ? null : given.join(',').slice(0, QUOTED),
  }
  const offered = headers['sec-websocket-protocol']
  if (transport === 'websocket') refusal.subprotocols = offered === undefined ? '' : offered.slice(0, QUOTED)
  return refusal
}

/**
 * Logs the requests refused for another protocol version at warn, one line per burst (see
 * `BurstLog`): a deploy that mixes client and server packages of different major versions
 * brings one per request of every client, and without a line the operator sees only clients
 * that never connect.
 */
export class VersionRefusals {
  readonly #burst: BurstLog<VersionRefusal>

  constructor(log: FastifyBaseLogger) {
    this.#burst = new BurstLog(
      log,
      'warn',
      (count, first) =>
        `refused ${count} request(s) since the last such line for another protocol version (the first: ` +
        `${asked(first)}): this server speaks v=${PROTOCOL_VERSION}, over WebSocket with the subprotocol ` +
        `${WS_SUBPROTOCOL}. Use client and server packages of the same major version; a proxy must pass ` +
        'Sec-WebSocket-Protocol on',
    )
  }

  record(refusal: VersionRefusal): void {
    this.#burst.record(refusal)
  }

  /** The server closes: logs what is left of a burst. */
  close(): void {
    this.#burst.close()
  }
}

function asked(first: VersionRefusal | undefined): string {
  if (!first) return 'unknown'
  const v = first.v === null ? 'no v' : `v=${first.v}`
  if (first.subprotocols === undefined) return `${first.transport}, ${v}`
  const offered = first.subprotocols === '' ? 'no subprotocol' : `subprotocols ${first.subprotocols}`
  return `${first.transport}, ${v}, ${offered}`
}
