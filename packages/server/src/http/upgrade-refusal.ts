import type { IncomingHttpHeaders } from 'node:http'
import { ErrorCode, WS_SUBPROTOCOL } from '@parley/protocol'
import { type DeflateSettings, extensionsRefused } from './websocket-extensions.js'

/** A refused upgrade: a 400 with this code, message and extra headers. */
export interface UpgradeRefusal {
  code: typeof ErrorCode.BAD_REQUEST | typeof ErrorCode.UNSUPPORTED_VERSION
  message: string
  headers?: Record<string, string>
}

/** A Sec-WebSocket-Key as ws takes it: 16 bytes in base64. */
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/

/** A token of RFC 9110, what a subprotocol's name is made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Spaces and tabs around a list element (RFC 9110's OWS). */
const OWS_AROUND = /^[ \t]+|[ \t]+$/g

const NONE_OFFERED: ReadonlySet<string> = new Set()

const SUBPROTOCOL_WANTED: UpgradeRefusal = {
  code: ErrorCode.UNSUPPORTED_VERSION,
  message: `offer the subprotocol ${WS_SUBPROTOCOL}`,
}

/** What of the WebSocketServer's options its upgrade checks depend on (ws keeps them as `options`). */
export interface UpgradeSettings {
  perMessageDeflate?: DeflateSettings
  maxPayload?: number | undefined
}

/**
 * Why an upgrade request on `/ws` cannot be taken, if it cannot: what ws checks in
 * `handleUpgrade` (the Upgrade header, Sec-WebSocket-Key, -Version, the syntax of -Protocol and,
 * with permessage-deflate on in `ws`, the WebSocketServer's options, -Extensions), checked here
 * by the same rules, and Parley's subprotocol. ws would refuse such a request after the route's
 * hooks, with a text/html answer a client cannot read a code from; the route refuses it first,
 * with a coded JSON one.
 */
export function upgradeRefusal(
  headers: IncomingHttpHeaders,
  ws: UpgradeSettings = {},
): UpgradeRefusal | undefined {
  const upgrade = headers.upgrade
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
    return { code: ErrorCode.BAD_REQUEST, message: 'expected Upgrade: websocket' }
  }
  const key = headers['sec-websocket-key']
  if (key === undefined || !WS_KEY.test(key)) {
    return { code: ErrorCode.BAD_REQUEST, message: 'a missing or malformed Sec-WebSocket-Key' }
  }
  // As ws reads it from 8.23.1 on, the text itself (before, anything that read as the number:
  // `13.0`, `+13`, which a newer ws in the application's tree refuses after the hooks); it also
  // takes 8, an older draft's.
  const version = headers['sec-websocket-version']
  if (version !== '13' && version !== '8') {
    // RFC 6455 4.4: the answer names the version the server speaks.
    return {
      code: ErrorCode.BAD_REQUEST,
      message: 'Sec-WebSocket-Version must be 13',
      headers: { 'Sec-WebSocket-Version': '13' },
    }
  }
  const protocols = headers['sec-websocket-protocol']
  const offered = protocols === undefined ? NONE_OFFERED : offeredSubprotocols(protocols)
  if (offered === undefined) {
    return { code: ErrorCode.BAD_REQUEST, message: 'a malformed Sec-WebSocket-Protocol' }
  }
  if (extensionsRefused(headers['sec-websocket-extensions'], ws.perMessageDeflate, ws.maxPayload)) {
    return { code: ErrorCode.BAD_REQUEST, message: 'a malformed or unacceptable Sec-WebSocket-Extensions' }
  }
  return offered.has(WS_SUBPROTOCOL) ? undefined : SUBPROTOCOL_WANTED
}

/**
 * Writes Sec-WebSocket-Version as text where it is a number, before anything reads it:
 * @fastify/websocket's `app.injectWS` writes the number 13 in the request it makes, where one off
 * the wire has text, and ws from 8.23.1 on compares the text, refusing the upgrade after the
 * route's hooks (a test's `injectWS` rejects with `Unexpected server response: 400`).
 */
export function versionAsText(headers: IncomingHttpHeaders): void {
  const version: unknown = headers['sec-websocket-version']
  if (typeof version === 'number') headers['sec-websocket-version'] = String(version)
}

/**
 * The subprotocols a Sec-WebSocket-Protocol header offers, or undefined when ws would refuse it:
 * tokens separated by commas, spaces or tabs around each, none empty, none twice.
 */
export function offeredSubprotocols(header: string): Set<string> | undefined {
  const offered = new Set<string>()
  for (const element of header.split(',')) {
    const name = element.replace(OWS_AROUND, '')
    if (!TOKEN.test(name) || offered.has(name)) return undefined
    offered.add(name)
  }
  return offered
}
