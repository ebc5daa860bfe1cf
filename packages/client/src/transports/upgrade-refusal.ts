import { ErrorCode, ParleyError } from '@parley/protocol'
import { httpError } from '../http.js'

/** The answer to an upgrade request, as `ws` hands it over: Node's `IncomingMessage`. */
interface UpgradeAnswer extends AsyncIterable<Uint8Array> {
  readonly statusCode: number
}

/** A WebSocket that is an event emitter: `ws`'s (the browser's and undici's are not). */
interface Emitter {
  on(event: 'unexpected-response', listener: (request: unknown, answer: UpgradeAnswer) => void): unknown
  off(event: 'unexpected-response', listener: (request: unknown, answer: UpgradeAnswer) => void): unknown
}

/**
 * Node only, with the `ws` package: an upgrade the server answers with an HTTP status instead of
 * 101 (403 for the origin, 400 for the protocol version, 404 PARLEY_TRANSPORT_DISABLED, 503 while
 * it shuts down) says why in its `{code, message}` body, of which `ws` would report only
 * "Unexpected server response: 403". Its 'unexpected-response' event hands over the answer, and
 * that body makes the same coded error the HTTP transports make of the same answer (`httpError`),
 * so the client treats the refusal as it does over HTTP: it stops, tries again, or goes on with
 * the next transport. Browsers, and undici's WebSocket (Node 22's own), show nothing of it.
 *
 * `refused` gets the error once the body is read. With a listener, `ws` leaves the request to it:
 * the caller closes the WebSocket then, which aborts the request and destroys the client's end of
 * its connection. The server's end is the server's to close, which no client can do for it:
 * Parley's server closes it once such an answer is out.
 *
 * Gives back what stops the listening (the transport's teardown calls it: the WebSocket may
 * outlive the transport through its closing handshake, and must not keep it meanwhile).
 */
export function hearRefusal(
  ws: unknown,
  url: string,
  maxPayload: number,
  refused: (error: ParleyError<string>) => void,
): () => void {
  const emitter = ws as Partial<Emitter>
  if (typeof emitter.on !== 'function') return () => {}
  const listener = (_request: unknown, answer: UpgradeAnswer): void => {
    const status = answer.statusCode
    const json = async (): Promise<unknown> => JSON.parse(await bodyOf(answer, maxPayload))
    void httpError({ status, json }, url).then((error) =>
      refused(
        // A 401 or 403 without a code of Parley's (read as PARLEY_TRANSPORT_ERROR) is someone
        // else's, not a refusal: most often a proxy or a firewall that lets no WebSocket through,
        // which the next transport may pass. Its body, if kept (a code not Parley's), stays.
        error.code !== ErrorCode.TRANSPORT_ERROR || (status !== 401 && status !== 403)
          ? error
          : new ParleyError<string>(ErrorCode.TRANSPORT_ERROR, error.message, {
              details: { status, body: error.details?.body },
            }),
      ),
    )
  }
  emitter.on('unexpected-response', listener)
  return () => {
    // An application's WebSocket may throw here: the teardown that calls this must not.
    try {
      emitter.off?.('unexpected-response', listener)
    } catch {}
  }
}

/**
 * The body of `answer`, read up to `maxPayload` bytes (what one answer may hold, counted in UTF-8
 * bytes as everywhere else): a body with no end (a broken proxy, a hostile server) must not take
 * the memory of the whole process. Past the bound, reading stops (leaving the loop destroys the
 * answer) and nothing of it is taken: the error then has the status alone, as over HTTP.
 */
async function bodyOf(answer: UpgradeAnswer, maxPayload: number): Promise<string> {
  const decoder = new TextDecoder()
  let text = ''
  let bytes = 0
  for await (const chunk of answer) {
    bytes += chunk.length
    // Not JSON, so the caller's parse fails.
    if (bytes > maxPayload) return ''
    text += decoder.decode(chunk, { stream: true })
  }
  return text + decoder.decode()
}
