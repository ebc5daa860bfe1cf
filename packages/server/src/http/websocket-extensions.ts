import * as ws from 'ws'

/**
 * The `perMessageDeflate` option of a ws `WebSocketServer` as it keeps it: false when off, its
 * settings when on (ws turns `true` into `{}`).
 */
export type DeflateSettings = boolean | object | undefined

/** ws's own parsers of an upgrade's extensions: public exports of ws, not in its types. */
interface WsExtensions {
  extension: { parse(header: string): Record<string, unknown[]> }
  PerMessageDeflate: {
    new (options: object): { accept(offers: unknown[]): unknown }
    readonly extensionName: string
  }
}
const { extension, PerMessageDeflate } = ws as unknown as WsExtensions

/**
 * True when ws would refuse an upgrade for its Sec-WebSocket-Extensions `header`: with
 * permessage-deflate on (`deflate`, the WebSocketServer's option), ws reads the header and
 * accepts the permessage-deflate offer in it, and refuses a header that does not parse or an
 * offer it cannot accept (`server_max_window_bits=99`, a parameter twice or unknown) with a
 * text/html 400. Judged by ws's own code, as ws judges it, so that the route refuses exactly
 * those, coded. With permessage-deflate off, ws never reads the header.
 */
export function extensionsRefused(
  header: string | undefined,
  deflate: DeflateSettings,
  maxPayload: number | undefined,
): boolean {
  if (!deflate || header === undefined) return false
  const settings = deflate === true ? {} : deflate
  try {
    const offers = extension.parse(header)[PerMessageDeflate.extensionName]
    if (offers) new PerMessageDeflate({ ...settings, isServer: true, maxPayload }).accept(offers)
    return false
  } catch {
    return true
  }
}
