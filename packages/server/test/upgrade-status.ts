// The HTTP status a WebSocket upgrade gets, for tests of what the endpoints refuse.
import { WS_SUBPROTOCOL } from '@parley/protocol'
import WebSocket from 'ws'
import { within } from './helpers.js'

/**
 * Opens a WebSocket to `url` offering `protocols`, with `headers` added, and gives the HTTP status
 * of its refused upgrade, or 101 once it opens (then closes it); within 5 s.
 */
export function upgradeStatus(
  url: string,
  protocols: string[] = [WS_SUBPROTOCOL],
  headers: Record<string, string> = {},
): Promise<number> {
  const status = new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers })
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
    ws.once('open', () => {
      resolve(101)
      ws.terminate()
    })
    ws.once('error', reject)
  })
  return within(status, 5000, `the answer to the upgrade of ${url}`)
}
